"""Mean absolute error overall and per group, as age-estimation papers report it.

All functions read the predictions table described in :mod:`siamlib.evaluation.predictions`
and never import a model or a baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Age groups of the UvA-NEMO age-estimation literature: 8-9, then decades, then 60 and over.
# Each entry is (label, lowest age, highest age), both ends inclusive; None means no upper end.
DEFAULT_AGE_GROUPS: tuple[tuple[str, int, int | None], ...] = (
    ("8-9", 8, 9),
    ("10-19", 10, 19),
    ("20-29", 20, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60+", 60, None),
)


def parse_age_groups(edges: Sequence[int]) -> tuple[tuple[str, int, int | None], ...]:
    """Build age groups from their lower edges, e.g. ``[8, 10, 20, 60]``.

    The groups are ``8-9``, ``10-19``, ``20-59`` and ``60+``: each lower edge starts a group
    that ends one year before the next edge, and the last group has no upper end.

    Raises:
        ValueError: If ``edges`` is empty or not strictly increasing.
    """
    edges = [int(edge) for edge in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"age group edges must be a non-empty increasing list, got {edges}")
    groups: list[tuple[str, int, int | None]] = []
    for lower, upper in zip(edges, edges[1:]):
        groups.append((f"{lower}-{upper - 1}", lower, upper - 1))
    groups.append((f"{edges[-1]}+", edges[-1], None))
    return tuple(groups)


def assign_age_group(
    ages: Sequence[int] | np.ndarray | pd.Series,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> np.ndarray:
    """Return the label of the age group of each age.

    Ages below the first group fall into the first group, so that no video is dropped from
    the per-group tables. The first group's label then understates its range.
    """
    ages = np.asarray(ages)
    labels = np.empty(ages.shape, dtype=object)
    labels[:] = groups[0][0]
    for label, lower, _upper in groups:
        labels[ages >= lower] = label
    return labels


def _mae(table: pd.DataFrame) -> float:
    return float(np.mean(np.abs(table["predicted_age"] - table["age"])))


def _cell(table: pd.DataFrame) -> dict[str, Any]:
    return {
        "mae": round(_mae(table), 4),
        "num_videos": int(len(table)),
        "num_subjects": int(table["subject"].nunique()),
    }


def summarise_method(
    predictions: pd.DataFrame,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> dict[str, Any]:
    """Summarise one method's predictions.

    Args:
        predictions: The predictions of a single method over all folds.
        groups: Age groups as ``(label, lowest, highest or None)``.

    Returns:
        A dictionary with the pooled ``mae`` over all videos, ``mae_sd_folds`` (the standard
        deviation of the per-fold MAE, ddof=1, 0.0 with a single fold), ``mae_per_fold``,
        the counts of videos and subjects, and ``by_age_group``, ``by_gender`` and
        ``by_smile_type``, each mapping a group to its MAE and counts. Groups with no video
        are left out.

    Raises:
        ValueError: If the table is empty or contains more than one method.
    """
    if predictions.empty:
        raise ValueError("predictions is empty: nothing to summarise")
    methods = predictions["method"].unique()
    if len(methods) != 1:
        raise ValueError(f"predictions must hold one method, got {list(methods)}")

    per_fold = predictions.groupby("fold").apply(_mae, include_groups=False)
    summary: dict[str, Any] = _cell(predictions)
    summary["mae_sd_folds"] = round(float(per_fold.std(ddof=1)) if len(per_fold) > 1 else 0.0, 4)
    summary["mae_per_fold"] = {str(fold): round(float(mae), 4) for fold, mae in per_fold.items()}

    group_labels = assign_age_group(predictions["age"], groups)
    summary["by_age_group"] = {
        label: _cell(predictions[group_labels == label])
        for label, _lower, _upper in groups
        if (group_labels == label).any()
    }
    for column in ("gender", "smile_type"):
        summary[f"by_{column}"] = {
            str(value): _cell(subset) for value, subset in predictions.groupby(column, sort=True)
        }
    return summary


def summarise(
    predictions: pd.DataFrame,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> dict[str, dict[str, Any]]:
    """Summarise every method in a predictions table; see :func:`summarise_method`."""
    return {
        str(method): summarise_method(subset, groups)
        for method, subset in predictions.groupby("method", sort=True)
    }


def group_mae_table(
    predictions: pd.DataFrame,
    column: str,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> pd.DataFrame:
    """Return a long table of MAE per method and per value of ``column``.

    ``column`` is ``"age_group"`` (derived from ``age``), ``"gender"`` or ``"smile_type"``.
    Columns of the result: method, the group column, mae, num_videos, num_subjects.
    """
    table = predictions.copy()
    if column == "age_group":
        table["age_group"] = assign_age_group(table["age"], groups)
        order = [label for label, _lower, _upper in groups]
    elif column in ("gender", "smile_type"):
        order = sorted(table[column].unique())
    else:
        raise ValueError(f"column must be 'age_group', 'gender' or 'smile_type', got {column!r}")
    rows = []
    for (method, value), subset in table.groupby(["method", column], sort=True):
        rows.append({"method": method, column: value, **_cell(subset)})
    result = pd.DataFrame(rows)
    result[column] = pd.Categorical(result[column], categories=order, ordered=True)
    return result.sort_values(["method", column]).reset_index(drop=True)


def mean_age_mae(ages: Sequence[int] | np.ndarray) -> float:
    """Return the MAE of always predicting the mean of ``ages`` on the same ages."""
    ages = np.asarray(ages, dtype=float)
    if ages.size == 0 or not math.isfinite(float(ages.mean())):
        raise ValueError("ages must be a non-empty array of finite values")
    return float(np.mean(np.abs(ages - ages.mean())))
