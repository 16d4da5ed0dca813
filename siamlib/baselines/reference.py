"""Reference baseline: always predict the mean age of the training subjects.

Any method worth reporting must beat it. On UvA-NEMO, predicting the mean age of all
videos gives an MAE of 14.24 years (from the database's annotation statistics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHOD_NAME = "Mean training age"


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
