"""Figures of SIAM's attention: single examples, the planted regions, and galleries by age.

Spatial maps are (h, w) arrays with rows along the face's height, upsampled to the aligned
face with ``cv2.resize`` (whose size argument is (width, height)). Temporal weights are one
per sampled frame; padded frames are never drawn. Every function takes a ``dataset_label``
for its title, so the dataset is named wherever the figure is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from siamlib.evaluation.faithfulness import PLANTED_REGIONS
from siamlib.evaluation.style import FIGURE_SIZE


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


def smile_signal(aligned_landmarks: np.ndarray) -> np.ndarray:
    """Return the relative change of the mouth width along a clip, a smile curve for figures.

    Args:
        aligned_landmarks: (T, 68, 2) landmarks of the sampled frames in the aligned crop.

    Returns:
        (T,) mouth width (lip corners 48 and 54) over the first frame's, minus 1. NaN where
        the track has no lip points (the Haar-cascade fallback).
    """
    aligned_landmarks = np.asarray(aligned_landmarks, dtype=np.float64)
    width = np.linalg.norm(aligned_landmarks[:, 54] - aligned_landmarks[:, 48], axis=1)  # (T,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return width / width[0] - 1.0


def typical_videos(errors: pd.DataFrame, per_group: int = 1) -> list[str]:
    """Pick the videos whose absolute error is closest to their age group's median error.

    Args:
        errors: One row per video of one method, with columns video, age_group and
            abs_error.
        per_group: Videos picked per age group.

    Returns:
        Video names, one group after the other in the sorted order of ``age_group`` (the
        category order for an ordered categorical, else string order), ties broken by
        video name.
    """
    picked: list[str] = []
    for _group, rows in errors.groupby("age_group", sort=True, observed=True):
        distance = (rows["abs_error"] - rows["abs_error"].median()).abs()
        order = rows.assign(distance=distance).sort_values(["distance", "video"])
        picked.extend(order["video"].head(per_group).tolist())
    return picked


def mean_attention_by_group(
    clips: np.ndarray, valid: np.ndarray, spatial: np.ndarray, labels: Sequence[str],
    order: Sequence[str],
) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[int]]:
    """Average the aligned faces and the spatial attention over the valid frames of each group.

    Args:
        clips: (N, T, H, W, 3) uint8 aligned clips.
        valid: (N, T) bool, False for padded frames.
        spatial: (N, T, h, w) spatial attention of the same clips.
        labels: Group of each clip (N,), e.g. its age group.
        order: Groups in the order to return them; groups without a clip are left out.

    Returns:
        Per group: the mean face (H, W, 3) in [0, 255], the mean attention (h, w), the
        group's name and its number of clips. Each clip counts once, whatever its number of
        valid frames.
    """
    labels = np.asarray(labels)
    weights = np.asarray(valid, np.float64)  # (N, T)
    per_clip = weights.sum(axis=1)  # (N,)
    keep = per_clip > 0
    faces, maps, names, counts = [], [], [], []
    for group in order:
        members = np.flatnonzero((labels == group) & keep)
        if members.size == 0:
            continue
        face = np.zeros(clips.shape[2:], np.float64)
        attention = np.zeros(spatial.shape[2:], np.float64)
        for row in members:
            w = weights[row] / per_clip[row]  # (T,)
            face += np.tensordot(w, clips[row].astype(np.float64), axes=1) / members.size  # (H, W, 3)
            attention += np.tensordot(w, spatial[row].astype(np.float64), axes=1) / members.size  # (h, w)
        faces.append(face)
        maps.append(attention)
        names.append(str(group))
        counts.append(int(members.size))
    return faces, maps, names, counts


def attention_by_age_group(
    faces: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    dataset_label: str,
) -> plt.Figure:
    """Draw the mean spatial attention of each age group over that group's mean aligned face.

    One colour scale for all panels, so that the groups compare directly.

    Args:
        faces: One mean aligned face per group, (H, W, 3), uint8 or float.
        maps: One mean spatial attention map per group, (h, w).
        titles: One title per group, e.g. "40-49 (23 videos)".
        dataset_label: Name of the dataset, shown in the title.

    Raises:
        ValueError: If the three sequences differ in length or are empty.
    """
    import cv2

    if not (len(faces) == len(maps) == len(titles)) or not faces:
        raise ValueError(
            f"need as many faces, maps and titles, at least one; got {len(faces)}, {len(maps)}, {len(titles)}"
        )
    low = min(float(np.min(m)) for m in maps)
    high = max(float(np.max(m)) for m in maps)
    figure, axes = plt.subplots(1, len(faces), figsize=(2.3 * len(faces) + 1.2, 3.0), squeeze=False)
    shown = None
    for ax, face, attention, title in zip(axes[0], faces, maps, titles):
        image = _displayable_image(face)
        height, width = image.shape[:2]
        upsampled = cv2.resize(np.asarray(attention, np.float32), (width, height),
                               interpolation=cv2.INTER_LINEAR)
        ax.imshow(image)
        shown = ax.imshow(upsampled, cmap="magma", alpha=0.55, vmin=low, vmax=high)
        ax.set_title(title, fontsize="small")
        ax.axis("off")
    figure.colorbar(shown, ax=list(axes[0]), fraction=0.02, label="mean attention")
    figure.suptitle(f"Mean spatial attention per age group, over the group's mean face — {dataset_label}",
                    fontsize="medium")
    return figure


def temporal_attention_gallery(
    smiles: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    titles: Sequence[str],
    dataset_label: str,
) -> plt.Figure:
    """Draw the temporal attention of several videos over their smile curves, one panel each.

    The weights are multiplied by the number of valid frames, so 1 is uniform attention.

    Args:
        smiles: Smile curve per video, (T,) each (e.g. :func:`smile_signal`); all-NaN curves
            are not drawn.
        weights: Temporal attention per video, (T,) each.
        valid: Bool (T,) per video; padded frames are not drawn.
        titles: One title per video.
        dataset_label: Name of the dataset, shown in the title.
    """
    count = len(titles)
    if not (len(smiles) == len(weights) == len(valid) == count) or count == 0:
        raise ValueError("need as many smiles, weights, masks and titles, at least one")
    columns = min(4, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.6 * rows), squeeze=False)
    for ax, smile, weight, mask, title in zip(axes.flat, smiles, weights, valid, titles):
        frames = np.flatnonzero(np.asarray(mask, bool))
        weight = np.asarray(weight, np.float64)
        ax.bar(frames, weight[frames] * len(frames), color="tab:blue", alpha=0.6)
        ax.axhline(1.0, color="tab:blue", linestyle="--", linewidth=1)
        ax.set_ylim(bottom=0.0)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("sampled frame", fontsize="small")
        smile = np.asarray(smile, np.float64)
        if np.isfinite(smile[frames]).any():
            twin = ax.twinx()
            twin.plot(frames, smile[frames], color="tab:orange", marker="o", markersize=3)
            twin.tick_params(axis="y", colors="tab:orange", labelsize="small")
            twin.grid(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("attention × valid frames", fontsize="small")
    for ax in axes.flat[count:]:
        ax.axis("off")
    handles = [Patch(color="tab:blue", alpha=0.6, label="temporal attention (1 = uniform)"),
               Line2D([], [], color="tab:orange", marker="o", label="smile: mouth width change")]
    figure.legend(handles=handles, loc="lower center", ncol=2, fontsize="small")
    figure.suptitle(f"Temporal attention of typical videos per age group — {dataset_label}",
                    fontsize="medium")
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure
