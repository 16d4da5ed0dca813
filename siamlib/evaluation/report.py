"""The metrics file of the study and the dataset label that every result carries."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

DATASET_LABELS = {
    "synthetic": "synthetic benchmark, not UvA-NEMO",
    "uvanemo": "UvA-NEMO Smile Database",
    "manifest": "videos listed in a manifest, not UvA-NEMO",
}


def dataset_label(name: str) -> str:
    """Return the label shown in every title and table for a dataset name from params.yaml.

    Raises:
        ValueError: If ``name`` is not a known dataset.
    """
    if name not in DATASET_LABELS:
        raise ValueError(f"dataset name must be one of {sorted(DATASET_LABELS)}, got {name!r}")
    return DATASET_LABELS[name]


def build_metrics(
    summary: dict[str, dict[str, Any]],
    dataset_name: str,
    faithfulness: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap per-method summaries with the dataset they were computed on.

    Args:
        summary: Per-method metrics (`siamlib.evaluation.summary.metrics_by_method`, or
            `siamlib.evaluation.metrics.summarise`).
        dataset_name: Dataset name from params.yaml.
        faithfulness: Attention-faithfulness scores per method or variant
            (`siamlib.evaluation.faithfulness.summarise_faithfulness`); left out of the
            metrics when None or empty, as on datasets without planted ground truth.
        settings: How intervals and tests were computed
            (`siamlib.evaluation.summary.Evaluation.describe`), stored as ``evaluation``.

    Returns:
        The contents of reports/metrics.json.
    """
    metrics: dict[str, Any] = {
        "dataset": dataset_name,
        "dataset_label": dataset_label(dataset_name),
        "methods": summary,
    }
    if settings:
        metrics["evaluation"] = settings
    if faithfulness:
        metrics["attention_faithfulness"] = faithfulness
    return metrics


def write_metrics(metrics: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the metrics as indented JSON, atomically.

    Keys keep their insertion order, so age groups stay in age order rather than string order.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(temporary, path)


def overall_table(summary: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per method: MAE, its SD across folds, and the counts, best first."""
    rows = [
        {
            "method": method,
            "MAE": values["mae"],
            "SD across folds": values["mae_sd_folds"],
            "videos": values["num_videos"],
            "subjects": values["num_subjects"],
        }
        for method, values in summary.items()
    ]
    return pd.DataFrame(rows).sort_values("MAE").reset_index(drop=True)


def group_table(summary: dict[str, dict[str, Any]], key: str) -> pd.DataFrame:
    """Return MAE per method (rows) and group (columns) for ``key`` such as ``by_gender``."""
    table = pd.DataFrame(
        {method: {group: cell["mae"] for group, cell in values[key].items()}
         for method, values in summary.items()}
    ).T
    table.index.name = "method"
    return table
