"""RBF support vector regression with subject-grouped inner cross-validation.

The model is a scikit-learn Pipeline: VarianceThreshold(0) drops features that are constant
in the rows it is fitted on, StandardScaler standardises the rest, and SVR(kernel="rbf")
regresses age. GridSearchCV tunes C, gamma and epsilon by mean absolute error with GroupKFold
over the subjects passed to :meth:`SVRBaseline.fit`, then refits the best setting on all of
them. Only the rows given to ``fit`` are ever used for fitting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.feature_selection import VarianceThreshold
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

logger = logging.getLogger(__name__)

DEFAULT_C_GRID = (1.0, 10.0, 100.0)
DEFAULT_GAMMA_GRID: tuple[float | str, ...] = ("scale", 0.01)
DEFAULT_EPSILON_GRID = (0.5, 2.0)
DEFAULT_INNER_FOLDS = 3


def _check_grid(name: str, grid: Sequence[float | str], allow_scale: bool = False) -> list:
    values = list(grid)
    if not values:
        raise ValueError(f"{name} must contain at least one value, got {grid!r}")
    for value in values:
        if allow_scale and value in ("scale", "auto"):
            continue
        if isinstance(value, str) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} values must be finite numbers >= 0, got {value!r}")
    return values


class SVRBaseline:
    """RBF SVR whose hyperparameters are tuned on the training subjects only.

    Args:
        C_grid: Candidate values of the SVR penalty C.
        gamma_grid: Candidate RBF widths, numbers or "scale"/"auto" as in scikit-learn.
        epsilon_grid: Candidate widths of the epsilon-insensitive tube, in target units.
        inner_folds: Number of GroupKFold splits of the training subjects; lowered to the
            number of subjects when there are fewer (at least 2 are needed).
        seed: Seed of the subject shuffling in GroupKFold.

    Attributes:
        search_: The fitted GridSearchCV, after :meth:`fit`.
        best_params_: The chosen C, gamma and epsilon, after :meth:`fit`.
    """

    def __init__(
        self,
        C_grid: Sequence[float] = DEFAULT_C_GRID,
        gamma_grid: Sequence[float | str] = DEFAULT_GAMMA_GRID,
        epsilon_grid: Sequence[float] = DEFAULT_EPSILON_GRID,
        inner_folds: int = DEFAULT_INNER_FOLDS,
        seed: int = 0,
    ) -> None:
        self.C_grid = _check_grid("C_grid", C_grid)
        self.gamma_grid = _check_grid("gamma_grid", gamma_grid, allow_scale=True)
        self.epsilon_grid = _check_grid("epsilon_grid", epsilon_grid)
        if int(inner_folds) != inner_folds or inner_folds < 2:
            raise ValueError(f"inner_folds must be an integer >= 2, got {inner_folds!r}")
        self.inner_folds = int(inner_folds)
        self.seed = int(seed)
        self.search_: GridSearchCV | None = None
        self.best_params_: dict | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> SVRBaseline:
        """Tune and fit the model on training rows.

        Args:
            X: Features of shape (N, D), N training rows and D features.
            y: Targets of shape (N,).
            groups: Subject id of every row, shape (N,); inner folds never split a subject.

        Returns:
            self.

        Raises:
            ValueError: If shapes disagree, values are not finite, fewer than 2 subjects
                are given, or every feature is constant.
        """
        features = np.asarray(X, dtype=np.float64)
        targets = np.asarray(y, dtype=np.float64)
        subject_ids = np.asarray(groups)
        if features.ndim != 2:
            raise ValueError(f"X must have shape (N, D), got {features.shape}")
        if targets.shape != (features.shape[0],) or subject_ids.shape != (features.shape[0],):
            raise ValueError(
                f"y and groups must have shape ({features.shape[0]},), "
                f"got {targets.shape} and {subject_ids.shape}"
            )
        if not (np.all(np.isfinite(features)) and np.all(np.isfinite(targets))):
            raise ValueError("X and y must contain only finite values")
        num_subjects = np.unique(subject_ids).size
        if num_subjects < 2:
            raise ValueError(f"groups must contain at least 2 subjects, got {num_subjects}")
        if not np.any(features.var(axis=0) > 0):
            raise ValueError("every column of X is constant, so there is nothing to learn from")

        splits = min(self.inner_folds, num_subjects)
        if splits < self.inner_folds:
            logger.warning(
                "only %d training subjects, so using %d inner folds instead of %d",
                num_subjects, splits, self.inner_folds,
            )
        pipeline = Pipeline([
            ("variance", VarianceThreshold(threshold=0.0)),
            ("scaler", StandardScaler()),
            ("svr", SVR(kernel="rbf")),
        ])
        param_grid = {
            "svr__C": self.C_grid,
            "svr__gamma": self.gamma_grid,
            "svr__epsilon": self.epsilon_grid,
        }
        inner_cv = GroupKFold(n_splits=splits, shuffle=True, random_state=self.seed)
        search = GridSearchCV(
            pipeline,
            param_grid,
            scoring="neg_mean_absolute_error",
            cv=inner_cv,
            refit=True,
            n_jobs=1,
            error_score="raise",
        )
        search.fit(features, targets, groups=subject_ids)
        self.search_ = search
        self.best_params_ = {
            name.removeprefix("svr__"): value for name, value in search.best_params_.items()
        }
        logger.debug(
            "SVR best parameters %s, inner MAE %.3f", self.best_params_, -search.best_score_
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict targets for rows of shape (N, D) with the refitted best model.

        Raises:
            RuntimeError: If called before :meth:`fit`.
            ValueError: If X is not 2-D or contains non-finite values.
        """
        if self.search_ is None:
            raise RuntimeError("SVRBaseline.predict was called before fit")
        features = np.asarray(X, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"X must have shape (N, D), got {features.shape}")
        if not np.all(np.isfinite(features)):
            raise ValueError("X must contain only finite values")
        return self.search_.predict(features)
