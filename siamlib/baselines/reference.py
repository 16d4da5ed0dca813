"""Reference baseline: always predict the mean age of the training videos.

Any method worth reporting must beat it. On UvA-NEMO, predicting the mean age of all
videos gives an MAE of 14.24 years (from the database's annotation statistics).
:class:`MeanAge` is the registered baseline (see :mod:`siamlib.baselines.base`), and
:func:`mean_age_predictions` computes the same predictions in one call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from siamlib.baselines.base import Baseline, FitContext, VideoSet

METHOD_NAME = "Mean training age"


class MeanAge(Baseline):
    """Predict the mean age of the training videos for every test video."""

    name = METHOD_NAME

    def __init__(self) -> None:
        self.mean_age_: float | None = None

    def fit(self, train: VideoSet, context: FitContext) -> None:
        """Store the mean of the training ages."""
        if len(train) == 0:
            raise ValueError("MeanAge.fit got no training videos")
        self.mean_age_ = float(train.ages.mean())

    def predict(self, test: VideoSet) -> np.ndarray:
        """Return the stored mean for every test video, float (N,)."""
        if self.mean_age_ is None:
            raise RuntimeError("MeanAge.predict was called before fit")
        return np.full(len(test), self.mean_age_)


def mean_age_predictions(index: pd.DataFrame, folds: np.ndarray) -> pd.DataFrame:
    """Predict, for each test fold, the mean age of the videos in the other folds.

    Args:
        index: One row per video with columns video, subject, age, gender, smile_type.
        folds: Test fold of each row of ``index``.

    Returns:
        The predictions table (see :mod:`siamlib.evaluation.predictions`).

    Raises:
        ValueError: If ``folds`` does not have one entry per row, or there is a single fold.
    """
    folds = np.asarray(folds)
    if folds.shape != (len(index),):
        raise ValueError(f"folds must have shape ({len(index)},), got {folds.shape}")
    if len(np.unique(folds)) < 2:
        raise ValueError("folds must contain at least two folds")

    ages = index["age"].to_numpy(dtype=float)
    predicted = np.empty(len(index))
    for fold in np.unique(folds):
        test = folds == fold
        predicted[test] = ages[~test].mean()

    return pd.DataFrame({
        "method": METHOD_NAME,
        "video": index["video"].to_numpy(),
        "subject": index["subject"].to_numpy(),
        "fold": folds,
        "age": index["age"].to_numpy(),
        "predicted_age": predicted,
        "gender": index["gender"].to_numpy(),
        "smile_type": index["smile_type"].to_numpy(),
    })
