"""Faithfulness of SIAM's attention to the age cues planted by the synthetic benchmark.

The synthetic generator records where (face regions) and when (frames) it planted age
cues. These scores compare SIAM's spatial and temporal attention with that ground truth. Each
score is computed per video and is NaN where it is undefined.

Spatial faithfulness of one attention map ``a`` (h, w), with ``a >= 0``, to one region
whose coverage mask ``m`` (h, w) gives the fraction of each attention cell inside the region:

    S = (sum(a * m) / sum(a)) / mean(m)

The numerator is the share of attention that falls inside the region and the denominator
is the share of the face that the region covers. Chance is 1.0, because uniform attention
puts on the region exactly the share of the face it covers. The maximum is
``max(m) / mean(m)``, reached when all attention sits on the cells of highest coverage. For
a binary mask this is ``1 / mean(m)``, reached by attention equal to the mask. ``S`` is
NaN where ``sum(a) == 0`` or the mask is empty.

Temporal correlation is the Pearson correlation, over the valid (non-padded) sampled frames,
between the temporal attention weights and the generator's per-frame informativeness:

    r = cov(w, i) / (sd(w) * sd(i))

Chance is 0.0 and the maximum is 1.0. ``r`` is NaN with fewer than 3 valid frames or
when either series is constant over the valid frames.

Apex share ratio is the share of the valid frames' attention weight that falls on apex frames
(smile phase 2), divided by the share of valid frames that are apex frames:

    A = (sum(w[apex]) / sum(w[valid])) / (count(apex) / count(valid))

where ``apex`` counts only valid apex frames. Chance is 1.0, because uniform weights give
apex frames their share of the frames. The maximum is ``count(valid) / count(apex)``,
reached when all weight sits on apex frames. ``A`` is NaN when no valid frame is an apex
frame, when every valid frame is one, or when the valid frames carry no weight.

Weights on invalid frames never enter the temporal scores, and spatial maps of invalid
frames never enter :func:`score_videos`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# The regions where the generator draws wrinkles whose contrast grows with age. The other
# regions also carry age (eye size, lip thickness, face proportions), but mixed with the smile
# and with gender, so each is scored on its own column and left out of the union.
PLANTED_REGIONS: tuple[str, ...] = ("crows_feet", "forehead_lines", "nasolabial_folds")

# A series whose range is at most this fraction of its largest absolute value counts as
# constant. It is about eight float32 machine epsilons (1.19e-7 each), so that softmax
# weights that are uniform up to float32 rounding give NaN, not a correlation of noise.
CONSTANT_RELATIVE_TOLERANCE = 1e-6

MIN_FRAMES_FOR_CORRELATION = 3


def resample_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resample a region mask to the attention grid by exact area averaging.

    Each output cell gets the area-weighted mean of the input pixels it overlaps, so that
    the output is the fraction of the cell inside the region. Cell edges need not fall on
    pixel edges, so any input size works, and the mean coverage of the mask is preserved.

    Args:
        mask: Region mask (M1, M2) with values in [0, 1], e.g. uint8 0/1 in the aligned
            face frame.
        size: Output size (h, w), or one int for a square grid.

    Returns:
        Float64 coverage (h, w) with values in [0, 1].

    Raises:
        ValueError: If ``mask`` is not 2-D, is empty, has values outside [0, 1] or NaN, or
            ``size`` is not positive.
    """
    mask = _as_unit_mask(mask, "mask")
    if isinstance(size, (int, np.integer)):
        height, width = int(size), int(size)
    else:
        height, width = (int(value) for value in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got ({height}, {width})")

    row_weights = _area_weights(mask.shape[0], height)
    column_weights = _area_weights(mask.shape[1], width)
    coverage = row_weights @ mask @ column_weights.T
    # Matrix products can overshoot [0, 1] by rounding error only.
    return np.clip(coverage, 0.0, 1.0)


def _area_weights(input_size: int, output_size: int) -> np.ndarray:
    """Build the (output_size, input_size) matrix that averages input pixels over output cells."""
    cell = input_size / output_size
    starts = np.arange(output_size)[:, None] * cell
    ends = starts + cell
    pixels = np.arange(input_size)[None, :]
    overlap = np.minimum(ends, pixels + 1) - np.maximum(starts, pixels)
    return np.clip(overlap, 0.0, None) / cell


def _as_unit_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as a float64 2-D array, raising ValueError unless it lies in [0, 1]."""
    mask = np.asarray(mask, dtype=np.float64)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {mask.shape}")
    if not np.all((mask >= 0.0) & (mask <= 1.0)):
        raise ValueError(f"{name} must have values in [0, 1] and no NaN")
    return mask


def spatial_faithfulness(attention: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Compute the spatial faithfulness of attention maps to one region.

    Args:
        attention: Non-negative attention maps (..., h, w), e.g. (T, h, w) for one video.
        mask: Coverage of the region on the same grid (h, w), values in [0, 1], e.g. from
            :func:`resample_mask`.

    Returns:
        Float64 array (...) of ``(sum(a * m) / sum(a)) / mean(m)``, one value per map. It
        is 1.0 for uniform attention and NaN where a map sums to 0 or the mask is empty.

    Raises:
        ValueError: If ``attention`` has fewer than 2 dimensions, negative or non-finite
            values, or a grid other than the mask's, or if ``mask`` is invalid.
    """
    attention = np.asarray(attention, dtype=np.float64)
    mask = _as_unit_mask(mask, "mask")
    if attention.ndim < 2:
        raise ValueError(f"attention must have shape (..., h, w), got {attention.shape}")
    if attention.shape[-2:] != mask.shape:
        raise ValueError(
            f"attention grid {attention.shape[-2:]} does not match mask shape {mask.shape}; "
            "resample the mask with resample_mask first"
        )
    if not np.all(np.isfinite(attention)):
        raise ValueError("attention must be finite")
    if np.any(attention < 0):
        raise ValueError(f"attention must be non-negative, got minimum {attention.min()}")

    total = attention.sum(axis=(-2, -1))
    inside = (attention * mask).sum(axis=(-2, -1))
    coverage = mask.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (inside / total) / coverage
    scores = np.where(total > 0, scores, np.nan)
    if coverage == 0:
        scores = np.full_like(scores, np.nan)
    return scores


def _as_frame_arrays(
    weights: np.ndarray, other: np.ndarray, valid: np.ndarray, other_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check that three per-frame arrays are 1-D of one length and return them converted."""
    weights = np.asarray(weights, dtype=np.float64)
    other = np.asarray(other)
    valid = np.asarray(valid)
    for name, array in (("weights", weights), (other_name, other), ("valid", valid)):
        if array.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D with one value per frame, got shape {array.shape}"
            )
    if not weights.shape == other.shape == valid.shape:
        raise ValueError(
            f"weights {weights.shape}, {other_name} {other.shape} and valid {valid.shape} "
            "must have the same length"
        )
    if valid.dtype != np.bool_:
        raise ValueError(f"valid must be a bool array, got dtype {valid.dtype}")
    return weights, other, valid


def _is_constant(values: np.ndarray) -> bool:
    """Tell whether ``values`` is constant up to CONSTANT_RELATIVE_TOLERANCE."""
    scale = float(np.max(np.abs(values)))
    return float(np.ptp(values)) <= CONSTANT_RELATIVE_TOLERANCE * scale


def temporal_correlation(
    weights: np.ndarray, informativeness: np.ndarray, valid: np.ndarray
) -> float:
    """Compute the Pearson correlation of temporal weights and informativeness over valid frames.

    Args:
        weights: Temporal attention weight per sampled frame (T,).
        informativeness: Generator's informativeness per sampled frame (T,).
        valid: Bool (T,), False for padded frames, which are ignored.

    Returns:
        Pearson r in [-1, 1], or NaN with fewer than 3 valid frames or when either series
        is constant over the valid frames (see CONSTANT_RELATIVE_TOLERANCE).

    Raises:
        ValueError: If the arrays are not 1-D of one length, ``valid`` is not bool, or a
            valid frame has a non-finite value.
    """
    weights, informativeness, valid = _as_frame_arrays(
        weights, informativeness, valid, "informativeness"
    )
    informativeness = informativeness.astype(np.float64)
    weights = weights[valid]
    informativeness = informativeness[valid]
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(informativeness))):
        raise ValueError("weights and informativeness must be finite on valid frames")
    if len(weights) < MIN_FRAMES_FOR_CORRELATION:
        return math.nan
    if _is_constant(weights) or _is_constant(informativeness):
        return math.nan
    return float(np.corrcoef(weights, informativeness)[0, 1])


def apex_share_ratio(weights: np.ndarray, apex: np.ndarray, valid: np.ndarray) -> float:
    """Compute how much more weight apex frames get than their share of the valid frames.

    Args:
        weights: Non-negative temporal attention weight per sampled frame (T,). Weights
            need not sum to 1, because the share is taken over the valid frames' total.
        apex: Bool (T,), True for frames in the apex phase of the smile.
        valid: Bool (T,), False for padded frames, which are ignored.

    Returns:
        The ratio, 1.0 for uniform weights. NaN when no valid frame is an apex frame, every
        valid frame is one, or the valid frames' weights sum to 0.

    Raises:
        ValueError: If the arrays are not 1-D of one length, ``apex`` or ``valid`` is not
            bool, or a valid frame has a negative or non-finite weight.
    """
    weights, apex, valid = _as_frame_arrays(weights, apex, valid, "apex")
    if apex.dtype != np.bool_:
        raise ValueError(f"apex must be a bool array, got dtype {apex.dtype}")
    weights = weights[valid]
    apex = apex[valid]
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights must be finite on valid frames")
    if np.any(weights < 0):
        raise ValueError(f"weights must be non-negative, got minimum {weights.min()}")

    apex_count = int(apex.sum())
    total = float(weights.sum())
    if apex_count == 0 or apex_count == len(apex) or total <= 0:
        return math.nan
    weight_share = float(weights[apex].sum()) / total
    frame_share = apex_count / len(apex)
    return weight_share / frame_share


def score_videos(
    spatial: np.ndarray,
    temporal: np.ndarray,
    valid: np.ndarray,
    masks: np.ndarray,
    region_names: Sequence[str] | np.ndarray,
    informativeness: np.ndarray,
    apex: np.ndarray,
    videos: Sequence[str] | np.ndarray,
) -> pd.DataFrame:
    """Score the spatial and temporal attention of each video against its ground truth.

    Args:
        spatial: Non-negative spatial attention (V, T, h, w) per sampled frame.
        temporal: Temporal attention weights (V, T).
        valid: Bool (V, T), False for padded frames. Padded frames enter no score, and their
            attention values are not checked.
        masks: Region masks (V, R, M, M) in the aligned face frame, values in [0, 1].
        region_names: Name of each region (R,), shared by all videos.
        informativeness: Informativeness (V, T) at the sampled frames.
        apex: Bool (V, T), True for sampled frames in the apex phase.
        videos: Video names (V,).

    Returns:
        One row per video with columns ``video``, ``spatial_<region>`` for each region,
        ``spatial_planted``, ``temporal_correlation`` and ``apex_share_ratio``. A spatial
        column is the mean over valid frames of :func:`spatial_faithfulness`, ignoring
        frames where it is NaN. ``spatial_planted`` scores the union (pixelwise maximum)
        of the regions in PLANTED_REGIONS that ``region_names`` contains, and is NaN for
        every video when it contains none.

    Raises:
        ValueError: If the shapes disagree, region names repeat or one is ``"planted"``,
            or any input fails the checks of the per-score functions.
    """
    spatial = np.asarray(spatial, dtype=np.float64)
    temporal = np.asarray(temporal, dtype=np.float64)
    valid = np.asarray(valid)
    masks = np.asarray(masks, dtype=np.float64)
    region_names = [str(name) for name in np.asarray(region_names).reshape(-1)]
    informativeness = np.asarray(informativeness, dtype=np.float64)
    apex = np.asarray(apex)
    videos = np.asarray(videos).reshape(-1)
    _check_video_shapes(
        spatial, temporal, valid, masks, region_names, informativeness, apex, videos
    )

    planted_indices = [index for index, name in enumerate(region_names) if name in PLANTED_REGIONS]
    grid = spatial.shape[2:]
    rows: list[dict[str, Any]] = []
    for video_index, video in enumerate(videos):
        frames_valid = valid[video_index]
        maps = spatial[video_index][frames_valid]
        row: dict[str, Any] = {"video": video}

        for region_index, name in enumerate(region_names):
            coverage = resample_mask(masks[video_index, region_index], grid)
            row[f"spatial_{name}"] = _nanmean(spatial_faithfulness(maps, coverage))

        if planted_indices:
            union = masks[video_index, planted_indices].max(axis=0)
            coverage = resample_mask(union, grid)
            row["spatial_planted"] = _nanmean(spatial_faithfulness(maps, coverage))
        else:
            row["spatial_planted"] = math.nan

        row["temporal_correlation"] = temporal_correlation(
            temporal[video_index], informativeness[video_index], frames_valid
        )
        row["apex_share_ratio"] = apex_share_ratio(
            temporal[video_index], apex[video_index], frames_valid
        )
        rows.append(row)

    columns = ["video", *(f"spatial_{name}" for name in region_names), "spatial_planted",
               "temporal_correlation", "apex_share_ratio"]
    return pd.DataFrame(rows, columns=columns)


def _check_video_shapes(
    spatial: np.ndarray,
    temporal: np.ndarray,
    valid: np.ndarray,
    masks: np.ndarray,
    region_names: list[str],
    informativeness: np.ndarray,
    apex: np.ndarray,
    videos: np.ndarray,
) -> None:
    """Raise ValueError unless the inputs of :func:`score_videos` have matching shapes."""
    if spatial.ndim != 4:
        raise ValueError(f"spatial must have shape (V, T, h, w), got {spatial.shape}")
    num_videos, num_frames = spatial.shape[:2]
    for name, array in (
        ("temporal", temporal),
        ("valid", valid),
        ("informativeness", informativeness),
        ("apex", apex),
    ):
        if array.shape != (num_videos, num_frames):
            raise ValueError(
                f"{name} must have shape (V, T) = {(num_videos, num_frames)}, got {array.shape}"
            )
    for name, array in (("valid", valid), ("apex", apex)):
        if array.dtype != np.bool_:
            raise ValueError(f"{name} must be a bool array, got dtype {array.dtype}")
    if masks.ndim != 4 or masks.shape[:2] != (num_videos, len(region_names)):
        raise ValueError(
            f"masks must have shape (V, R, M, M) with V = {num_videos} and R = "
            f"{len(region_names)} region names, got {masks.shape}"
        )
    if len(videos) != num_videos:
        raise ValueError(f"videos must have {num_videos} names, got {len(videos)}")
    if len(set(region_names)) != len(region_names):
        raise ValueError(f"region names must be unique, got {region_names}")
    if "planted" in region_names:
        raise ValueError(
            'no region may be named "planted", because spatial_planted is the union column'
        )


def _nanmean(values: np.ndarray) -> float:
    """Return the mean of the non-NaN values, or NaN when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else math.nan


def summarise_faithfulness(table: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Summarise each score column of a :func:`score_videos` table for a JSON report.

    Args:
        table: One row per video; every column except ``video`` counts as a score.

    Returns:
        ``{column: {"mean": ..., "sd": ..., "n": ...}}`` over the non-NaN values of each
        score column, where ``sd`` is the sample standard deviation (ddof=1) and ``n`` an
        int. Mean and SD are rounded to 4 decimals, as the MAE in the metrics file. A mean
        or SD that is undefined (no values, or one value for the SD) is None.

    Raises:
        ValueError: If a score column is not numeric.
    """
    summary: dict[str, dict[str, float | int | None]] = {}
    for column in table.columns:
        if column == "video":
            continue
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise ValueError(
                f"score column {column!r} must be numeric, got dtype {table[column].dtype}"
            )
        values = table[column].dropna().to_numpy(dtype=np.float64)
        mean = round(float(values.mean()), 4) if len(values) >= 1 else None
        sd = round(float(values.std(ddof=1)), 4) if len(values) >= 2 else None
        summary[column] = {"mean": mean, "sd": sd, "n": int(len(values))}
    return summary
