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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from siamlib.evaluation.faithfulness import PLANTED_REGIONS
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


def attention_over_face(
    mean_face: np.ndarray,
    mean_attention: np.ndarray,
    masks: np.ndarray,
    region_names: Sequence[str] | np.ndarray,
    dataset_label: str,
) -> plt.Figure:
    """Draw the mean spatial attention over the mean aligned face and outline the planted regions.

    Args:
        mean_face: Mean aligned face (H, W, 3), uint8, or float in [0, 1] or [0, 255].
        mean_attention: Mean spatial attention (h, w), rows along the face's height. It is
            upsampled to (H, W) with ``cv2.resize``.
        masks: Region masks (R, M, M) in the aligned face frame. Only the regions listed in
            ``PLANTED_REGIONS`` are outlined, at the 0.5 level.
        region_names: Name of each mask (R,).
        dataset_label: Name of the dataset, shown in the title.

    Raises:
        ValueError: If the shapes of the arguments do not match.
    """
    import cv2

    face = _displayable_image(mean_face)
    mean_attention = np.asarray(mean_attention, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.float64)
    region_names = [str(name) for name in np.asarray(region_names).reshape(-1)]
    if mean_attention.ndim != 2:
        raise ValueError(f"mean_attention must have shape (h, w), got {mean_attention.shape}")
    if masks.ndim != 3 or masks.shape[0] != len(region_names):
        raise ValueError(
            f"masks must have shape (R, M, M) with R = {len(region_names)} region names, "
            f"got {masks.shape}"
        )

    height, width = face.shape[:2]
    upsampled = cv2.resize(mean_attention, (width, height), interpolation=cv2.INTER_LINEAR)
    figure, axes = plt.subplots(figsize=(5.6, 4.6))
    axes.imshow(face)
    overlay = axes.imshow(upsampled, cmap="magma", alpha=0.5)
    figure.colorbar(overlay, ax=axes, fraction=0.046, label="mean attention")

    # Mask pixel centres, in the face's pixel coordinates, so that a mask of any resolution
    # lines up with the face without resampling.
    mask_rows = (np.arange(masks.shape[1]) + 0.5) * height / masks.shape[1] - 0.5
    mask_columns = (np.arange(masks.shape[2]) + 0.5) * width / masks.shape[2] - 0.5
    colours = sns.color_palette("colorblind", len(PLANTED_REGIONS))
    handles = []
    for name, colour in zip(PLANTED_REGIONS, colours):
        if name not in region_names:
            continue
        mask = masks[region_names.index(name)]
        axes.contour(mask_columns, mask_rows, mask, levels=[0.5], colors=[colour], linewidths=1.5)
        handles.append(Line2D([], [], color=colour, linewidth=1.5, label=name.replace("_", " ")))
    if handles:
        # Below the face, so that the legend hides no part of it.
        axes.legend(handles=handles, title="planted region", fontsize="small",
                    loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(handles))

    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.axis("off")
    axes.set_title(f"Mean spatial attention over the mean face — {dataset_label}")
    figure.tight_layout()
    return figure


def _displayable_image(image: np.ndarray) -> np.ndarray:
    """Convert an (H, W, 3) uint8 or float image to what ``imshow`` shows unchanged."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"mean_face must have shape (H, W, 3), got {image.shape}")
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    # A float mean of uint8 frames lies in [0, 255], and imshow expects floats in [0, 1].
    if image.max() > 1.0:
        image = image / 255.0
    return np.clip(image, 0.0, 1.0)


def attention_over_smile(
    smile: np.ndarray,
    temporal: np.ndarray,
    informativeness: np.ndarray,
    apex: np.ndarray,
    dataset_label: str,
    valid: np.ndarray | None = None,
) -> plt.Figure:
    """Draw one video's temporal attention against its smile intensity and informativeness.

    The attention weight is multiplied by the number of valid frames, so that 1 on its axis
    is uniform attention. Apex frames are shaded.

    Args:
        smile: Smile intensity per sampled frame (T,).
        temporal: Temporal attention weight per sampled frame (T,).
        informativeness: Generator's informativeness per sampled frame (T,).
        apex: Bool (T,), True for frames in the apex phase of the smile.
        dataset_label: Name of the dataset, shown in the title.
        valid: Optional bool (T,), False for padded frames, which are not drawn. All frames
            are valid when it is None.

    Raises:
        ValueError: If the arrays are not 1-D of one length.
    """
    arrays = {
        "smile": np.asarray(smile, dtype=np.float64),
        "temporal": np.asarray(temporal, dtype=np.float64),
        "informativeness": np.asarray(informativeness, dtype=np.float64),
        "apex": np.asarray(apex, dtype=bool),
    }
    if valid is None:
        arrays["valid"] = np.ones(arrays["smile"].shape, dtype=bool)
    else:
        arrays["valid"] = np.asarray(valid, dtype=bool)
    shapes = {name: array.shape for name, array in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays["smile"].ndim != 1:
        raise ValueError(f"all per-frame arrays must be 1-D of one length, got shapes {shapes}")

    frames = np.flatnonzero(arrays["valid"])
    count = len(frames)
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for frame in frames[arrays["apex"][frames]]:
        axes.axvspan(frame - 0.5, frame + 0.5, color="grey", alpha=0.2, linewidth=0)
    axes.plot(frames, arrays["smile"][frames], color="tab:orange", marker="o",
              label="smile intensity")
    axes.plot(frames, arrays["informativeness"][frames], color="tab:green", marker="s",
              label="informativeness")
    axes.set_xlabel("sampled frame")
    axes.set_ylabel("smile intensity, informativeness")

    twin = axes.twinx()
    twin.plot(frames, arrays["temporal"][frames] * count, color="tab:blue", marker="^",
              label="attention × valid frames")
    twin.axhline(1.0, color="tab:blue", linestyle="--", linewidth=1)
    twin.set_ylabel("attention × valid frames (1 = uniform)", color="tab:blue")
    twin.set_ylim(bottom=0.0)
    twin.grid(False)

    # One legend for both axes, with a patch standing for the shaded apex frames. It goes on
    # the twin axes, which are drawn above the first, so that no line crosses it.
    handles = axes.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    handles.append(Patch(color="grey", alpha=0.2, label="apex frames"))
    twin.legend(handles=handles, fontsize="small", loc="upper left")
    axes.set_title(f"Temporal attention along a smile — {dataset_label}")
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
