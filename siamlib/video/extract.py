"""Extract one aligned, fixed-length clip and its landmark track from one video.

Shapes: N decoded frames, T clip frames, S the side of the square aligned crop, 68 landmarks.

The landmark track comes from a landmark file or from the Haar-cascade fallback in
`siamlib.video.haar`. Per-frame alignment matrices come from the smoothed eye track, and
`sample_indices` picks T frame indices. The video is then decoded once more and only those
frames are warped and kept in memory, so full-HD videos of any length fit.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamlib.landmarks import NUM_LANDMARKS
from siamlib.video.align import (
    check_alignment_arguments,
    similarity_from_eyes,
    smoothed_eye_track,
    transform_points,
    warp_frame,
)
from siamlib.video.decode import VideoReader
from siamlib.video.haar import landmarks_from_eyes, track_eyes
from siamlib.video.sampling import sample_indices

LANDMARK_SOURCE_FILE = "file"
LANDMARK_SOURCE_HAAR = "haar"


class ClipExtractionError(RuntimeError):
    """A video's landmarks are missing, invalid or mismatched, or the fallback finds no face.

    Attributes:
        path: The video file.
        reason: What failed, in a short phrase.
        num_decoded: Frames decoded before the failure; 0 when the video was not decoded.
        fps: Frames per second of the video; NaN when the video was not decoded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        num_decoded: int = 0,
        fps: float = float("nan"),
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.num_decoded = num_decoded
        self.fps = fps
        super().__init__(f"cannot extract a clip from {self.path}: {reason}")


@dataclass
class ExtractedClip:
    """An aligned clip with the full-rate track it was made from.

    Attributes:
        clip: uint8 array (T, S, S, 3), aligned RGB frames; zeros where mask is False.
        mask: bool array (T,), False at padding positions of videos shorter than T.
        indices: int64 array (T,), decoded-frame index of each clip position.
        fps: Frames per second of the video.
        num_decoded: Frames decoded from the video (N).
        landmarks: float32 array (N, 68, 2) in frame pixels.
        eye_centres: float32 array (N, 2, 2), smoothed eye centres used for alignment, right
            then left eye, in frame pixels.
        matrices: float64 array (N, 2, 3), frame-to-crop alignment matrices.
        aligned_landmarks: float32 array (N, 68, 2) in crop pixels.
        landmark_source: "file" for a landmark file, "haar" for the Haar-cascade fallback, whose
            landmarks carry only the eye centres (see `siamlib.video.haar.landmarks_from_eyes`).
    """

    clip: np.ndarray
    mask: np.ndarray
    indices: np.ndarray
    fps: float
    num_decoded: int
    landmarks: np.ndarray
    eye_centres: np.ndarray
    matrices: np.ndarray
    aligned_landmarks: np.ndarray
    landmark_source: str


def load_landmarks(path: Path, video_path: Path) -> np.ndarray:
    """Load a landmark track and check its shape.

    Args:
        path: `.npy` file with a float array of shape (N, 68, 2).
        video_path: The video the track belongs to, for error messages.

    Returns:
        float32 array of shape (N, 68, 2).

    Raises:
        ClipExtractionError: If the file is missing, unreadable or has the wrong shape.
    """
    if not path.is_file():
        raise ClipExtractionError(video_path, f"landmarks file not found: {path}")
    try:
        landmarks = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ClipExtractionError(
            video_path, f"landmarks file {path} is unreadable ({error})"
        ) from error
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2) or len(landmarks) == 0:
        raise ClipExtractionError(
            video_path,
            f"landmarks in {path} must have shape (N, {NUM_LANDMARKS}, 2) with N >= 1, "
            f"got {landmarks.shape}",
        )
    if not np.issubdtype(landmarks.dtype, np.number):
        raise ClipExtractionError(video_path, f"landmarks in {path} are not numeric "
                                              f"(dtype {landmarks.dtype})")
    return landmarks.astype(np.float32)


def _track_with_haar(video_path: Path) -> np.ndarray:
    """Run the Haar fallback over every frame and return (N, 68, 2) eye-only landmarks."""
    with VideoReader(video_path) as reader:
        try:
            eyes, _ = track_eyes(reader)
        except ValueError as error:
            raise ClipExtractionError(video_path, str(error)) from error
    return landmarks_from_eyes(eyes)  # (N, 68, 2)


def _warp_sampled_frames(
    video_path: Path,
    matrices: np.ndarray,
    indices: np.ndarray,
    mask: np.ndarray,
    image_size: int,
) -> tuple[np.ndarray, float, int]:
    """Decode the video and warp the frames at the valid clip positions.

    Returns:
        clip: uint8 array (T, S, S, 3) with zeros at padding positions.
        fps: Frames per second of the video.
        num_decoded: Frames decoded.
    """
    clip = np.zeros((len(indices), image_size, image_size, 3), dtype=np.uint8)  # (T, S, S, 3)
    positions_by_frame: dict[int, list[int]] = {}
    for position in np.flatnonzero(mask):
        positions_by_frame.setdefault(int(indices[position]), []).append(int(position))

    with VideoReader(video_path) as reader:
        for frame_index, frame in reader.iter_selected(positions_by_frame):
            aligned = warp_frame(frame, matrices[frame_index], image_size)  # (S, S, 3)
            clip[positions_by_frame[frame_index]] = aligned
        return clip, reader.fps, reader.num_decoded


def extract_clip(
    video_path: str | os.PathLike[str],
    landmarks_path: str | os.PathLike[str] | None,
    num_frames: int,
    image_size: int,
    eye_distance: float,
    eye_y: float,
    smoothing_window: int,
) -> ExtractedClip:
    """Align a video by its eye track and sample a fixed-length clip from it.

    Args:
        video_path: The video file.
        landmarks_path: `.npy` landmark track of shape (N, 68, 2) matching the decoded frames,
            or None to estimate the eye track with the Haar-cascade fallback.
        num_frames: Clip length T.
        image_size: Side S of the aligned crop.
        eye_distance: Canonical eye distance as a fraction of S.
        eye_y: Canonical eye height as a fraction of S.
        smoothing_window: Odd number of frames in the moving average over the eye track.

    Returns:
        The clip, its mask and indices, and the full-rate tracks.

    Raises:
        VideoReadError: If the video cannot be decoded.
        ClipExtractionError: If the landmarks are missing, invalid or their frame count differs
            from the decoded frames, or the fallback finds no face.
        ValueError: If num_frames, smoothing_window or a geometry argument is invalid; these
            are checked before any file is read.
    """
    check_alignment_arguments(image_size, eye_distance, eye_y, smoothing_window)
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral):
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")

    video_path = Path(video_path)
    # Opening checks the file, so a missing or corrupt video is reported as such rather than
    # as a landmark problem.
    VideoReader(video_path).close()
    if landmarks_path is None:
        landmarks = _track_with_haar(video_path)  # (N, 68, 2)
        source = LANDMARK_SOURCE_HAAR
    else:
        landmarks = load_landmarks(Path(landmarks_path), video_path)  # (N, 68, 2)
        source = LANDMARK_SOURCE_FILE

    try:
        eyes = smoothed_eye_track(landmarks, smoothing_window)  # (N, 2, 2)
        matrices = similarity_from_eyes(
            eyes[:, 0], eyes[:, 1], image_size, eye_distance, eye_y
        )  # (N, 2, 3)
    except ValueError as error:
        raise ClipExtractionError(
            video_path, f"landmarks are unusable for alignment ({error})"
        ) from error
    indices, mask = sample_indices(len(landmarks), num_frames)  # (T,), (T,)

    clip, fps, num_decoded = _warp_sampled_frames(
        video_path, matrices, indices, mask, image_size
    )
    if num_decoded != len(landmarks):
        raise ClipExtractionError(
            video_path,
            f"landmarks have {len(landmarks)} frames but the video decoded {num_decoded}",
            num_decoded=num_decoded,
            fps=fps,
        )

    return ExtractedClip(
        clip=clip,
        mask=mask,
        indices=indices,
        fps=fps,
        num_decoded=num_decoded,
        landmarks=landmarks,
        eye_centres=eyes.astype(np.float32),
        matrices=matrices,
        aligned_landmarks=transform_points(landmarks, matrices).astype(np.float32),
        landmark_source=source,
    )


def save_track(path: str | os.PathLike[str], extracted: ExtractedClip) -> None:
    """Write the tracks of an extracted clip to an `.npz` file atomically.

    The arrays go to a temporary file in the same folder, which then replaces path, so readers
    never see a half-written file. The archive contains these arrays:

        landmarks          float32 (N, 68, 2), frame pixels
        aligned_landmarks  float32 (N, 68, 2), crop pixels
        eye_centres        float32 (N, 2, 2), smoothed, frame pixels
        matrices           float64 (N, 2, 3), frame to crop
        indices            int64 (T,), decoded-frame index of each clip position
        mask               bool (T,)
        fps                float64 scalar
        landmark_source    str scalar, "file" or "haar"

    Args:
        path: Output file; its folder must exist.
        extracted: The clip and tracks from `extract_clip`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez(
                file,
                landmarks=extracted.landmarks,
                aligned_landmarks=extracted.aligned_landmarks,
                eye_centres=extracted.eye_centres,
                matrices=extracted.matrices,
                indices=extracted.indices,
                mask=extracted.mask,
                fps=np.float64(extracted.fps),
                landmark_source=np.str_(extracted.landmark_source),
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
