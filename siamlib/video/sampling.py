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


def resample_frames(timestamps: np.ndarray, fps: float | None) -> np.ndarray:
    """Resample a video to a constant frame rate by picking the nearest frame in time.

    With fps None the video keeps its own frames (every index once). With a rate, the target
    times run from the first frame's timestamp in steps of 1 / fps up to the last frame's, and
    each takes the frame whose timestamp is nearest (the earlier one on a tie). A variable frame
    rate video then contributes frames evenly spaced in time, a 50 fps video resampled to 25 fps
    keeps every other frame, and a 25 fps video resampled to 50 fps shows most frames twice.

    Args:
        timestamps: float array (N,), presentation times in seconds, non-decreasing.
        fps: Target frame rate, positive, or None.

    Returns:
        int64 array (M,) of frame indices in [0, N), non-decreasing.

    Raises:
        ValueError: If timestamps is empty or decreasing, or fps is not positive.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    if times.ndim != 1 or len(times) == 0:
        raise ValueError(f"timestamps must have shape (N,) with N >= 1, got {times.shape}")
    if not np.isfinite(times).all() or (np.diff(times) < 0).any():
        raise ValueError("timestamps must be finite and non-decreasing")
    if fps is None:
        return np.arange(len(times), dtype=np.int64)
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not fps > 0:
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")

    duration = times[-1] - times[0]
    # The small tolerance keeps the last frame of an exactly fps-spaced video.
    count = int(np.floor(duration * fps + 1e-6)) + 1
    targets = times[0] + np.arange(count) / fps  # (M,)
    after = np.searchsorted(times, targets, side="left").clip(0, len(times) - 1)  # (M,)
    before = (after - 1).clip(0, len(times) - 1)
    take_before = np.abs(targets - times[before]) <= np.abs(times[after] - targets)
    return np.where(take_before, before, after).astype(np.int64)
