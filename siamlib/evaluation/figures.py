"""Figures of the report, drawn from the predictions table and SIAM's attention maps.

Every figure function returns a matplotlib ``Figure`` and takes a ``dataset_label`` that goes
into the title, so a figure computed on the synthetic benchmark names it wherever it is shown.
:func:`save_figure` writes PNG files without timestamps so reruns give identical bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from siamlib.evaluation.metrics import DEFAULT_AGE_GROUPS, group_mae_table

FIGURE_SIZE = (7.0, 4.0)
FIGURE_DPI = 110


def set_style() -> None:
    """Apply the one plotting style shared by every figure of the study."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams["figure.dpi"] = FIGURE_DPI


def save_figure(figure: plt.Figure, path: str | os.PathLike) -> None:
    """Save a figure as PNG with no creation time or software version in its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})


def mae_by_group(
    predictions: pd.DataFrame,
    column: str,
    dataset_label: str,
    groups: Sequence[tuple[str, int, int | None]] = DEFAULT_AGE_GROUPS,
) -> plt.Figure:
    """Draw a grouped bar chart of MAE per method for each value of ``column``.

    Args:
        predictions: The predictions of all methods.
        column: ``"age_group"``, ``"gender"`` or ``"smile_type"``.
        dataset_label: Name of the dataset, shown in the title.
        groups: Age groups used when ``column`` is ``"age_group"``.
    """
    table = group_mae_table(predictions, column, groups)
    # Wider than FIGURE_SIZE by the legend, which sits to the right of the axes.
    figure, axes = plt.subplots(figsize=(FIGURE_SIZE[0] + 2.5, FIGURE_SIZE[1]))
    sns.barplot(data=table, x=column, y="mae", hue="method", ax=axes)
    # Number of videos per group under each tick label, since small groups give noisy MAE.
    counts = table.groupby(column, observed=True)["num_videos"].max()
    axes.set_xticks(range(len(counts)))
    axes.set_xticklabels([f"{value}\n(n={count})" for value, count in counts.items()])
    axes.set_xlabel(column.replace("_", " ") + " (n = videos)")
    axes.set_ylabel("MAE (years)")
    axes.set_title(f"MAE by {column.replace('_', ' ')} — {dataset_label}")
    # Outside the axes, so that the legend never hides a bar.
    axes.legend(title="method", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
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


def spatial_attention_example(
    frame: np.ndarray, attention: np.ndarray, title: str, dataset_label: str
) -> plt.Figure:
    """Draw a spatial attention map over the aligned face it was computed on.

    Args:
        frame: The aligned face, uint8 (H, W, 3).
        attention: The attention map, (h, w) with rows along the image's height. It is
            upsampled to (H, W) with ``cv2.resize``, whose size argument is (width, height).
        title: What the example is (video, age).
        dataset_label: Name of the dataset, shown in the title.
    """
    import cv2

    height, width = frame.shape[:2]
    upsampled = cv2.resize(attention.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    figure, axes = plt.subplots(1, 3, figsize=(9.0, 3.4))
    axes[0].imshow(frame)
    axes[0].set_title("aligned face")
    shown = axes[1].imshow(attention, cmap="magma")
    axes[1].set_title(f"attention ({attention.shape[0]}×{attention.shape[1]})")
    figure.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[2].imshow(frame)
    axes[2].imshow(upsampled, cmap="magma", alpha=0.55)
    axes[2].set_title("overlay")
    for ax in axes:
        ax.axis("off")
    figure.suptitle(f"Spatial attention, {title} — {dataset_label}")
    figure.tight_layout()
    return figure


def temporal_attention_example(
    frames: np.ndarray,
    weights: np.ndarray,
    valid: np.ndarray,
    title: str,
    dataset_label: str,
    smile_signal: np.ndarray | None = None,
) -> plt.Figure:
    """Draw the temporal attention weights along a clip, with the clip's frames above them.

    Args:
        frames: Aligned frames of the clip, uint8 (T, H, W, 3).
        weights: Temporal attention weight per frame, (T,).
        valid: Validity mask per frame, (T,); padded frames are not drawn.
        title: What the example is (video, age).
        dataset_label: Name of the dataset, shown in the title.
        smile_signal: Optional smile signal per sampled frame (e.g. the relative change of
            the mouth width), drawn on a second axis.
    """
    valid_indices = np.flatnonzero(valid)
    count = len(valid_indices)
    figure = plt.figure(figsize=(max(7.0, 0.6 * count), 4.2))
    grid = figure.add_gridspec(2, count, height_ratios=(1, 2))
    for column, index in enumerate(valid_indices):
        ax = figure.add_subplot(grid[0, column])
        ax.imshow(frames[index])
        ax.axis("off")
    ax = figure.add_subplot(grid[1, :])
    ax.bar(np.arange(count), weights[valid_indices], color="tab:blue", label="temporal attention")
    ax.set_xlim(-0.5, count - 0.5)
    ax.set_xlabel("sampled frame")
    ax.set_ylabel("attention weight")
    if smile_signal is not None:
        twin = ax.twinx()
        twin.plot(np.arange(count), smile_signal[valid_indices], color="tab:orange", marker="o")
        twin.set_ylabel("smile signal", color="tab:orange")
        twin.grid(False)
    figure.suptitle(f"Temporal attention, {title} — {dataset_label}")
    figure.tight_layout()
    return figure
