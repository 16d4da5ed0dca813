"""Extract one aligned, fixed-length clip and its landmark track from one video.

Shapes: N decoded frames, T clip frames, S the side of the square aligned crop, 68 landmarks.

The landmark track comes from a landmark file (the tracks a dataset ships), from dlib's 68-point
tracker (`siamlib.video.dlib_tracker`) or from the Haar-cascade fallback in `siamlib.video.haar`.
Per-frame alignment matrices come from the smoothed eye track, the video is resampled in time
(`resample_frames`) and `sample_indices` picks T of the resampled frames. The video is then
decoded once more and only those frames are warped and kept in memory, so full-HD videos of any
length fit. The tracker needs the whole track before the smoothed eye positions of a frame are
known, so the frames the clip will take are guessed from the header's frame count and held
(compact, undecoded to RGB) during tracking; only when the decoded count proves the header wrong
is the video decoded a second time.

Frames inside a run without a face longer than the tracker's `max_gap_s` are masked out of the
clip, and a video with a face in fewer than `min_face_fraction` of its frames is rejected.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamlib.config import config_from_mapping
from siamlib.landmarks import NUM_LANDMARKS, inter_ocular_distance
from siamlib.video.align import (
    DEFAULT_EYE_DISTANCE,
    DEFAULT_EYE_Y,
    DEFAULT_SMOOTHING_WINDOW,
    check_alignment_arguments,
    similarity_from_eyes,
    smoothed_eye_track,
    transform_points,
    warp_frame,
)
from siamlib.video.decode import VideoReader
from siamlib.video.dlib_tracker import (
    DlibTracker,
    TrackerSettings,
    fill_gaps,
    undetected_runs,
)
from siamlib.video.haar import landmarks_from_eyes, track_eyes
from siamlib.video.parallel import write_npz_atomic
from siamlib.video.sampling import resample_frames, sample_indices

logger = logging.getLogger(__name__)

LANDMARK_SOURCE_FILE = "file"
LANDMARK_SOURCE_DLIB = "dlib"
LANDMARK_SOURCE_HAAR = "haar"

LANDMARK_SETTINGS: tuple[str, ...] = ("auto", "dataset", "dlib", "haar")
"""Values of `PreprocessSettings.landmarks`."""

DEFAULT_MIN_FACE_FRACTION = 0.5

QUALITY_COLUMNS: tuple[str, ...] = (
    "landmark_source", "face_fraction", "longest_gap_s", "landmark_jitter", "max_faces",
    "rotation", "frame_interval_cv",
)
"""Per-video quality measures of `ExtractedClip.quality`, in this order."""


class ClipExtractionError(RuntimeError):
    """A video's landmarks are missing, invalid or mismatched, or no usable face is found.

    Attributes:
        path: The video file.
        reason: What failed, in a short phrase.
        num_decoded: Frames decoded before the failure; 0 when the video was not decoded.
        fps: Frames per second of the video; NaN when the video was not decoded.
        quality: The quality measures known at the failure (see `QUALITY_COLUMNS`), or empty.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        num_decoded: int = 0,
        fps: float = float("nan"),
        quality: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.num_decoded = num_decoded
        self.fps = fps
        self.quality = dict(quality or {})
        super().__init__(f"cannot extract a clip from {self.path}: {reason}")


def _tracker_settings(value: TrackerSettings | Mapping[str, Any] | None) -> TrackerSettings:
    if value is None:
        return TrackerSettings()
    if isinstance(value, TrackerSettings):
        return value
    return config_from_mapping(TrackerSettings, value)


@dataclass(frozen=True)
class PreprocessSettings:
    """Settings that turn a video into an aligned clip (the `preprocess:` section of params.yaml).

    Attributes:
        num_frames: Clip length T, >= 1.
        image_size: Side S of the aligned square crop in pixels.
        landmarks: Source of the landmark track. "dataset" reads a landmark file per video,
            as the synthetic benchmark ships. "dlib" runs dlib's 68-point tracker. "haar"
            puts the eyes at fixed places in OpenCV's Haar-cascade face box, a coarse
            fallback. "auto" is dataset where every video has a landmark file, else dlib.
        fps: Frame rate the video is resampled to before T frames are sampled, or None to
            keep the video's own frames. Resampling follows the frames' timestamps, so a
            variable frame rate video is sampled evenly in time only with a rate set.
        min_face_fraction: Smallest share of frames with a detected face; a video below it is
            skipped. Ignored for landmark files, which cover every frame.
        eye_distance: Canonical eye distance as a fraction of S.
        eye_y: Canonical eye height as a fraction of S from the top.
        smoothing_window: Odd number of frames in the moving average over the eye track.
        tracker: dlib tracker settings (`siamlib.video.dlib_tracker.TrackerSettings`); a
            mapping is converted.

    Raises:
        ValueError: If a setting is invalid (the message names it).
    """

    num_frames: int = 16
    image_size: int = 64
    landmarks: str = "auto"
    fps: float | None = None
    min_face_fraction: float = DEFAULT_MIN_FACE_FRACTION
    eye_distance: float = DEFAULT_EYE_DISTANCE
    eye_y: float = DEFAULT_EYE_Y
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW
    tracker: TrackerSettings = field(default_factory=TrackerSettings)

    def __post_init__(self) -> None:
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, numbers.Integral):
            raise ValueError(f"num_frames must be an integer, got {self.num_frames!r}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        check_alignment_arguments(
            self.image_size, self.eye_distance, self.eye_y, self.smoothing_window
        )
        if self.landmarks not in LANDMARK_SETTINGS:
            raise ValueError(f"landmarks must be one of {LANDMARK_SETTINGS}, "
                             f"got {self.landmarks!r}")
        if self.fps is not None and (
            isinstance(self.fps, bool) or not isinstance(self.fps, numbers.Real)
            or not math.isfinite(self.fps) or self.fps <= 0
        ):
            raise ValueError(f"fps must be a positive number of frames per second or null, "
                             f"got {self.fps!r}")
        if (isinstance(self.min_face_fraction, bool)
                or not isinstance(self.min_face_fraction, numbers.Real)
                or not 0 <= self.min_face_fraction <= 1):
            raise ValueError(f"min_face_fraction must be a share in [0, 1], "
                             f"got {self.min_face_fraction!r}")
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "image_size", int(self.image_size))
        object.__setattr__(self, "smoothing_window", int(self.smoothing_window))
        object.__setattr__(self, "fps", None if self.fps is None else float(self.fps))
        object.__setattr__(self, "tracker", _tracker_settings(self.tracker))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PreprocessSettings:
        """Build the settings from the `preprocess:` section of params.yaml.

        Raises:
            ValueError: If a key is unknown (the message lists the valid ones) or a value is
                invalid.
        """
        return config_from_mapping(cls, params)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain values, for example for a cache fingerprint."""
        return dataclasses.asdict(self)


@dataclass
class ExtractedClip:
    """An aligned clip with the full-rate track it was made from.

    Attributes:
        clip: uint8 array (T, S, S, 3), aligned RGB frames; zeros where mask is False.
        mask: bool array (T,), False at padding positions of videos shorter than T and at
            frames inside a run without a face longer than the tracker's max_gap_s.
        indices: int64 array (T,), decoded-frame index of each clip position.
        fps: Frames per second of the video.
        num_decoded: Frames decoded from the video (N).
        landmarks: float32 array (N, 68, 2) in frame pixels; runs without a face are
            interpolated, so every frame has a value.
        eye_centres: float32 array (N, 2, 2), smoothed eye centres used for alignment, right
            then left eye, in frame pixels.
        matrices: float64 array (N, 2, 3), frame-to-crop alignment matrices.
        aligned_landmarks: float32 array (N, 68, 2) in crop pixels.
        landmark_source: "file" for a landmark file, "dlib" for dlib's tracker, "haar" for the
            Haar-cascade fallback, whose landmarks carry only the eye centres (see
            `siamlib.video.haar.landmarks_from_eyes`).
        detected: bool array (N,), True where the face was found (every frame for a file).
        timestamps: float64 array (N,), presentation time of each frame in seconds.
        quality: The measures of `QUALITY_COLUMNS`: landmark_source; face_fraction (share of
            frames with a face); longest_gap_s (longest run without one); landmark_jitter
            (root mean square of each landmark's second difference over time, over frames
            with a face and their neighbours, in inter-ocular distances; smooth motion gives
            about 0, a tracker's frame-to-frame noise raises it; NaN without 3 consecutive
            frames with a face or for the Haar fallback); max_faces (most faces found in one
            frame); rotation (degrees applied from the display matrix); frame_interval_cv
            (coefficient of variation of the time between frames, 0 at a constant rate).
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
    detected: np.ndarray
    timestamps: np.ndarray
    quality: dict[str, Any]


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


@dataclass
class _Track:
    """The first pass over a video: landmarks of every frame and what the tracker saw."""

    landmarks: np.ndarray  # (N, 68, 2), NaN where no face was found
    detected: np.ndarray  # (N,) bool
    num_faces: np.ndarray  # (N,) int
    timestamps: np.ndarray | None  # (N,) seconds, None when the video was not decoded
    fps: float
    rotation: int
    source: str
    reader: VideoReader | None = None  # the closed reader of the pass, with its kept frames


def _guess_clip_frames(reader: VideoReader, settings: PreprocessSettings) -> set[int]:
    """Frames the clip will take if the header's frame count is right (empty when unknown)."""
    expected = reader.expected_frames()
    if expected is None or settings.fps is not None:
        return set()
    indices, mask = sample_indices(expected, settings.num_frames)
    return {int(index) for index in indices[mask]}


def _first_pass(
    video_path: Path, settings: PreprocessSettings, landmarks_path: Path | None
) -> _Track:
    """Find the landmarks of every frame, decoding the video when they come from a detector."""
    if landmarks_path is not None:
        landmarks = load_landmarks(landmarks_path, video_path)  # (N, 68, 2)
        timestamps = None
        fps = float("nan")
        rotation = 0
        if settings.fps is not None:
            # Resampling needs the timestamps, so decode without converting any frame.
            with VideoReader(video_path) as reader:
                for _ in reader.iter_selected(()):
                    pass
                timestamps = np.array(reader.timestamps)
                fps, rotation = reader.fps, reader.rotation
        detected = np.ones(len(landmarks), dtype=bool)
        return _Track(landmarks, detected, detected.astype(np.int32), timestamps, fps,
                      rotation, LANDMARK_SOURCE_FILE)

    if settings.landmarks == "dataset":
        raise ClipExtractionError(
            video_path, "preprocess.landmarks is 'dataset' but no landmark file was given. "
                        "Use 'dlib' or 'auto' for videos without landmark tracks"
        )
    with VideoReader(video_path) as reader:
        # The frames the clip will probably take are held while tracking, which saves a
        # second decoding when the header's frame count proves right.
        keep = _guess_clip_frames(reader, settings)
        if settings.landmarks == "haar":
            try:
                eyes, detected = track_eyes(
                    frame for _, frame in reader.iter_selected(None, keep=keep)
                )
            except ValueError as error:
                raise ClipExtractionError(video_path, str(error), reader.num_decoded,
                                          reader.fps) from error
            landmarks = landmarks_from_eyes(eyes)  # (N, 68, 2), gaps already interpolated
            num_faces = detected.astype(np.int32)
            source = LANDMARK_SOURCE_HAAR
        else:
            tracker = _tracker_for(settings.tracker)
            frames = (gray for _, gray in reader.iter_selected(None, color="gray", keep=keep))
            track = tracker.track_frames(frames, reader.fps)
            landmarks = np.where(track.detected[:, None, None], track.landmarks, np.nan)
            detected, num_faces = track.detected, track.num_faces
            source = LANDMARK_SOURCE_DLIB
        return _Track(landmarks.astype(np.float32), detected, num_faces,
                      np.array(reader.timestamps), reader.fps, reader.rotation, source, reader)


_TRACKERS: dict[TrackerSettings, DlibTracker] = {}


def _tracker_for(settings: TrackerSettings) -> DlibTracker:
    # dlib objects cannot be pickled, so each process keeps its own tracker per settings.
    if settings not in _TRACKERS:
        _TRACKERS[settings] = DlibTracker(
            settings.detection_size, settings.upsample, settings.max_gap_s, settings.detect_every
        )
    return _TRACKERS[settings]


def landmark_jitter(landmarks: np.ndarray, detected: np.ndarray) -> float:
    """Measure frame-to-frame landmark noise in inter-ocular distances.

    The second difference x[t-1] - 2 x[t] + x[t+1] of each point is 0 for motion at constant
    speed, so it mostly measures the tracker's jitter. Only triples of detected frames count.

    Args:
        landmarks: float array (N, 68, 2).
        detected: bool array (N,).

    Returns:
        Root mean square of the second differences' lengths divided by the median
        inter-ocular distance, or NaN with no three consecutive detected frames.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if len(points) < 3:
        return float("nan")
    triples = detected[:-2] & detected[1:-1] & detected[2:]  # (N - 2,)
    if not triples.any():
        return float("nan")
    second = points[:-2] - 2 * points[1:-1] + points[2:]  # (N - 2, 68, 2)
    lengths = np.linalg.norm(second[triples], axis=-1)  # (K, 68)
    if not np.isfinite(lengths).all():
        return float("nan")
    iod = float(np.median(inter_ocular_distance(points[detected])))
    if not iod > 0:
        return float("nan")
    return float(np.sqrt(np.mean(lengths ** 2)) / iod)


def _outside_long_gaps(detected: np.ndarray, fps: float, max_gap_s: float) -> np.ndarray:
    """Mark the frames that are not inside a run without a face longer than max_gap_s, (N,)."""
    usable = np.ones(len(detected), dtype=bool)
    for start, length in undetected_runs(detected):
        if length / fps > max_gap_s + 1e-9:
            usable[start:start + length] = False
    return usable


def _monotonic_timestamps(timestamps: np.ndarray, fps: float, video_path: Path) -> np.ndarray:
    """Return the frame times, or index / fps when they go backwards (broken or B-frame pts)."""
    times = np.asarray(timestamps, dtype=np.float64)
    if len(times) < 2 or (np.all(np.isfinite(times)) and np.all(np.diff(times) >= 0)):
        return times
    backwards = int(np.flatnonzero(~(np.diff(times) >= 0))[0]) + 1
    logger.warning("%s: frame timestamps go backwards at frame %d. Using frame index / %.3g fps "
                   "as the frame times instead", video_path.name, backwards, fps)
    return np.arange(len(times)) / fps


def _quality(track: _Track, fps: float) -> dict[str, Any]:
    detected = track.detected
    longest = max((length for _, length in undetected_runs(detected)), default=0)
    if track.timestamps is not None and len(track.timestamps) > 2:
        intervals = np.diff(track.timestamps)
        mean = float(intervals.mean())
        interval_cv = float(intervals.std() / mean) if mean > 0 else float("nan")
    else:
        interval_cv = float("nan")
    jitter = (float("nan") if track.source == LANDMARK_SOURCE_HAAR
              else landmark_jitter(track.landmarks, detected))
    return {
        "landmark_source": track.source,
        "face_fraction": float(detected.mean()) if len(detected) else 0.0,
        "longest_gap_s": longest / fps if fps > 0 else float("nan"),
        "landmark_jitter": jitter,
        "max_faces": int(track.num_faces.max()) if len(track.num_faces) else 0,
        "rotation": int(track.rotation),
        "frame_interval_cv": interval_cv,
    }


def _warp_sampled_frames(
    video_path: Path,
    matrices: np.ndarray,
    indices: np.ndarray,
    mask: np.ndarray,
    image_size: int,
) -> tuple[np.ndarray, float, int, list[float], int]:
    """Decode the video and warp the frames at the valid clip positions.

    Returns:
        clip: uint8 array (T, S, S, 3) with zeros at padding positions.
        fps: Frames per second of the video.
        num_decoded: Frames decoded.
        timestamps: Every frame's time in seconds.
        rotation: Degrees of display rotation applied.
    """
    clip = np.zeros((len(indices), image_size, image_size, 3), dtype=np.uint8)  # (T, S, S, 3)
    positions_by_frame: dict[int, list[int]] = {}
    for position in np.flatnonzero(mask):
        positions_by_frame.setdefault(int(indices[position]), []).append(int(position))

    with VideoReader(video_path) as reader:
        for frame_index, frame in reader.iter_selected(positions_by_frame):
            aligned = warp_frame(frame, matrices[frame_index], image_size)  # (S, S, 3)
            clip[positions_by_frame[frame_index]] = aligned
        return clip, reader.fps, reader.num_decoded, reader.timestamps, reader.rotation


def extract_clip(
    video_path: str | os.PathLike[str],
    settings: PreprocessSettings,
    landmarks_path: str | os.PathLike[str] | None = None,
) -> ExtractedClip:
    """Align a video by its eye track and sample a fixed-length clip from it.

    Args:
        video_path: The video file.
        settings: The preprocessing settings.
        landmarks_path: `.npy` landmark track of shape (N, 68, 2) matching the decoded frames,
            or None to track the face with dlib ("auto", "dlib") or the Haar cascade ("haar").

    Returns:
        The clip, its mask and indices, the full-rate tracks and the quality measures.

    Raises:
        VideoReadError: If the video cannot be decoded.
        ClipExtractionError: If the landmarks are missing, invalid or their frame count differs
            from the decoded frames, no face is found, a face is found in too few frames, or
            no clip frame has a face.
    """
    if not isinstance(settings, PreprocessSettings):
        raise ValueError(f"settings must be a PreprocessSettings, got {type(settings).__name__}")
    video_path = Path(video_path)
    # Opening checks the file, so a missing or corrupt video is reported as such rather than
    # as a landmark problem.
    VideoReader(video_path).close()
    track = _first_pass(video_path, settings,
                        None if landmarks_path is None else Path(landmarks_path))
    num_frames = len(track.landmarks)
    fps = track.fps
    if track.timestamps is not None:
        track.timestamps = _monotonic_timestamps(track.timestamps, fps, video_path)
    quality = _quality(track, fps) if math.isfinite(fps) else {}

    if track.source != LANDMARK_SOURCE_FILE:
        found = int(track.detected.sum())
        if found == 0:
            raise ClipExtractionError(
                video_path, f"no face found in any of {num_frames} frames", num_frames, fps,
                quality,
            )
        if found / num_frames < settings.min_face_fraction:
            raise ClipExtractionError(
                video_path,
                f"a face was found in only {found} of {num_frames} frames "
                f"({found / num_frames:.0%}); preprocess.min_face_fraction is "
                f"{settings.min_face_fraction:.0%}",
                num_frames, fps, quality,
            )
        # Frames in runs without a face longer than max_gap_s are masked out of the clip below.
        # NOTE: run durations count frames at the average frame rate, so on variable frame
        # rate video max_gap_s and longest_gap_s are approximate.
        usable = _outside_long_gaps(track.detected, fps, settings.tracker.max_gap_s)  # (N,)
        if track.source == LANDMARK_SOURCE_DLIB:
            # Alignment needs eyes in every frame, so every run is interpolated here.
            landmarks = fill_gaps(track.landmarks, track.detected, fps,
                                  num_frames / fps + 1).landmarks  # (N, 68, 2)
        else:
            landmarks = track.landmarks  # the Haar eye track comes interpolated
    else:
        usable = np.ones(num_frames, dtype=bool)
        landmarks = track.landmarks

    try:
        eyes = smoothed_eye_track(landmarks, settings.smoothing_window)  # (N, 2, 2)
        matrices = similarity_from_eyes(
            eyes[:, 0], eyes[:, 1], settings.image_size, settings.eye_distance, settings.eye_y
        )  # (N, 2, 3)
    except ValueError as error:
        raise ClipExtractionError(
            video_path, f"landmarks are unusable for alignment ({error})", num_frames, fps,
            quality,
        ) from error

    if track.timestamps is not None and settings.fps is not None:
        candidates = resample_frames(track.timestamps, settings.fps)  # (M,)
    else:
        candidates = np.arange(num_frames, dtype=np.int64)
    positions, mask = sample_indices(len(candidates), settings.num_frames)  # (T,), (T,)
    indices = candidates[positions]  # (T,)
    mask &= usable[indices]
    if not mask.any():
        raise ClipExtractionError(video_path, "no sampled frame shows a face", num_frames, fps,
                                  quality)

    needed = {int(index) for index in indices[mask]}
    if track.reader is not None and needed <= set(track.reader.kept):
        clip = np.zeros((len(indices), settings.image_size, settings.image_size, 3),
                        dtype=np.uint8)  # (T, S, S, 3)
        for position in np.flatnonzero(mask):
            frame = track.reader.kept_rgb(int(indices[position]))  # (H, W, 3)
            clip[position] = warp_frame(frame, matrices[indices[position]], settings.image_size)
        num_decoded, timestamps, rotation = num_frames, track.timestamps, track.rotation
        track.reader.kept.clear()
    else:
        clip, fps, num_decoded, timestamps, rotation = _warp_sampled_frames(
            video_path, matrices, indices, mask, settings.image_size
        )
    if num_decoded != num_frames:
        raise ClipExtractionError(
            video_path,
            f"landmarks have {num_frames} frames but the video decoded {num_decoded}",
            num_decoded=num_decoded,
            fps=fps,
        )
    if track.timestamps is None:
        track.timestamps = _monotonic_timestamps(np.array(timestamps), fps, video_path)
        track.fps, track.rotation = fps, rotation
        quality = _quality(track, fps)
    if track.timestamps is not None and settings.fps is None and quality["frame_interval_cv"] > 0.1:
        logger.warning("%s: frame intervals vary (coefficient of variation %.2f). Set "
                       "preprocess.fps to sample it evenly in time",
                       video_path.name, quality["frame_interval_cv"])

    return ExtractedClip(
        clip=clip,
        mask=mask,
        indices=indices,
        fps=fps,
        num_decoded=num_decoded,
        landmarks=landmarks.astype(np.float32),
        eye_centres=eyes.astype(np.float32),
        matrices=matrices,
        aligned_landmarks=transform_points(landmarks, matrices).astype(np.float32),
        landmark_source=track.source,
        detected=track.detected,
        timestamps=np.asarray(track.timestamps, dtype=np.float64),
        quality=quality,
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
        landmark_source    str scalar, "file", "dlib" or "haar"
        detected           bool (N,), where the face was found
        timestamps         float64 (N,), seconds

    Args:
        path: Output file; its folder must exist.
        extracted: The clip and tracks from `extract_clip`.
    """
    write_npz_atomic(
        path,
        landmarks=extracted.landmarks,
        aligned_landmarks=extracted.aligned_landmarks,
        eye_centres=extracted.eye_centres,
        matrices=extracted.matrices,
        indices=extracted.indices,
        mask=extracted.mask,
        fps=np.float64(extracted.fps),
        landmark_source=np.str_(extracted.landmark_source),
        detected=extracted.detected.astype(bool),
        timestamps=extracted.timestamps.astype(np.float64),
    )
