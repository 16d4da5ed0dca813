"""Every method's metrics with intervals and paired tests, overall, per fold and per group.

:func:`evaluate` turns the predictions table of all methods into the tables the report shows:

- ``overall``: per method, MAE, RMSE and Pearson r with subject-bootstrap intervals, the SD
  of the per-fold MAE, CS(5) and CS(10), and the paired comparison with the reference
  method (SIAM): MAE difference with its interval, Wilcoxon p-value, Holm-adjusted p-value
  over the methods compared, and the rank-biserial effect size;
- ``per_fold``: MAE, RMSE, Pearson r and CS(theta) of each method in each test fold;
- ``groups``: MAE and RMSE with intervals and the paired comparison, per age group,
  gender, smile type and gender x age group, with the
  number of subjects and videos in each cell and ``few_subjects`` set below
  ``min_subjects`` subjects (10 by default). Per-group p-values are not
  adjusted for the number of cells;
- ``cumulative``: the cumulative score CS(theta), the share of videos with an absolute error
  of at most theta years, for theta = 0 ... 15, with intervals.

Like the rest of :mod:`siamlib.evaluation`, it reads predictions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import os
from pathlib import Path

import numpy as np
import pandas as pd

from siamlib.evaluation.metrics import DEFAULT_AGE_GROUPS, assign_age_group
from siamlib.evaluation.statistics import (
    CS_THRESHOLDS,
    MIN_SUBJECTS,
    BootstrapSettings,
    bootstrap_metrics,
    holm,
    paired_comparison,
    point_metrics,
)

REFERENCE = "SIAM"
# Groupings of the per-group table, in the order the report shows them.
GROUPINGS: tuple[str, ...] = ("age_group", "gender", "smile_type", "gender_age_group")
COMPARISON_COLUMNS = ("difference", "difference_low", "difference_high", "p_value", "effect_size")


@dataclass
class Evaluation:
    """The tables of :func:`evaluate`; see the module docstring for their contents."""

    overall: pd.DataFrame
    per_fold: pd.DataFrame
    groups: pd.DataFrame
    cumulative: pd.DataFrame
    reference: str
    settings: BootstrapSettings
    min_subjects: int

    def describe(self) -> dict[str, Any]:
        """Return how the intervals and tests were computed, for the metrics file."""
        return {
            "reference": self.reference,
            "interval": f"percentile, {self.settings.cluster}s resampled",
            "confidence": self.settings.confidence,
            "bootstrap_resamples": self.settings.num_resamples,
            "bootstrap_seed": self.settings.seed,
            "test": "Wilcoxon signed-rank, two-sided, on per-subject mean absolute errors",
            "effect_size": "matched-pairs rank-biserial correlation",
            "min_subjects": self.min_subjects,
        }


def add_groups(
    predictions: pd.DataFrame, groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS
) -> pd.DataFrame:
    """Return the predictions with ``age_group`` and ``gender_age_group`` columns added.

    Both are ordered categoricals: age groups in age order, and gender x age group as
    ``"female 8-9"``, ..., ``"male 60+"``.
    """
    table = predictions.copy()
    labels = [label for label, _lower, _upper in groups]
    table["age_group"] = pd.Categorical(assign_age_group(table["age"], groups), labels, ordered=True)
    genders = sorted(table["gender"].astype(str).unique())
    combined = [f"{gender} {label}" for gender in genders for label in labels]
    table["gender_age_group"] = pd.Categorical(
        table["gender"].astype(str) + " " + table["age_group"].astype(str), combined, ordered=True
    )
    return table


def _metric_columns(values: dict[str, tuple[float, float, float]], names: Sequence[str]) -> dict:
    row: dict[str, float] = {}
    for name in names:
        estimate, low, high = values[name]
        row[name] = estimate
        row[f"{name}_low"] = low
        row[f"{name}_high"] = high
    return row


def _counts(table: pd.DataFrame) -> dict[str, int]:
    return {"videos": int(len(table)), "subjects": int(table["subject"].nunique())}


def _comparison(
    table: pd.DataFrame, reference: pd.DataFrame | None, method: str, reference_name: str,
    settings: BootstrapSettings,
) -> dict[str, float]:
    if reference is None or method == reference_name:
        return {column: float("nan") for column in COMPARISON_COLUMNS}
    result = paired_comparison(reference, table, settings)
    return {column: result[column] for column in COMPARISON_COLUMNS}


def evaluate(
    predictions: pd.DataFrame,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
    settings: BootstrapSettings = BootstrapSettings(),
    reference: str = REFERENCE,
    thresholds: Sequence[int] = CS_THRESHOLDS,
    min_subjects: int = MIN_SUBJECTS,
) -> Evaluation:
    """Compute every table of the report from the predictions of all methods.

    Args:
        predictions: The predictions table (:mod:`siamlib.evaluation.predictions`).
        groups: Age groups as ``(label, lowest, highest or None)``.
        settings: Bootstrap settings of every interval.
        reference: The method every other one is compared with; comparisons are left empty
            (NaN) when it has no predictions.
        thresholds: Error thresholds of the cumulative score, in years.
        min_subjects: Cells with fewer subjects get ``few_subjects`` set.

    Raises:
        ValueError: If ``predictions`` is empty.
    """
    if predictions.empty:
        raise ValueError("predictions is empty: nothing to evaluate")
    table = add_groups(predictions, groups)
    by_method = {str(method): rows for method, rows in table.groupby("method", sort=True)}
    reference_rows = by_method.get(reference)
    cs_names = [f"cs_{theta}" for theta in thresholds]
    headline_cs = [name for name in ("cs_5", "cs_10") if name in cs_names]

    overall, per_fold, cumulative, cells = [], [], [], []
    for method, rows in by_method.items():
        values = bootstrap_metrics(rows, settings, thresholds)
        fold_mae = {}
        for fold, fold_rows in rows.groupby("fold", sort=True):
            fold_values = point_metrics(fold_rows, thresholds)
            fold_mae[fold] = fold_values["mae"]
            per_fold.append({"method": method, "fold": int(fold), **_counts(fold_rows),
                             **{name: fold_values[name] for name in ("mae", "rmse", "pearson_r", *cs_names)}})
        sd_folds = float(np.std(list(fold_mae.values()), ddof=1)) if len(fold_mae) > 1 else 0.0
        overall.append({
            "method": method, **_counts(rows),
            **_metric_columns(values, ("mae", "rmse", "pearson_r")),
            "mae_sd_folds": sd_folds,
            **{name: values[name][0] for name in headline_cs},
            **_comparison(rows, reference_rows, method, reference, settings),
        })
        for theta, name in zip(thresholds, cs_names):
            estimate, low, high = values[name]
            cumulative.append({"method": method, "theta": int(theta), "cs": estimate,
                               "cs_low": low, "cs_high": high})
        for grouping in GROUPINGS:
            for group, cell in rows.groupby(grouping, sort=True, observed=True):
                cell_reference = None
                if reference_rows is not None:
                    cell_reference = reference_rows[reference_rows[grouping] == group]
                counts = _counts(cell)
                cells.append({
                    "method": method, "grouping": grouping, "group": str(group), **counts,
                    "few_subjects": counts["subjects"] < min_subjects,
                    **_metric_columns(bootstrap_metrics(cell, settings, ()), ("mae", "rmse")),
                    **_comparison(cell, cell_reference, method, reference, settings),
                })

    overall = pd.DataFrame(overall)
    overall["p_holm"] = holm(overall["p_value"])
    overall = overall.sort_values(["mae", "method"]).reset_index(drop=True)
    group_table = pd.DataFrame(cells)
    # Keep each grouping's natural order (age order, not string order) when sorting.
    order = {grouping: list(table[grouping].cat.categories) if grouping in ("age_group", "gender_age_group")
             else sorted(table[grouping].astype(str).unique()) for grouping in GROUPINGS}
    group_table["_grouping"] = group_table["grouping"].map(GROUPINGS.index)
    group_table["_group"] = [order[g].index(v) for g, v in zip(group_table["grouping"], group_table["group"])]
    group_table = (group_table.sort_values(["_grouping", "_group", "method"])
                   .drop(columns=["_grouping", "_group"]).reset_index(drop=True))
    return Evaluation(
        overall=overall,
        per_fold=pd.DataFrame(per_fold),
        groups=group_table,
        cumulative=pd.DataFrame(cumulative),
        reference=reference,
        settings=settings,
        min_subjects=min_subjects,
    )


def _rounded(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if not np.isfinite(value) else round(value, 4)


def metrics_by_method(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """Return the per-method part of reports/metrics.json.

    For each method: the counts, MAE, RMSE and Pearson r with ``_low`` and ``_high``
    interval ends, the SD and values of the per-fold MAE, CS(5) and CS(10), the comparison
    with the reference (``vs_<reference>``, absent for the reference itself), and
    ``by_age_group``, ``by_gender``, ``by_smile_type`` and ``by_gender_age_group``, each
    mapping a group to its MAE, interval, counts and ``few_subjects``. Undefined values
    (e.g. Pearson r of a constant prediction) are null.
    """
    result: dict[str, dict[str, Any]] = {}
    for row in evaluation.overall.sort_values("method").to_dict("records"):
        method = row["method"]
        entry: dict[str, Any] = {
            "num_videos": row["videos"], "num_subjects": row["subjects"],
            **{key: row[key] for key in ("mae", "mae_low", "mae_high", "rmse", "rmse_low",
                                         "rmse_high", "pearson_r", "pearson_r_low",
                                         "pearson_r_high", "mae_sd_folds")},
        }
        folds = evaluation.per_fold[evaluation.per_fold["method"] == method]
        entry["mae_per_fold"] = {str(fold): mae for fold, mae in zip(folds["fold"], folds["mae"])}
        entry.update({key: row[key] for key in ("cs_5", "cs_10") if key in row})
        if method != evaluation.reference and np.isfinite(row["difference"]):
            entry[f"vs_{evaluation.reference}"] = {
                key: row[key] for key in (*COMPARISON_COLUMNS, "p_holm")
            }
        cells = evaluation.groups[evaluation.groups["method"] == method]
        for grouping in GROUPINGS:
            entry[f"by_{grouping}"] = {
                cell["group"]: {
                    "mae": cell["mae"], "mae_low": cell["mae_low"], "mae_high": cell["mae_high"],
                    "num_videos": cell["videos"], "num_subjects": cell["subjects"],
                    "few_subjects": cell["few_subjects"],
                }
                for cell in cells[cells["grouping"] == grouping].to_dict("records")
            }
        result[method] = _round_tree(entry)
    return result


def _round_tree(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _round_tree(item, name) for name, item in value.items()}
    if key in ("p_value", "p_holm") and value is not None and np.isfinite(value):
        return float(f"{value:.3g}")  # three significant digits: 4 decimals would print 0.0
    return _rounded(value)


TABLE_FILES = {"overall": "overall.csv", "per_fold": "per_fold.csv", "groups": "groups.csv",
               "cumulative": "cumulative_score.csv"}


def write_tables(evaluation: Evaluation, folder: str | os.PathLike) -> None:
    """Write the four tables of an evaluation as CSV files in ``folder`` (see TABLE_FILES).

    Each file is written to a temporary name and renamed, so a reader never sees half a table.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for attribute, name in TABLE_FILES.items():
        temporary = folder / (name + ".tmp")
        # Six significant digits, so that small p-values do not print as 0.
        getattr(evaluation, attribute).to_csv(temporary, index=False, float_format="%.6g")
        os.replace(temporary, folder / name)
