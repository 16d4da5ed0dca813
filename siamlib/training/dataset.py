"""Clips from the clip cache as model inputs.

Shape letters: N clips in the cache, T frames per clip, H x W pixels, 3 RGB channels.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from torch.utils.data import Dataset


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
