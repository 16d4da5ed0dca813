"""Read the attention ground truth of a synthetic dataset at the frames a model saw.

`generate_dataset` writes `ground_truth/<stem>.npz` beside every video.
`siamlib.evaluation.faithfulness` scores attention against three of its arrays:
    region_masks     uint8 (R, M, M), the planted cue regions in the aligned face frame
    informativeness  float32 (N,), the age information each frame shows
    smile_phase      int8 (N,), 0 neutral before, 1 onset, 2 apex, 3 offset, 4 neutral after
Preprocessing samples T of a video's N frames, so the per-frame arrays are taken at the
sampled frame indices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamlib.data.synthetic.dynamics import PHASE_CODES
from siamlib.video.align import DEFAULT_EYE_DISTANCE, DEFAULT_EYE_Y

GROUND_TRUTH_DIR = "ground_truth"


@dataclass(frozen=True)
class AttentionTargets:
    """Ground truth of V videos at their T sampled frames.

    Attributes:
        region_names: Names of the R regions, in mask order.
        masks: Uint8 array (V, R, M, M), 1 inside a region, in the aligned face frame.
        informativeness: Float64 array (V, T); NaN at padding positions.
        apex: Bool array (V, T), True where the sampled frame is in the smile's apex.
        smile: Float64 array (V, T), the smile intensity; NaN at padding positions.
    """

    region_names: tuple[str, ...]
    masks: np.ndarray
    informativeness: np.ndarray
    apex: np.ndarray
    smile: np.ndarray


def has_ground_truth(dataset_root: str | os.PathLike[str]) -> bool:
    """Return True if `dataset_root` has the ground-truth folder of a synthetic dataset."""
    return (Path(dataset_root) / GROUND_TRUTH_DIR).is_dir()


def load_attention_targets(
    dataset_root: str | os.PathLike[str],
    videos: list[str] | np.ndarray,
    sampled_indices: np.ndarray,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
) -> AttentionTargets:
    """Load the region masks and per-frame targets of `videos` at their sampled frames.

    Args:
        dataset_root: Folder of a synthetic dataset (with `ground_truth/`).
        videos: V video file names, e.g. "001_spontaneous_smile_1.mp4".
        sampled_indices: Int array (V, T) of decoded-frame indices, -1 at padding positions
            (`siamlib.video.clips.load_sampled_indices`).
        eye_distance: Eye distance of the aligned crops the attention was computed on, as a
            fraction of the crop side.
        eye_y: Eye-line height of those crops, as a fraction of the crop side.

    Returns:
        The targets, in the order of `videos`.

    Raises:
        FileNotFoundError: If a ground-truth file is missing.
        ValueError: If the shapes disagree, a sampled index is outside the video, the videos'
            regions differ, or the masks were drawn for another crop geometry.
    """
    videos = [str(v) for v in videos]
    indices = np.asarray(sampled_indices)
    if indices.ndim != 2 or len(indices) != len(videos):
        raise ValueError(f"sampled_indices must have shape ({len(videos)}, T), got {indices.shape}")
    folder = Path(dataset_root) / GROUND_TRUTH_DIR

    names: tuple[str, ...] | None = None
    masks, informativeness, apex, smile = [], [], [], []
    for video, rows in zip(videos, indices):
        path = folder / f"{Path(video).stem}.npz"
        if not path.is_file():
            raise FileNotFoundError(
                f"ground-truth file {path} not found for video {video}; regenerate the synthetic "
                f"dataset (dvc repro synthetic)"
            )
        with np.load(path, allow_pickle=False) as truth:
            if "region_masks" not in truth.files:
                raise ValueError(f"{path} has no region_masks; it was written by an older "
                                 f"generator. Regenerate the synthetic dataset.")
            geometry = (float(truth["mask_eye_distance"]), float(truth["mask_eye_y"]))
            if not np.allclose(geometry, (eye_distance, eye_y)):
                raise ValueError(
                    f"{path}: masks drawn for eye_distance, eye_y = {geometry}, but the crops "
                    f"use {(eye_distance, eye_y)}"
                )
            video_names = tuple(str(n) for n in truth["region_names"])
            if names is None:
                names = video_names
            elif video_names != names:
                raise ValueError(f"{path}: regions {video_names} differ from {names}")
            num_frames = len(truth["smile_intensity"])
            valid = rows >= 0
            if (rows >= num_frames).any():
                raise ValueError(f"{path}: sampled frame index {int(rows.max())} is outside the "
                                 f"video's {num_frames} frames")
            safe = np.where(valid, rows, 0)
            masks.append(truth["region_masks"])
            informativeness.append(np.where(valid, truth["informativeness"][safe], np.nan))
            smile.append(np.where(valid, truth["smile_intensity"][safe], np.nan))
            apex.append(valid & (truth["smile_phase"][safe] == PHASE_CODES["apex"]))

    if names is None:
        return AttentionTargets((), np.zeros((0, 0, 0, 0), np.uint8),
                                np.zeros(indices.shape), np.zeros(indices.shape, bool),
                                np.zeros(indices.shape))
    return AttentionTargets(
        region_names=names,
        masks=np.stack(masks),
        informativeness=np.stack(informativeness).astype(np.float64),
        apex=np.stack(apex),
        smile=np.stack(smile).astype(np.float64),
    )
