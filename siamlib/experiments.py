"""Ablation and learning-curve experiments: SIAM variants and training-set sizes, same folds.

An ablation variant is a name and a set of overrides of the `model` and `train` sections of
params.yaml, e.g. ``{"model": {"spatial_attention": "none"}}``. Every variant is trained on
the same subject-disjoint folds as the main study. To fit `make repro` on 2 CPU cores, the
ablation and the learning curve test only the first `num_folds` folds and train for at most
`epochs` epochs. The tables state this budget, and their numbers are not the main results.

A learning curve trains SIAM and the handcrafted SVR on nested shares of each fold's
training subjects (`siamlib.training.cross_validation.subsample_training_subjects`), so both
methods see the same subjects at every point.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siamlib.baselines.base import FitContext, VideoSet
from siamlib.baselines.handcrafted import HandcraftedSVR
from siamlib.evaluation.statistics import BootstrapSettings
from siamlib.evaluation.summary import evaluate
from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.training.config import TrainConfig
from siamlib.training.cross_validation import subsample_training_subjects

VARIANT_SECTIONS: tuple[str, ...] = ("model", "train")
ABLATION_SCORES: tuple[str, ...] = ("spatial_planted", "temporal_correlation", "apex_share_ratio")
# The variant every other one is compared with: SIAM as configured.
REFERENCE_VARIANT = "siam"


def variant_configs(
    model: Mapping[str, Any],
    train: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    image_size: int,
    epochs: int | None = None,
    patience: int | None = None,
) -> tuple[SIAMConfig, TrainConfig]:
    """Build the model and training configs of one variant.

    Args:
        model: The `model` section of params.yaml.
        train: The `train` section of params.yaml.
        overrides: The variant's changes, ``{"model": {...}, "train": {...}}``; None or
            empty for the model as configured.
        image_size: Side of the aligned clips in pixels.
        epochs: Upper bound on the epochs (the ablation's budget); None keeps `train`'s.
        patience: Early-stopping patience; None keeps `train`'s.

    Returns:
        (model config, training config).

    Raises:
        ValueError: If `overrides` names a section other than model and train, or a key or
            value that the configs reject.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(VARIANT_SECTIONS))
    if unknown:
        raise ValueError(f"variant overrides may only change {VARIANT_SECTIONS}, got {unknown}")
    model_values = {**copy.deepcopy(dict(model)), **dict(overrides.get("model") or {})}
    train_values = {**copy.deepcopy(dict(train)), **dict(overrides.get("train") or {})}
    if epochs is not None:
        train_values["epochs"] = min(int(train_values.get("epochs", epochs)), int(epochs))
    if patience is not None:
        train_values["patience"] = int(patience)
    model_config = SIAMConfig.from_dict({**model_values, "image_size": int(image_size)})
    return model_config, TrainConfig.from_dict(train_values)


def describe_overrides(overrides: Mapping[str, Any] | None) -> str:
    """Return the overrides as "section.key=value" pairs, or "as configured" when empty."""
    pairs = [
        f"{section}.{key}={value}"
        for section in VARIANT_SECTIONS
        for key, value in sorted(dict((overrides or {}).get(section) or {}).items())
    ]
    return ", ".join(pairs) if pairs else "as configured"


def first_folds(folds: np.ndarray, num_folds: int) -> list[int]:
    """Return the `num_folds` lowest fold ids in `folds` (all of them if there are fewer).

    Raises:
        ValueError: If `num_folds` is below 1.
    """
    if num_folds < 1:
        raise ValueError(f"num_folds must be >= 1, got {num_folds}")
    return [int(fold) for fold in np.unique(folds)[:num_folds]]


def count_parameters(model_config: SIAMConfig) -> int:
    """Return the number of trainable parameters of a SIAM with this config."""
    model = SIAM(model_config)
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def write_variant_summary(path: str | os.PathLike[str], summary: Mapping[str, Any]) -> None:
    """Write one variant's summary (parameters, time, faithfulness) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")


def ablation_table(
    predictions: pd.DataFrame,
    summaries: Mapping[str, Mapping[str, Any]],
    groups: Sequence[tuple[str, int, int | None]],
    settings: BootstrapSettings = BootstrapSettings(),
) -> pd.DataFrame:
    """Build the ablation table: one row per variant, in the order of `summaries`.

    Args:
        predictions: All variants' predictions; the method column is the variant name.
        summaries: Per variant, the JSON summary written by its stage, with the keys
            `overrides`, `num_parameters`, `train_seconds` and `faithfulness`.
        groups: Age groups, e.g. from `siamlib.evaluation.metrics.parse_age_groups`.
        settings: Bootstrap settings of the intervals and the paired comparisons.

    Returns:
        Columns variant, changes, MAE with its subject-bootstrap interval (MAE low, MAE
        high), RMSE, Pearson r, CS(5) and CS(10) (shares of videos within 5 and 10 years),
        SD across folds, videos, the comparison with the variant
        `siam` on the same videos (siam − variant in years, negative when `siam` is better,
        and the Wilcoxon signed-rank p-value on per-subject errors, "p vs siam"; NaN for
        `siam` itself or when it did not run), the MAE per age group ("MAE <group>") and
        per gender ("MAE <gender>"), the faithfulness scores of `ABLATION_SCORES` (mean
        over videos; NaN where undefined), parameters and training seconds.

    Raises:
        ValueError: If a variant in `summaries` has no predictions.
    """
    result = evaluate(predictions, groups, settings, reference=REFERENCE_VARIANT)
    overall = result.overall.set_index("method")
    cells = result.groups
    rows = []
    for variant, summary in summaries.items():
        if variant not in overall.index:
            raise ValueError(f"no predictions for ablation variant {variant!r}")
        values = overall.loc[variant]
        row: dict[str, Any] = {
            "variant": variant,
            "changes": describe_overrides(summary.get("overrides")),
            "MAE": values["mae"],
            "MAE low": values["mae_low"],
            "MAE high": values["mae_high"],
            "RMSE": values["rmse"],
            "Pearson r": values["pearson_r"],
            "CS(5)": values["cs_5"],
            "CS(10)": values["cs_10"],
            "SD across folds": values["mae_sd_folds"],
            "videos": int(values["videos"]),
            f"{REFERENCE_VARIANT} − variant": values["difference"],
            f"p vs {REFERENCE_VARIANT}": values["p_value"],
        }
        for grouping, prefix in (("age_group", "MAE"), ("gender", "MAE")):
            for cell in cells[(cells["method"] == variant) & (cells["grouping"] == grouping)].to_dict("records"):
                row[f"{prefix} {cell['group']}"] = cell["mae"]
        faithfulness = summary.get("faithfulness") or {}
        for score in ABLATION_SCORES:
            mean = (faithfulness.get(score) or {}).get("mean")
            row[score] = float("nan") if mean is None else mean
        row["parameters"] = summary["num_parameters"]
        row["training seconds"] = summary["train_seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def svr_learning_curve(
    data: VideoSet,
    folds: np.ndarray,
    test_folds: Sequence[int],
    fractions: Sequence[float],
    feature_set: str,
    svr_settings: Mapping[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Fit the handcrafted SVR on shares of each fold's training subjects.

    Fold k and share f train `HandcraftedSVR(features=feature_set)`, with seed `seed + k`
    as in the baselines stage, on `subsample_training_subjects(subjects, not fold k, f,
    seed + k)`: the subjects SIAM's training and validation rows come from at the same point.

    Args:
        data: Every video with its handcrafted features (`extract_features`).
        folds: Test fold of every video of `data`.
        test_folds: Folds to test.
        fractions: Shares of the training subjects, each in (0, 1].
        feature_set: "dynamics", "appearance" or "both".
        svr_settings: The SVR grid (the `baseline.svr` section).
        seed: Base seed.

    Returns:
        The predictions table of the tested rows with an added `fraction` column, one block
        per fraction.
    """
    index = data.index
    subjects = data.subjects
    folds = np.asarray(folds)
    tables = []
    for fraction in fractions:
        for fold in test_folds:
            test = folds == fold
            train = subsample_training_subjects(subjects, ~test, float(fraction), seed + fold)
            model = HandcraftedSVR(features=feature_set)
            context = FitContext(fold=int(fold), seed=seed + int(fold), work_dir=Path("."),
                                 settings={"svr": dict(svr_settings)})
            model.fit(data.take(np.flatnonzero(train)), context)
            tables.append(pd.DataFrame({
                "method": model.name,
                "video": index["video"].to_numpy()[test],
                "subject": subjects[test].astype(int),
                "fold": int(fold),
                "age": index["age"].to_numpy()[test].astype(int),
                "predicted_age": model.predict(data.take(np.flatnonzero(test)).without_ages()),
                "gender": index["gender"].to_numpy()[test],
                "smile_type": index["smile_type"].to_numpy()[test],
                "fraction": float(fraction),
            }))
    return pd.concat(tables, ignore_index=True)


def learning_curve_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Summarise learning-curve predictions: MAE per method, share and fold, and overall.

    Args:
        predictions: Predictions with a `fraction` column (one block per method and share).

    Returns:
        Columns method, fraction, fold ("all" for the pooled row), MAE and videos.
    """
    errors = predictions.assign(abs_error=(predictions["predicted_age"] - predictions["age"]).abs())
    per_fold = (errors.groupby(["method", "fraction", "fold"])["abs_error"]
                .agg(MAE="mean", videos="size").reset_index())
    per_fold["fold"] = per_fold["fold"].astype(str)
    pooled = (errors.groupby(["method", "fraction"])["abs_error"]
              .agg(MAE="mean", videos="size").reset_index().assign(fold="all"))
    table = pd.concat([per_fold, pooled], ignore_index=True)
    table["MAE"] = table["MAE"].round(4)
    return table.sort_values(["method", "fraction", "fold"]).reset_index(drop=True)
