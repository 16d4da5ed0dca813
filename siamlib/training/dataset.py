"""Clips from the clip cache as model inputs.

Shape letters: N clips in the cache, T frames per clip, H x W pixels, 3 RGB channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import Dataset

from siamlib.evaluation.metrics import assign_age_group, parse_age_groups


def check_clip_arrays(clips: np.ndarray, mask: np.ndarray) -> None:
    """Check that clips are uint8 (N, T, H, W, 3) and mask is bool (N, T).

    Raises:
        ValueError: Naming the array whose dtype or shape is wrong.
    """
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(
            f"clips must be a uint8 array of shape (N, T, H, W, 3), "
            f"got {clips.dtype} {tuple(clips.shape)}"
        )
    if mask.dtype != np.bool_ or mask.shape != clips.shape[:2]:
        raise ValueError(
            f"mask must be a bool array of shape {tuple(clips.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )


def check_rows(rows: np.ndarray, num_clips: int, name: str) -> np.ndarray:
    """Return ``rows`` as a 1-D int64 array after checking they are unique clip indices.

    Raises:
        ValueError: If ``rows`` is not 1-D, repeats an index or leaves ``range(num_clips)``.
    """
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of integer row indices, got {rows!r}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= num_clips):
        raise ValueError(f"{name} must index the {num_clips} clips, got values in "
                         f"[{rows.min()}, {rows.max()}]")
    if len(np.unique(rows)) != len(rows):
        raise ValueError(f"{name} contains repeated rows")
    return rows


def age_group_weights(ages: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Compute each clip's loss weight, the inverse frequency of its age group scaled to mean 1.

    Groups come from ``parse_age_groups(edges)``, and ages below the first edge count in the
    first group (see ``assign_age_group``). For example, three clips in one group and one in
    another get the weights 2/3, 2/3, 2/3 and 2. With all clips in one group every weight is 1.

    Args:
        ages: Ages in years of the clips to weight, (n,), n >= 1.
        edges: Lower edges of the age groups, strictly increasing.

    Returns:
        float64 (n,) weights with mean 1.

    Raises:
        ValueError: If ``ages`` is empty or not 1-D, or ``edges`` is invalid.
    """
    ages = np.asarray(ages, dtype=np.float64)
    if ages.ndim != 1 or len(ages) == 0:
        raise ValueError(f"ages must be a non-empty 1-D array, got shape {ages.shape}")
    labels = assign_age_group(ages, parse_age_groups(edges))
    _, group_of_clip, group_sizes = np.unique(labels, return_inverse=True, return_counts=True)
    weights = 1.0 / group_sizes[group_of_clip]
    return weights / weights.mean()


def frames_to_tensor(frames: np.ndarray) -> Tensor:
    """Convert uint8 frames (..., H, W, 3) to float32 in [0, 1], (..., 3, H, W)."""
    # np.array copies, because torch.from_numpy warns on read-only memory maps.
    frames = torch.from_numpy(np.array(frames, dtype=np.uint8)).float().div_(255.0)
    return rearrange(frames, "... h w c -> ... c h w")


class ClipDataset(Dataset):
    """Selected rows of a clip cache, read lazily from a (memory-mapped) array.

    Item ``i`` is ``(frames (T, 3, H, W) float32 in [0, 1], mask (T,) bool, age float32)`` for
    clip ``rows[i]``; the age is NaN when no ages are given.

    Args:
        clips: uint8 (N, T, H, W, 3), e.g. the memory map from ``load_clip_cache``.
        mask: bool (N, T), True on valid frames.
        rows: Indices into ``clips`` of the clips in this dataset.
        ages: Age in years of every clip (N,), or None.

    Raises:
        ValueError: If the arrays have the wrong dtype or shape, or rows are invalid.
    """

    def __init__(
        self,
        clips: np.ndarray,
        mask: np.ndarray,
        rows: np.ndarray,
        ages: np.ndarray | None = None,
    ) -> None:
        check_clip_arrays(clips, mask)
        self.clips = clips
        self.mask = mask
        self.rows = check_rows(rows, len(clips), "rows")
        if ages is not None:
            ages = np.asarray(ages, dtype=np.float32)
            if ages.shape != (len(clips),):
                raise ValueError(f"ages must have shape ({len(clips)},), got {ages.shape}")
        self.ages = ages

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        row = self.rows[i]
        frames = frames_to_tensor(self.clips[row])  # (T, 3, H, W)
        mask = torch.from_numpy(np.array(self.mask[row], dtype=bool))  # (T,)
        age = torch.tensor(float("nan") if self.ages is None else self.ages[row])
        return frames, mask, age


class WeightedClipDataset(ClipDataset):
    """A :class:`ClipDataset` whose items also carry each clip's loss weight.

    Item ``i`` is ``(frames, mask, age, weight)``: the :class:`ClipDataset` item of clip
    ``rows[i]`` and its weight as a float32 scalar tensor.

    Args:
        clips, mask, rows, ages: As for :class:`ClipDataset`.
        weights: Loss weight of every clip (N,); only the entries of ``rows`` are read.

    Raises:
        ValueError: As :class:`ClipDataset`, or if ``weights`` does not have shape (N,) or a
            weight of ``rows`` is negative or not finite.
    """

    def __init__(
        self,
        clips: np.ndarray,
        mask: np.ndarray,
        rows: np.ndarray,
        ages: np.ndarray | None,
        weights: np.ndarray,
    ) -> None:
        super().__init__(clips, mask, rows, ages)
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != (len(clips),):
            raise ValueError(f"weights must have shape ({len(clips)},), got {weights.shape}")
        selected = weights[self.rows]
        if not (np.isfinite(selected).all() and (selected >= 0).all()):
            raise ValueError("weights of the selected rows must be finite and non-negative")
        self.weights = weights

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        frames, mask, age = super().__getitem__(i)
        return frames, mask, age, torch.tensor(self.weights[self.rows[i]])
