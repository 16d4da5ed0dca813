"""Choose which frames of a video go into a fixed-length clip."""

from __future__ import annotations

import numbers

import numpy as np


def sample_indices(num_available: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick num_frames frame indices spread uniformly over a video of num_available frames.

    A video at least as long as the clip gives indices round(linspace(0, num_available - 1,
    num_frames)), rounding halves up. They are strictly increasing, start at the first frame and
    end at the last, so the usually neutral first frame is always in the clip. A shorter video
    gives every frame once, then padding positions that repeat the last index with mask False,
    which keeps the indices non-decreasing.

    Args:
        num_available: Frames in the video, >= 1.
        num_frames: Clip length T, >= 1. With T = 1 the clip contains the first frame.

    Returns:
        indices: int64 array of shape (T,), non-decreasing, in [0, num_available).
        mask: bool array of shape (T,), True where the position contains a real frame and False at
            padding.

    Raises:
        ValueError: If either count is not a positive integer.
    """
    for name, value in (("num_available", num_available), ("num_frames", num_frames)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    if num_available >= num_frames:
        positions = np.linspace(0, num_available - 1, num_frames)  # (T,)
        indices = np.floor(positions + 0.5).astype(np.int64)
        mask = np.ones(num_frames, dtype=bool)
        return indices, mask

    indices = np.full(num_frames, num_available - 1, dtype=np.int64)
    indices[:num_available] = np.arange(num_available)
    mask = np.arange(num_frames) < num_available
    return indices, mask
