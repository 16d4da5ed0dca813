"""Oracle age regressor fitted on the true latent cue values of a synthetic dataset.

`generate_dataset` writes `cues.csv` with one row per video: the identifiers, the true age
and the latent cue values that the renderer turned into pixels. The oracle is a regressor
that reads those latent values directly, under the same subject-disjoint cross-validation as
the benchmark models. Its MAE estimates the error floor that a model watching the videos can
reach, because the generator passes the age to the renderer only through these cues.

Limits of the oracle:
    * It reads exact latent values, without rendering, video compression, landmark or
      alignment errors, and without the nuisance factors (lighting, head pose, blinks). A
      video model has to recover the cues from noisy pixels and will stay above the floor.
    * The floor is only as good as the regressor. A model can beat the oracle MAE by chance
      on a small dataset, or because the oracle's fixed hyperparameter grid is not optimal.
      On the default 465-video dataset the all-cue oracle had an MAE of 3.41 years,
      `apparent_age` with the five dynamics cues 3.38, and `apparent_age` alone 3.91 against
      4.20 for all appearance cues, so the many weak cues cost some accuracy.
    * Dynamics cues of one subject's clips share the age but have independent noise, so a
      model that pools all clips of a subject can beat the per-video oracle on dynamics.
    * It uses only the cues listed in `CUE_SPECS`. Derived columns of `cues.csv` such as
      `wrinkle_level`, `onset_speed` or `timeline_compression` are functions of those cues
      or of the clip fitting and are left out.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from siamlib.data.splits import subject_folds
from siamlib.data.synthetic.cues import CUE_SPECS

logger = logging.getLogger(__name__)

CUE_KINDS = ("appearance", "dynamics", "all")

# Grid of the inner subject-disjoint search. Ages are in years and the cues are standardized,
# so C spans "barely moves from the median age" (1) to "fits the training ages closely" (1000).
SVR_C_GRID = (1.0, 10.0, 100.0, 1000.0)
SVR_GAMMA_GRID = (0.01, 0.1, 1.0)
SVR_EPSILON_YEARS = 1.0
INNER_FOLDS = 3


def _check_cues_table(cues: object) -> None:
    """Raise ValueError unless `cues` is a non-empty table with `subject` and `age` columns."""
    if not isinstance(cues, pd.DataFrame):
        raise ValueError(f"cues must be a pandas DataFrame, got {type(cues).__name__}")
    if cues.empty:
        raise ValueError("cues is empty, expected at least one video row")
    missing = {"subject", "age"} - set(cues.columns)
    if missing:
        raise ValueError(f"cues is missing the columns {sorted(missing)}")
    if not pd.api.types.is_numeric_dtype(cues["age"]) or cues["age"].isna().any():
        raise ValueError("cues['age'] must be numeric without missing values")
    if cues["subject"].isna().any():
        raise ValueError("cues['subject'] must not contain missing values")


def _spec_kind(kind: str) -> str:
    """Return "appearance" or "dynamics" from a `CueSpec.kind` such as "dynamics (age)"."""
    return kind.split()[0]


def cue_columns(cues: pd.DataFrame, kind: str) -> list[str]:
    """Select the latent cue columns of one kind that `cues` contains.

    The candidates are the cue names in `CUE_SPECS`, in that order, so identifiers, `age`,
    `gender`, `smile_type` and derived columns are never selected. `apparent_age` is kept
    because it is the age plus 4 σ years of per-subject noise (σ = `cue_noise`), and every
    other appearance cue is rendered from it. A column that equals `age` in every row is dropped
    with a warning, because it would hand the label to the regressor. This happens to
    `apparent_age` when the dataset was generated with `cue_noise = 0`.

    Args:
        cues: Table written by `generate_dataset` (`cues.csv`), with `subject` and `age`.
        kind: "appearance", "dynamics" or "all".

    Returns:
        Names of the selected columns, in `CUE_SPECS` order. Empty if the table has none.

    Raises:
        ValueError: If `cues` is not a valid cue table or `kind` is not one of `CUE_KINDS`.
    """
    _check_cues_table(cues)
    if kind not in CUE_KINDS:
        raise ValueError(f"kind must be one of {CUE_KINDS}, got {kind!r}")

    selected = []
    age = cues["age"].to_numpy(dtype=float)
    for spec in CUE_SPECS:
        if kind != "all" and _spec_kind(spec.kind) != kind:
            continue
        if spec.name not in cues.columns:
            continue
        values = cues[spec.name]
        if pd.api.types.is_numeric_dtype(values) and np.allclose(values.to_numpy(float), age):
            logger.warning("Dropping cue column %r because it equals the age in every row",
                           spec.name)
            continue
        selected.append(spec.name)
    return selected


def _check_cue_columns(cues: pd.DataFrame, columns: list[str]) -> None:
    """Raise ValueError unless `columns` is a non-empty list of numeric, complete columns."""
    if not isinstance(columns, list) or not columns:
        raise ValueError(f"cue_columns must be a non-empty list of column names, got {columns!r}")
    forbidden = {"video", "subject", "age", "gender", "smile_type"} & set(columns)
    if forbidden:
        raise ValueError(
            f"cue_columns must not contain the label or identifiers {sorted(forbidden)}"
        )
    missing = [column for column in columns if column not in cues.columns]
    if missing:
        raise ValueError(f"cue_columns names columns missing from cues: {missing}")
    for column in columns:
        if not pd.api.types.is_numeric_dtype(cues[column]):
            raise ValueError(f"cue_columns entry {column!r} is not numeric in cues")
        if cues[column].isna().any():
            raise ValueError(f"cue_columns entry {column!r} has missing values in cues")


def _check_fold_arguments(num_folds: object, seed: object) -> None:
    """Raise ValueError unless `num_folds` is an integer >= 2 and `seed` an integer."""
    if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)) or num_folds < 2:
        raise ValueError(f"num_folds must be an integer >= 2, got {num_folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def _outer_folds(cues: pd.DataFrame, num_folds: int, seed: int) -> np.ndarray:
    """Return the subject-disjoint, age-stratified fold index of every row of `cues`."""
    if num_folds > cues["subject"].nunique():
        raise ValueError(
            f"num_folds must be at most the number of subjects ({cues['subject'].nunique()}), "
            f"got {num_folds}"
        )
    return subject_folds(cues, num_folds=num_folds, seed=seed).to_numpy()


def _fit_predict(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Fit the oracle on the rows of `train` and return its age predictions for `test`.

    The hyperparameters are chosen by a grid search with subject-disjoint inner folds, so
    no row of `test` influences the choice.
    """
    pipeline = Pipeline([
        ("scale", StandardScaler()),
        ("svr", SVR(kernel="rbf", epsilon=SVR_EPSILON_YEARS)),
    ])
    x_train = train[columns].to_numpy(dtype=float)
    y_train = train["age"].to_numpy(dtype=float)
    num_subjects = train["subject"].nunique()
    if num_subjects < 2:
        # One training subject leaves no inner folds, so C = 10 and gamma = "scale" are used
        # without a search.
        pipeline.set_params(svr__C=10.0)
        pipeline.fit(x_train, y_train)
        return pipeline.predict(test[columns].to_numpy(dtype=float))

    search = GridSearchCV(
        pipeline,
        param_grid={"svr__C": list(SVR_C_GRID), "svr__gamma": list(SVR_GAMMA_GRID)},
        scoring="neg_mean_absolute_error",
        cv=GroupKFold(n_splits=min(INNER_FOLDS, num_subjects)),
    )
    search.fit(x_train, y_train, groups=train["subject"].to_numpy())
    return search.predict(test[columns].to_numpy(dtype=float))


def oracle_mae(
    cues: pd.DataFrame, cue_columns: list[str], num_folds: int = 5, seed: int = 0
) -> float:
    """Estimate the MAE of an age regressor that reads the true latent cue values.

    The regressor is a StandardScaler followed by an RBF support vector regressor. It is
    chosen because the planted age curves are smooth, saturating functions of a few cues
    (see `CUE_SPECS`), which an RBF kernel fits well from a few hundred rows. The ε-insensitive
    loss is robust to the log-normal cue noise, and the fit is deterministic. One fold with
    the grid search took about 0.5 s for 465 rows on 2 CPU cores. C and gamma come from a
    grid search over `SVR_C_GRID` × `SVR_GAMMA_GRID` with `INNER_FOLDS` subject-disjoint
    inner folds, on the training subjects only. Gradient-boosted trees were not used
    because their piecewise constant fits need more rows to follow a smooth curve.

    Args:
        cues: Table written by `generate_dataset` (`cues.csv`), one row per video, with
            `subject`, `age` and the columns in `cue_columns`.
        cue_columns: Names of the numeric cue columns the regressor reads.
        num_folds: Number of outer cross-validation folds. The folds are subject-disjoint
            and age-stratified (`siamlib.data.splits.subject_folds`).
        seed: Seed of the fold assignment.

    Returns:
        Mean absolute error in years over all videos, each predicted by the model of the fold
        that held its subject out.

    Raises:
        ValueError: If `cues`, `cue_columns`, `num_folds` or `seed` is invalid, or a subject
            has more than one age.
    """
    _check_cues_table(cues)
    _check_cue_columns(cues, cue_columns)
    _check_fold_arguments(num_folds, seed)

    folds = _outer_folds(cues, num_folds, seed)
    predictions = np.empty(len(cues), dtype=float)
    for fold in range(num_folds):
        test_rows = folds == fold
        predictions[test_rows] = _fit_predict(cues[~test_rows], cues[test_rows], cue_columns)
    return float(np.mean(np.abs(predictions - cues["age"].to_numpy(dtype=float))))


def mean_age_mae(cues: pd.DataFrame, num_folds: int = 5, seed: int = 0) -> float:
    """Compute the MAE of predicting the mean training age, on the same folds as `oracle_mae`.

    Args:
        cues: Table with `subject` and `age` columns, one row per video.
        num_folds: Number of subject-disjoint outer folds.
        seed: Seed of the fold assignment.

    Returns:
        Mean absolute error in years over all videos.

    Raises:
        ValueError: If `cues`, `num_folds` or `seed` is invalid.
    """
    _check_cues_table(cues)
    _check_fold_arguments(num_folds, seed)

    folds = _outer_folds(cues, num_folds, seed)
    ages = cues["age"].to_numpy(dtype=float)
    predictions = np.empty(len(cues), dtype=float)
    for fold in range(num_folds):
        test_rows = folds == fold
        predictions[test_rows] = ages[~test_rows].mean()
    return float(np.mean(np.abs(predictions - ages)))


def oracle_report(cues: pd.DataFrame, num_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Compare the mean-age baseline with the appearance, dynamics and all-cue oracles.

    Args:
        cues: Table written by `generate_dataset` (`cues.csv`).
        num_folds: Number of subject-disjoint outer folds, shared by all rows.
        seed: Seed of the fold assignment.

    Returns:
        Table with the columns `predictor`, `mae` (years) and `num_cues`, and the rows
        "mean training age", "appearance oracle", "dynamics oracle" and "all cues oracle".
        An oracle whose kind has no column in `cues` gets a NaN `mae` and `num_cues` 0.

    Raises:
        ValueError: If `cues`, `num_folds` or `seed` is invalid.
    """
    rows = [{"predictor": "mean training age", "mae": mean_age_mae(cues, num_folds, seed),
             "num_cues": 0}]
    for kind in ("appearance", "dynamics", "all"):
        columns = cue_columns(cues, kind)
        name = "all cues oracle" if kind == "all" else f"{kind} oracle"
        if not columns:
            logger.warning("cues has no %s cue columns, so the %s is skipped", kind, name)
            mae = float("nan")
        else:
            mae = oracle_mae(cues, columns, num_folds=num_folds, seed=seed)
        logger.info("%s: MAE %.2f years from %d cues", name, mae, len(columns))
        rows.append({"predictor": name, "mae": mae, "num_cues": len(columns)})
    return pd.DataFrame(rows, columns=["predictor", "mae", "num_cues"])
