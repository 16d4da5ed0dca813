"""Figures of the report's metrics, drawn from the predictions and the evaluation tables.

SIAM's attention is drawn by :mod:`siamlib.evaluation.attention_figures`.

Every figure function returns a matplotlib ``Figure`` and takes a ``dataset_label`` that goes
into the title, so a figure computed on the synthetic benchmark names it wherever it is shown.
The shared style and :func:`save_figure` live in :mod:`siamlib.evaluation.style` and are
imported here too, so notebooks can call ``figures.set_style()`` and ``figures.save_figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from siamlib.evaluation.metrics import DEFAULT_AGE_GROUPS, assign_age_group
from siamlib.evaluation.statistics import MIN_SUBJECTS
from siamlib.evaluation.style import FIGURE_SIZE, save_figure, set_style  # noqa: F401 (re-exported)


def _method_colours(methods: Sequence[str]) -> dict[str, tuple]:
    """One colour per method, the same in every figure: methods in name order, colorblind palette."""
    methods = sorted(methods)
    return dict(zip(methods, sns.color_palette("colorblind", len(methods))))


def mae_by_group(
    cells: pd.DataFrame,
    grouping: str,
    dataset_label: str,
    confidence: float = 0.95,
    min_subjects: int = MIN_SUBJECTS,
) -> plt.Figure:
    """Draw a grouped bar chart of MAE per method and group, with bootstrap intervals.

    Args:
        cells: The per-group table of :func:`siamlib.evaluation.summary.evaluate`.
        grouping: ``"age_group"``, ``"gender"``, ``"smile_type"`` or ``"gender_age_group"``.
        dataset_label: Name of the dataset, shown in the title.
        confidence: Coverage of the intervals in ``cells``, for the axis label.
        min_subjects: The threshold behind ``cells["few_subjects"]``, for the axis label.

    Groups flagged ``few_subjects`` for every method are marked with a dagger.
    """
    cells = cells[cells["grouping"] == grouping]
    if cells.empty:
        raise ValueError(f"no cells for grouping {grouping!r}")
    groups = list(dict.fromkeys(cells["group"]))  # the table's order: age order for ages
    colours = _method_colours(cells["method"].unique())
    methods = list(colours)
    width = 0.8 / len(methods)
    # Wider than FIGURE_SIZE by the legend and by the number of groups.
    figure, axes = plt.subplots(figsize=(max(FIGURE_SIZE[0], 0.35 * len(groups) * len(methods) ** 0.5 + 3) + 2.5,
                                         FIGURE_SIZE[1]))
    for offset, method in enumerate(methods):
        rows = cells[cells["method"] == method].set_index("group").reindex(groups)
        positions = np.arange(len(groups)) - 0.4 + width * (offset + 0.5)
        # A percentile interval need not contain the estimate (rounding alone can put a
        # constant cell's estimate a few ulp outside), and matplotlib rejects negative bars.
        errors = np.clip(np.vstack([rows["mae"] - rows["mae_low"], rows["mae_high"] - rows["mae"]]), 0.0, None)
        axes.bar(positions, rows["mae"], width, yerr=errors, color=colours[method], label=method,
                 error_kw={"elinewidth": 0.8, "capsize": 1.5})
    # Subjects per group under each tick label (the most any method predicted), since the
    # intervals of small groups are wide.
    subjects = cells.groupby("group", sort=False)["subjects"].max().reindex(groups)
    few = cells.groupby("group", sort=False)["few_subjects"].all().reindex(groups)
    axes.set_xticks(np.arange(len(groups)))
    axes.set_xticklabels([f"{group}{' †' if flag else ''}\n{count} subj."
                          for group, count, flag in zip(groups, subjects, few)],
                         fontsize="small" if len(groups) > 8 else None,
                         rotation=90 if len(groups) > 8 else 0)
    name = {"gender_age_group": "gender × age group"}.get(grouping, grouping.replace("_", " "))
    axes.set_xlabel(f"{name}; † fewer than {min_subjects} subjects")
    axes.set_ylabel(f"MAE (years), {confidence:.0%} CI")
    axes.set_title(f"MAE by {name}, intervals by resampling subjects — {dataset_label}",
                   fontsize="medium")
    # Outside the axes, so that the legend never hides a bar.
    axes.legend(title="method", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def cumulative_score(cumulative: pd.DataFrame, dataset_label: str, confidence: float = 0.95) -> plt.Figure:
    """Draw the cumulative score CS(theta) of each method with its bootstrap band.

    Args:
        cumulative: The ``cumulative`` table of :func:`siamlib.evaluation.summary.evaluate`
            (method, theta, cs, cs_low, cs_high).
        dataset_label: Name of the dataset, shown in the title.
        confidence: Coverage of the bands, for the axis label.
    """
    colours = _method_colours(cumulative["method"].unique())
    figure, axes = plt.subplots(figsize=(FIGURE_SIZE[0] + 2.5, FIGURE_SIZE[1]))
    for method, colour in colours.items():
        rows = cumulative[cumulative["method"] == method].sort_values("theta")
        axes.plot(rows["theta"], 100 * rows["cs"], marker="o", markersize=3, color=colour, label=method)
        axes.fill_between(rows["theta"], 100 * rows["cs_low"], 100 * rows["cs_high"], color=colour,
                          alpha=0.12, linewidth=0)
    axes.set_xlabel("error threshold θ (years)")
    axes.set_ylabel(f"videos with |error| ≤ θ (%), {confidence:.0%} CI")
    axes.set_ylim(0, 100)
    axes.set_title(f"Cumulative score — {dataset_label}", fontsize="medium")
    axes.legend(title="method", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def error_vs_age(
    predictions: pd.DataFrame,
    dataset_label: str,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> plt.Figure:
    """Draw the signed error (predicted minus true age) against true age, one panel per method.

    Each panel shows every video as a dot and the mean signed error of each age group as a
    line, so a regression to the mean (older subjects underestimated, younger overestimated)
    shows as a falling line.
    """
    methods = sorted(predictions["method"].unique())
    colours = _method_colours(methods)
    columns = min(4, len(methods))
    rows = -(-len(methods) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), sharex=True,
                                sharey=True, squeeze=False)
    table = predictions.assign(error=predictions["predicted_age"] - predictions["age"],
                               age_group=assign_age_group(predictions["age"], groups))
    for ax, method in zip(axes.flat, methods):
        subset = table[table["method"] == method]
        ax.scatter(subset["age"], subset["error"], s=8, alpha=0.4, color=colours[method])
        means = subset.groupby("age_group")[["age", "error"]].mean().sort_values("age")
        ax.plot(means["age"], means["error"], color="black", marker="o", markersize=3, linewidth=1)
        ax.axhline(0.0, color="grey", linewidth=1)
        ax.set_title(method, fontsize="small")
        ax.set_xlabel("true age (years)")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted − true (years)")
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    figure.suptitle(f"Error against age; line: mean per age group — {dataset_label}")
    figure.tight_layout()
    return figure


def predicted_vs_true(predictions: pd.DataFrame, dataset_label: str) -> plt.Figure:
    """Draw predicted against annotated age, one panel per method, with the identity line."""
    methods = sorted(predictions["method"].unique())
    figure, axes = plt.subplots(
        1, len(methods), figsize=(3.2 * len(methods), 3.4), sharex=True, sharey=True, squeeze=False
    )
    low = float(min(predictions["age"].min(), predictions["predicted_age"].min())) - 2
    high = float(max(predictions["age"].max(), predictions["predicted_age"].max())) + 2
    for ax, method in zip(axes[0], methods):
        subset = predictions[predictions["method"] == method]
        ax.scatter(subset["age"], subset["predicted_age"], s=10, alpha=0.6)
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        mae = float(np.mean(np.abs(subset["predicted_age"] - subset["age"])))
        ax.set_title(f"{method}\nMAE {mae:.2f}", fontsize="small")
        ax.set_xlabel("true age (years)")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    axes[0][0].set_ylabel("predicted age (years)")
    figure.suptitle(f"Predicted against true age — {dataset_label}")
    figure.tight_layout()
    return figure


def message_figure(message: str) -> plt.Figure:
    """Return a figure that shows only `message`, for a figure that cannot be drawn.

    DVC expects every declared plot file, so a stage writes this placeholder instead, for
    example an attention-faithfulness figure on a dataset without planted ground truth.
    """
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return figure


def ablation_mae(table: pd.DataFrame, dataset_label: str) -> plt.Figure:
    """Draw the MAE of every ablation variant as horizontal bars with their SD across folds.

    Args:
        table: Output of `siamlib.experiments.ablation_table`, one row per variant.
        dataset_label: Dataset and budget of the ablation, shown in the title.
    """
    figure, axes = plt.subplots(figsize=(FIGURE_SIZE[0], 0.4 * len(table) + 1.5))
    positions = np.arange(len(table))
    axes.barh(positions, table["MAE"], xerr=table["SD across folds"], color="tab:blue",
              alpha=0.8, capsize=3)
    axes.set_yticks(positions)
    axes.set_yticklabels(table["variant"])
    axes.invert_yaxis()  # first variant on top, as in the table
    axes.set_xlabel("MAE (years), bars: SD across folds")
    axes.set_title(f"SIAM ablation\n{dataset_label}", fontsize="small")
    figure.tight_layout()
    return figure


def learning_curve(table: pd.DataFrame, dataset_label: str) -> plt.Figure:
    """Draw MAE against the share of training subjects, one line per method.

    Args:
        table: Output of `siamlib.experiments.learning_curve_table`: per method and
            fraction, one row per fold and one pooled row (fold "all").
        dataset_label: Dataset and budget of the curve, shown in the title.
    """
    pooled = table[table["fold"] == "all"]
    per_fold = table[table["fold"] != "all"]
    spread = per_fold.groupby(["method", "fraction"])["MAE"].agg(["min", "max"])
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for method, rows in pooled.groupby("method", sort=True):
        rows = rows.sort_values("fraction")
        percent = 100 * rows["fraction"].to_numpy()
        line = axes.plot(percent, rows["MAE"], marker="o", label=method)[0]
        band = spread.loc[method].reindex(rows["fraction"])
        axes.fill_between(percent, band["min"], band["max"], color=line.get_color(), alpha=0.15,
                          linewidth=0)
    axes.set_xlabel("training subjects used (%)")
    axes.set_ylabel("MAE (years); band: range over folds")
    axes.set_title(f"Learning curve\n{dataset_label}", fontsize="small")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
