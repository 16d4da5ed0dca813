"""The predictions table that every method writes and the evaluation reads.

One row per test video. Columns:

- ``method``: the method's display name, e.g. ``"SIAM"`` or ``"SVR (dynamics+appearance)"``;
- ``video``, ``subject``, ``fold``: which video, whose, and in which test fold it was predicted;
- ``age``: the annotated age in years; ``predicted_age``: the method's estimate in years;
- ``gender`` (``"female"``/``"male"``) and ``smile_type`` (``"spontaneous"``/``"posed"``).

Each method writes its own CSV file into one folder; :func:`load_predictions` reads every CSV
in that folder, so a new method appears in every table and figure without other edits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = (
    "method",
    "video",
    "subject",
    "fold",
    "age",
    "predicted_age",
    "gender",
    "smile_type",
)


def validate_predictions(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """Check a predictions table and return it with the columns in the standard order.

    Args:
        predictions: A table with at least the columns in ``PREDICTION_COLUMNS``.
        source: Where the table came from, used in error messages (a file name, a method).

    Returns:
        The table restricted to ``PREDICTION_COLUMNS``, with integer ``subject``, ``fold`` and
        ``age`` and float ``predicted_age``.

    Raises:
        ValueError: If a column is missing, a value is not finite, or a video of one method
            appears twice.
    """
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise ValueError(
            f"{source}: missing prediction columns {missing}; "
            f"every method must write the columns {list(PREDICTION_COLUMNS)}"
        )
    table = predictions.loc[:, list(PREDICTION_COLUMNS)].copy()
    table["subject"] = table["subject"].astype(int)
    table["fold"] = table["fold"].astype(int)
    table["age"] = table["age"].astype(int)
    table["predicted_age"] = table["predicted_age"].astype(float)
    if not np.isfinite(table["predicted_age"].to_numpy()).all():
        bad = table.loc[~np.isfinite(table["predicted_age"]), "video"].tolist()
        raise ValueError(f"{source}: predicted_age is not finite for videos {bad[:5]}")
    duplicated = table.duplicated(["method", "video"])
    if duplicated.any():
        raise ValueError(
            f"{source}: videos predicted twice by one method: "
            f"{table.loc[duplicated, 'video'].tolist()[:5]}"
        )
    return table


def write_predictions(predictions: pd.DataFrame, path: str | os.PathLike) -> None:
    """Validate a predictions table and write it as CSV, sorted by method and video.

    The file is written to a temporary name and then renamed, so an interrupted run never
    leaves a half-written table that a later stage would read.
    """
    table = validate_predictions(predictions, source=str(path))
    table = table.sort_values(["method", "video"]).reset_index(drop=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    table.to_csv(temporary, index=False, float_format="%.4f")
    os.replace(temporary, path)


def load_predictions(folder: str | os.PathLike) -> pd.DataFrame:
    """Read and concatenate every ``*.csv`` predictions table in a folder.

    Raises:
        FileNotFoundError: If the folder contains no CSV file.
        ValueError: If a table is invalid (see :func:`validate_predictions`) or two files
            use the same method name.
    """
    paths = sorted(Path(folder).glob("*.csv"))
    if not paths:
        raise FileNotFoundError(
            f"no predictions (*.csv) found in {folder}; run the training and baseline stages first"
        )
    tables = []
    seen: dict[str, Path] = {}
    for path in paths:
        table = validate_predictions(pd.read_csv(path), source=str(path))
        for method in table["method"].unique():
            if method in seen:
                raise ValueError(f"method {method!r} appears in both {seen[method]} and {path}")
            seen[method] = path
        tables.append(table)
    logger.info("Read predictions of %d methods from %d files", len(seen), len(paths))
    return pd.concat(tables, ignore_index=True)
