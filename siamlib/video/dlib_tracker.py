"""Track 68 facial landmarks through a video with dlib's HOG face detector and shape predictor.

Shapes: N decoded frames of height H and width W, 68 landmarks in the iBUG scheme of
`siamlib.landmarks`, each (x, y) in frame pixels.

Each frame is converted to grayscale and resized so that its shorter side is `detection_size`
pixels (smaller frames are enlarged), and dlib's frontal face detector
(`dlib.get_frontal_face_detector`) searches that image. With `detect_every` k > 1 the detector
runs only on every k-th frame, and the frames between take the last detected box moved and scaled
with the previous frame's landmarks; after a frame without a face the detector runs on every
frame until it finds one again. The face box is scaled back to frame
pixels and the 68-point shape predictor runs on the full-resolution grayscale frame, so
landmark precision does not depend on `detection_size`. The first detected face is the largest
one, and later frames take the face whose box centre is nearest the previous one. Short runs of
frames without a face are filled by `fill_gaps`, and a longer run makes the track invalid.

The shape predictor is `shape_predictor_68_face_landmarks.dat` from the face-recognition-models
package. dlib returns integer pixel positions, so landmarks are quantised to whole pixels.

Measured with the defaults on the first 5 synthetic 128x128 videos of this repository
(`work/synthetic/videos`, 513 frames, ground truth in `work/synthetic/landmarks`) on a 2-core
CPU: the face was found in every frame and the mean landmark error was 0.082 inter-ocular
distances (0.033 at the lip corners). Tracking took about 10 ms per frame, decoding included.

NOTE: dlib's frontal detector misses faces smaller than about 80 pixels in the detection image
(checked on scikit-image's `astronaut` portrait, whose face was found down to a 72-pixel box).
At the default `detection_size` of 256 and 1920x1080 video that is a face about 340 pixels
tall. For smaller faces raise `detection_size` or `upsample`, each of which costs time.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import numbers
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import pandas as pd

from siamlib.landmarks import NUM_LANDMARKS
from siamlib.video.decode import VideoReader, VideoReadError
from siamlib.video.parallel import run_tasks, write_npz_atomic

__all__ = [
    "DlibTracker",
    "FaceTrack",
    "FilledTrack",
    "TrackerSettings",
    "fill_gaps",
    "load_track",
    "predictor_path",
    "save_track",
    "track_is_current",
    "track_videos",
    "undetected_runs",
]

logger = logging.getLogger(__name__)

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
MODELS_PACKAGE = "face_recognition_models"

DEFAULT_DETECTION_SIZE = 256
DEFAULT_UPSAMPLE = 0
DEFAULT_MAX_GAP_S = 0.2
DEFAULT_DETECT_EVERY = 1

TRACK_FORMAT_VERSION = 1
"""Version of the track file layout. A track file with another version is recomputed."""

LANDMARK_SOURCE = "dlib"
TRACKS_FILE = "tracks.csv"
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
SUMMARY_COLUMNS = (
    "video", "track_path", "num_frames", "fps", "detected_fraction", "longest_gap_s",
    "valid", "reason", "status",
)

# Durations are compared with this slack, so that a run lasting exactly max_gap_s counts as short
# even when max_gap_s carries rounding error, such as 5 frames at 25 fps against 0.7 - 0.5.
_DURATION_TOLERANCE_S = 1e-9


def _models_dir() -> Path | None:
    """Find the folder of the face-recognition-models package without importing it.

    Importing the package runs its `__init__`, which needs `pkg_resources`, so only its
    location is looked up.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def predictor_path() -> Path:
    """Locate dlib's 68-point shape predictor file in the face-recognition-models package.

    Returns:
        Path of `shape_predictor_68_face_landmarks.dat`.

    Raises:
        FileNotFoundError: If the package is not installed or lacks the file.
    """
    package_dir = _models_dir()
    if package_dir is None:
        raise FileNotFoundError(
            f"the {MODELS_PACKAGE} package is not installed, so dlib's shape predictor "
            f"{PREDICTOR_FILE} is missing. Install the pinned requirements with `make venv`."
        )
    path = package_dir / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib's shape predictor {path} not found. Install the pinned requirements with "
            f"`make venv`."
        )
    return path


@functools.cache
def _load_predictor(path: str) -> dlib.shape_predictor:
    # Loading the 100 MB model takes about half a second, so the trackers of a process share it.
    return dlib.shape_predictor(path)


@dataclass(frozen=True)
class TrackerSettings:
    """Settings that determine a track. A track file made with other settings is recomputed.

    Attributes:
        detection_size: Shorter side in pixels of the grayscale image the face detector searches.
        upsample: Times dlib's detector doubles the detection image before searching (0 or
            more). Each step finds faces half as large and costs about four times the time.
        max_gap_s: Maximum duration in seconds of a run of frames without a face that is
            filled by interpolation. A longer run makes the track invalid.
        detect_every: Run the face detector on every k-th frame (1: every frame) and carry
            the box with the landmarks in between. Detection is most of the tracking time, so
            k = 5 tracks a 1080p video about twice as fast.
    """

    detection_size: int = DEFAULT_DETECTION_SIZE
    upsample: int = DEFAULT_UPSAMPLE
    max_gap_s: float = DEFAULT_MAX_GAP_S
    detect_every: int = DEFAULT_DETECT_EVERY

    def __post_init__(self) -> None:
        for name in ("detection_size", "upsample", "detect_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.detection_size < 1:
            raise ValueError(f"detection_size must be >= 1 pixel, got {self.detection_size}")
        if self.upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {self.upsample}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1 frame, got {self.detect_every}")
        _check_max_gap(self.max_gap_s)
        object.__setattr__(self, "detect_every", int(self.detect_every))
        object.__setattr__(self, "detection_size", int(self.detection_size))
        object.__setattr__(self, "upsample", int(self.upsample))
        object.__setattr__(self, "max_gap_s", float(self.max_gap_s))


def _check_max_gap(max_gap_s: object) -> None:
    if (isinstance(max_gap_s, bool) or not isinstance(max_gap_s, numbers.Real)
            or not math.isfinite(max_gap_s) or max_gap_s < 0):
        raise ValueError(f"max_gap_s must be a finite number of seconds >= 0, got {max_gap_s!r}")


def undetected_runs(detected: np.ndarray) -> list[tuple[int, int]]:
    """List the runs of consecutive frames without a detection.

    Args:
        detected: bool array of shape (N,).

    Returns:
        (first frame, number of frames) of each run, in frame order.
    """
    missing = ~np.asarray(detected, dtype=bool)  # (N,)
    edges = np.diff(np.concatenate([[False], missing, [False]]).astype(np.int8))  # (N + 1,)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(start), int(stop - start)) for start, stop in zip(starts, stops)]


@dataclass
class FilledTrack:
    """A landmark track after gap filling.

    Attributes:
        landmarks: float32 array (N, 68, 2). Detected frames are unchanged, and NaN remains
            only in runs too long to fill, so a valid track has no NaN.
        valid: Whether every frame has landmarks.
        reason: Why the track is invalid, or "" when it is valid.
    """

    landmarks: np.ndarray
    valid: bool
    reason: str


def fill_gaps(
    landmarks: np.ndarray,
    detected: np.ndarray,
    fps: float,
    max_gap_s: float,
) -> FilledTrack:
    """Fill short runs of frames without a detected face and judge whether the track is usable.

    A run of L undetected frames lasts L / fps seconds. A run no longer than max_gap_s between
    two detected frames is filled by linear interpolation between them. A run no longer than
    max_gap_s at the start or end of the video takes the landmarks of the nearest detected
    frame. Any longer run stays NaN and makes the track invalid, and so does a video without
    any detection.

    Args:
        landmarks: float array of shape (N, 68, 2). Values at undetected frames are ignored.
        detected: bool array of shape (N,), True where a face was found.
        fps: Frames per second, positive.
        max_gap_s: Maximum duration in seconds of a run that is filled, >= 0.

    Returns:
        The filled landmarks, whether the track is valid, and the reason when it is not, such
        as "no face in 14 consecutive frames (0.56 s) from frame 20; the limit is 0.20 s".

    Raises:
        ValueError: If the shapes disagree, N is 0, fps or max_gap_s is invalid, or a detected
            frame has non-finite landmarks.
    """
    points = np.asarray(landmarks, dtype=np.float32)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or len(points) == 0:
        raise ValueError(f"landmarks must have shape (N, {NUM_LANDMARKS}, 2) with N >= 1, "
                         f"got {points.shape}")
    detected = np.asarray(detected)
    if detected.dtype != bool or detected.shape != (len(points),):
        raise ValueError(f"detected must be a bool array of shape ({len(points)},), "
                         f"got {detected.dtype} {detected.shape}")
    if (isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps)
            or fps <= 0):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    _check_max_gap(max_gap_s)
    if not np.isfinite(points[detected]).all():
        raise ValueError("landmarks must be finite at every detected frame, got NaN or "
                         "infinite values")

    num_frames = len(points)
    filled = np.full_like(points, np.nan)  # (N, 68, 2)
    filled[detected] = points[detected]
    if not detected.any():
        return FilledTrack(filled, False, f"no face detected in any of {num_frames} frames")

    detected_frames = np.flatnonzero(detected)
    too_long: list[tuple[int, int]] = []
    for start, length in undetected_runs(detected):
        if length / fps > max_gap_s + _DURATION_TOLERANCE_S:
            too_long.append((start, length))
            continue
        stop = start + length
        if start == 0:
            filled[:stop] = points[stop]
        elif stop == num_frames:
            filled[start:] = points[start - 1]
        else:
            before, after = points[start - 1], points[stop]  # (68, 2) each
            weights = (np.arange(1, length + 1) / (length + 1)).astype(np.float32)  # (L,)
            filled[start:stop] = before + weights[:, None, None] * (after - before)
    assert np.isfinite(filled[detected_frames]).all(), "gap filling changed a detected frame"

    if not too_long:
        return FilledTrack(filled, True, "")
    start, length = max(too_long, key=lambda run: run[1])
    reason = (f"no face in {length} consecutive frames ({length / fps:.2f} s) from frame "
              f"{start}; the limit is {max_gap_s:.2f} s")
    if len(too_long) > 1:
        reason += f" ({len(too_long)} runs exceed it)"
    return FilledTrack(filled, False, reason)


@dataclass
class FaceTrack:
    """The landmark track of one video.

    Attributes:
        landmarks: float32 array (N, 68, 2) in frame pixels, gaps filled by `fill_gaps`. NaN
            only in frames of a run too long to fill, so a valid track has no NaN.
        detected: bool array (N,), True where the detector found a face in that frame.
        boxes: float32 array (N, 4), the chosen face box as (left, top, right, bottom) in frame
            pixels, NaN where no face was found.
        num_faces: int32 array (N,), faces found by the latest detector run at or before each
            frame (with `detect_every` > 1 the detector skips frames).
        fps: Frames per second of the video.
        valid: Whether every frame has landmarks.
        reason: Why the track is invalid, or "" when it is valid.
        settings: The tracker settings that made the track.
    """

    landmarks: np.ndarray
    detected: np.ndarray
    boxes: np.ndarray
    num_faces: np.ndarray
    fps: float
    valid: bool
    reason: str
    settings: TrackerSettings

    @property
    def num_frames(self) -> int:
        """Number of decoded frames N."""
        return len(self.detected)

    @property
    def detected_fraction(self) -> float:
        """Fraction of frames in which a face was found."""
        return float(self.detected.mean()) if self.num_frames else 0.0

    @property
    def longest_gap_frames(self) -> int:
        """Maximum number of consecutive frames without a detected face, anywhere in the video."""
        return max((length for _, length in undetected_runs(self.detected)), default=0)

    @property
    def longest_gap_s(self) -> float:
        """Duration in seconds of `longest_gap_frames`."""
        return self.longest_gap_frames / self.fps


def _box_centre(box: dlib.rectangle) -> np.ndarray:
    return np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2])


def _carried_box(
    detected_box: dlib.rectangle, detected_points: np.ndarray, points: np.ndarray
) -> dlib.rectangle:
    """Move and scale a detected box with the landmarks, from the detection to a later frame.

    Args:
        detected_box: The box the detector found.
        detected_points: float array (68, 2), the landmarks fitted inside that box.
        points: float array (68, 2), the landmarks of the frame before the one to fit.

    Returns:
        The box for the next frame: the detected box, scaled by the ratio of the landmarks'
        spread and shifted with their centroid.
    """
    centre = detected_points.mean(axis=0)  # (2,)
    spread = float(np.sqrt(((detected_points - centre) ** 2).sum(axis=1).mean()))
    new_centre = points.mean(axis=0)  # (2,)
    new_spread = float(np.sqrt(((points - new_centre) ** 2).sum(axis=1).mean()))
    scale = new_spread / spread if spread > 0 else 1.0
    box_centre = _box_centre(detected_box)
    half_width = scale * detected_box.width() / 2
    half_height = scale * detected_box.height() / 2
    centre_x, centre_y = new_centre + scale * (box_centre - centre)
    return dlib.rectangle(
        round(centre_x - half_width), round(centre_y - half_height),
        round(centre_x + half_width), round(centre_y + half_height),
    )


def _choose_face(faces: list[dlib.rectangle], previous_centre: np.ndarray | None) -> dlib.rectangle:
    """Pick the largest face, or the one whose centre is nearest the previous face's centre."""
    if previous_centre is None:
        return max(faces, key=lambda face: face.area())
    distances = [np.linalg.norm(_box_centre(face) - previous_centre) for face in faces]
    return faces[int(np.argmin(distances))]


class DlibTracker:
    """Detect one face per frame and fit dlib's 68-point shape predictor to it.

    The detector and predictor are dlib objects, which cannot be pickled, so each process
    builds its own tracker.

    Args:
        detection_size: Shorter side in pixels of the image the face detector searches.
        upsample: Times dlib's detector doubles the detection image before searching.
        max_gap_s: Maximum duration in seconds of a run without a face that is filled by
            interpolation.
        detect_every: Run the detector on every k-th frame (see `TrackerSettings`).

    Raises:
        ValueError: If a setting is invalid (the message names it).
        FileNotFoundError: If the shape predictor file is missing.
    """

    def __init__(
        self,
        detection_size: int = DEFAULT_DETECTION_SIZE,
        upsample: int = DEFAULT_UPSAMPLE,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        detect_every: int = DEFAULT_DETECT_EVERY,
    ) -> None:
        self.settings = TrackerSettings(detection_size, upsample, max_gap_s, detect_every)
        self._predictor = _load_predictor(str(predictor_path()))
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, gray: np.ndarray) -> list[dlib.rectangle]:
        """Find frontal faces in a grayscale frame.

        Args:
            gray: uint8 array of shape (H, W).

        Returns:
            Face boxes in frame pixels, in the detector's order.
        """
        scale = self.settings.detection_size / min(gray.shape)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation)
        found = self._detector(small, self.settings.upsample)
        return [
            dlib.rectangle(
                round(box.left() / scale), round(box.top() / scale),
                round(box.right() / scale), round(box.bottom() / scale),
            )
            for box in found
        ]

    def fit_landmarks(self, gray: np.ndarray, box: dlib.rectangle) -> np.ndarray:
        """Fit the 68-point shape predictor inside a face box.

        Args:
            gray: uint8 array of shape (H, W), C-contiguous.
            box: Face box in frame pixels.

        Returns:
            float32 array of shape (68, 2), (x, y) in frame pixels.
        """
        shape = self._predictor(gray, box)
        return np.array([[part.x, part.y] for part in shape.parts()], dtype=np.float32)

    def track_frames(self, frames: Iterable[np.ndarray], fps: float) -> FaceTrack:
        """Track the landmarks of one face through a sequence of frames.

        Args:
            frames: uint8 frames, RGB of shape (H, W, 3) or grayscale of shape (H, W), for
                example a `VideoReader` or its `iter_selected(None, color="gray")` frames
                without the indices.
            fps: Frames per second, used to turn `max_gap_s` into frames.

        Returns:
            The track, filled and judged by `fill_gaps`.

        Raises:
            ValueError: If there are no frames.
        """
        landmarks: list[np.ndarray] = []
        boxes: list[np.ndarray] = []
        num_faces: list[int] = []
        previous_centre: np.ndarray | None = None
        previous_points: np.ndarray | None = None  # (68, 2) landmarks of the previous frame
        reference: tuple[dlib.rectangle, np.ndarray] | None = None  # last detection and its points
        since_detection = 0
        latest_count = 0
        carried: list[int] = []  # frames fitted in a carried box since the last detection
        for frame in frames:
            if frame.ndim == 3:
                gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # (H, W), contiguous
            else:
                gray = np.ascontiguousarray(frame)  # (H, W)
            carry = (previous_points is not None and reference is not None
                     and since_detection < self.settings.detect_every)
            if carry:
                box = _carried_box(reference[0], reference[1], previous_points)
                since_detection += 1
                carried.append(len(landmarks))
            else:
                faces = self.detect(gray)
                latest_count = len(faces)
                if not faces:
                    # The face may have left during the carried frames, so they count as
                    # undetected too and are filled or masked like any other gap.
                    for index in carried:
                        num_faces[index] = 0
                        landmarks[index] = np.full((NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
                        boxes[index] = np.full(4, np.nan, dtype=np.float32)
                    carried.clear()
                    num_faces.append(0)
                    landmarks.append(np.full((NUM_LANDMARKS, 2), np.nan, dtype=np.float32))
                    boxes.append(np.full(4, np.nan, dtype=np.float32))
                    previous_points = None
                    continue
                box = _choose_face(faces, previous_centre)
                since_detection = 1
                carried.clear()
            previous_centre = _box_centre(box)
            points = self.fit_landmarks(gray, box)  # (68, 2)
            if not carry:
                reference = (box, points)
            previous_points = points
            num_faces.append(latest_count)
            landmarks.append(points)
            boxes.append(np.array([box.left(), box.top(), box.right(), box.bottom()],
                                  dtype=np.float32))

        if not landmarks:
            raise ValueError("frames is empty, so there is no face to track")
        detected = np.array([np.isfinite(points).all() for points in landmarks])  # (N,)
        filled = fill_gaps(np.stack(landmarks), detected, fps, self.settings.max_gap_s)
        return FaceTrack(
            landmarks=filled.landmarks,
            detected=detected,
            boxes=np.stack(boxes),  # (N, 4)
            num_faces=np.array(num_faces, dtype=np.int32),
            fps=float(fps),
            valid=filled.valid,
            reason=filled.reason,
            settings=self.settings,
        )

    def track(self, video_path: str | os.PathLike[str]) -> FaceTrack:
        """Decode a video and track the landmarks of one face through every frame.

        Args:
            video_path: The video file.

        Returns:
            The track, with one entry per decoded frame.

        Raises:
            VideoReadError: If the video is missing or does not decode. The message names it.
        """
        with VideoReader(video_path) as reader:
            frames = (gray for _, gray in reader.iter_selected(None, color="gray"))
            return self.track_frames(frames, reader.fps)


_TRACK_ARRAYS = (
    "landmarks", "detected", "boxes", "num_faces", "fps", "valid", "reason", "detection_size",
    "upsample", "max_gap_s", "format_version", "landmark_source",
)


def save_track(path: str | os.PathLike[str], track: FaceTrack) -> None:
    """Write a track to an `.npz` file atomically.

    The arrays go to a temporary file in the same folder, which then replaces path, so readers
    never see a half-written file. The archive contains:

        landmarks        float32 (N, 68, 2), frame pixels, NaN only in an invalid track
        detected         bool (N,)
        boxes            float32 (N, 4), (left, top, right, bottom), NaN where not detected
        num_faces        int32 (N,)
        fps              float64 scalar
        valid            bool scalar
        reason           str scalar, "" when valid
        detection_size   int64 scalar
        upsample         int64 scalar
        max_gap_s        float64 scalar
        detect_every     int64 scalar (files without it were made with 1)
        format_version   int64 scalar, `TRACK_FORMAT_VERSION`
        landmark_source  str scalar, "dlib"

    Args:
        path: Output file in an existing folder.
        track: The track to write.
    """
    write_npz_atomic(
        path,
        landmarks=track.landmarks.astype(np.float32),
        detected=track.detected.astype(bool),
        boxes=track.boxes.astype(np.float32),
        num_faces=track.num_faces.astype(np.int32),
        fps=np.float64(track.fps),
        valid=np.bool_(track.valid),
        reason=np.str_(track.reason),
        detection_size=np.int64(track.settings.detection_size),
        upsample=np.int64(track.settings.upsample),
        max_gap_s=np.float64(track.settings.max_gap_s),
        detect_every=np.int64(track.settings.detect_every),
        format_version=np.int64(TRACK_FORMAT_VERSION),
        landmark_source=np.str_(LANDMARK_SOURCE),
    )


def load_track(path: str | os.PathLike[str]) -> FaceTrack:
    """Read a track file written by `save_track`.

    Args:
        path: The `.npz` file.

    Returns:
        The track.

    Raises:
        OSError: If the file cannot be read.
        ValueError: If the file is not a track file of the current layout, lacks an array or
            its arrays disagree in length (the message names the file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError) as error:
        # np.load raises ValueError for a file that is neither .npy nor .npz.
        raise ValueError(f"track file {path} is not a valid .npz archive ({error})") from error

    version = int(arrays["format_version"]) if "format_version" in arrays else None
    if version != TRACK_FORMAT_VERSION:
        raise ValueError(f"track file {path} has format version {version}, expected "
                         f"{TRACK_FORMAT_VERSION}. Track the video again.")
    missing = [name for name in _TRACK_ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"track file {path} lacks the arrays {missing}. Track the video again.")
    landmarks = arrays["landmarks"]
    detected = arrays["detected"]
    if landmarks.shape[1:] != (NUM_LANDMARKS, 2) or detected.shape != (len(landmarks),):
        raise ValueError(f"track file {path} is inconsistent: landmarks {landmarks.shape} and "
                         f"detected {detected.shape} must be (N, 68, 2) and (N,)")
    settings = TrackerSettings(
        int(arrays["detection_size"]), int(arrays["upsample"]), float(arrays["max_gap_s"]),
        int(arrays["detect_every"]) if "detect_every" in arrays else DEFAULT_DETECT_EVERY,
    )
    return FaceTrack(
        landmarks=landmarks,
        detected=detected.astype(bool),
        boxes=arrays["boxes"],
        num_faces=arrays["num_faces"],
        fps=float(arrays["fps"]),
        valid=bool(arrays["valid"]),
        reason=str(arrays["reason"]),
        settings=settings,
    )


def _try_load_track(path: Path) -> FaceTrack | None:
    """Load a track file, or return None (with a warning) when it is unreadable."""
    try:
        return load_track(path)
    except (OSError, ValueError) as error:
        logger.warning("Track file %s is unreadable and will be recomputed: %s", path, error)
        return None


def track_is_current(path: str | os.PathLike[str], settings: TrackerSettings) -> bool:
    """Check whether a track file exists, loads and was made with the given settings.

    NOTE: the video itself is not compared, so a video replaced under the same name keeps its
    old track. Delete the track file, or the folder, after changing videos.

    Args:
        path: The `.npz` track file.
        settings: The settings a current file must have been made with.

    Returns:
        True when the file can be reused.
    """
    path = Path(path)
    if not path.is_file():
        return False
    track = _try_load_track(path)
    return track is not None and track.settings == settings


def _summary_row(video: str, track_path: str, track: FaceTrack) -> dict[str, Any]:
    return {
        "video": video,
        "track_path": track_path,
        "num_frames": track.num_frames,
        "fps": track.fps,
        "detected_fraction": track.detected_fraction,
        "longest_gap_s": track.longest_gap_s,
        "valid": track.valid,
        "reason": track.reason,
        "status": STATUS_OK,
    }


def _skipped_row(video: str, reason: str) -> dict[str, Any]:
    return {
        "video": video,
        "track_path": "",
        "num_frames": 0,
        "fps": float("nan"),
        "detected_fraction": 0.0,
        "longest_gap_s": float("nan"),
        "valid": False,
        "reason": reason,
        "status": STATUS_SKIPPED,
    }


@functools.cache
def _tracker_for(settings: TrackerSettings) -> DlibTracker:
    # One tracker per process and settings, because dlib objects cannot be sent to workers.
    return DlibTracker(settings.detection_size, settings.upsample, settings.max_gap_s,
                       settings.detect_every)


def _track_one(task: dict[str, Any]) -> dict[str, Any]:
    """Track one video and write its track file, in a worker process.

    A video that does not decode becomes a skipped row, and any other exception propagates.
    """
    tracker = _tracker_for(task["settings"])
    try:
        track = tracker.track(task["video_path"])
    except VideoReadError as error:
        Path(task["track_path"]).unlink(missing_ok=True)
        return {"position": task["position"], **_skipped_row(task["video"], str(error))}
    save_track(task["track_path"], track)
    row = _summary_row(task["video"], task["track_path"], track)
    return {"position": task["position"], **row}


def _check_videos(videos: pd.DataFrame) -> None:
    if not isinstance(videos, pd.DataFrame):
        raise ValueError(f"videos must be a pandas DataFrame, got {type(videos).__name__}")
    missing = [column for column in ("video", "path") if column not in videos.columns]
    if missing:
        raise ValueError(f"videos must have columns 'video' and 'path', missing {missing}")
    stems = videos["video"].map(lambda name: Path(str(name)).stem)
    duplicates = sorted(stems[stems.duplicated()].unique())
    if duplicates:
        raise ValueError(f"videos 'video' must have unique file stems because tracks are "
                         f"named by stem, got duplicates {duplicates[:5]}")


def _check_workers(workers: int | None) -> None:
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")


def _resolve_workers(workers: int | None, num_tasks: int) -> int:
    requested = (os.cpu_count() or 1) if workers is None else int(workers)
    return max(1, min(requested, num_tasks))


def track_videos(
    videos: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    detection_size: int = DEFAULT_DETECTION_SIZE,
    upsample: int = DEFAULT_UPSAMPLE,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    workers: int | None = None,
    progress: bool = True,
    detect_every: int = DEFAULT_DETECT_EVERY,
) -> pd.DataFrame:
    """Track the face landmarks of every video in a table and write one track file each.

    Each video gets `out_dir/<video stem>.npz` (layout in `save_track`). A track file that
    exists, loads and was made with the same settings is reused without decoding the video. A
    video that is missing or does not decode is logged and recorded with status "skipped" and
    the error, which names the file, and the other videos go on. The summary table is also
    written to `out_dir/tracks.csv` under a temporary name and then renamed into place.

    Args:
        videos: Table with the columns video (file name, unique stems) and path (video file).
        out_dir: Folder for the track files and tracks.csv, created if missing.
        detection_size: Shorter side in pixels of the image the face detector searches.
        upsample: Times dlib's detector doubles the detection image before searching.
        max_gap_s: Maximum duration in seconds of a run without a face that is filled by
            interpolation.
        workers: Number of worker processes. None uses one per CPU core, and 1 runs every video
            in this process. Workers are started with "spawn", which imports the caller's main
            module again, so a script that calls this with more than one worker must guard its
            entry point with `if __name__ == "__main__":`. Notebooks need no guard.
        progress: Whether to show a tqdm progress bar over the videos to track.
        detect_every: Run the detector on every k-th frame (see `TrackerSettings`).

    Returns:
        One row per video in table order, with the columns video, track_path, num_frames, fps,
        detected_fraction, longest_gap_s, valid, reason and status ("ok" for a track made now
        or reused, "skipped" for a video that did not decode). A reused track gives the same
        row as a new one, so tracks.csv does not change between reruns.

    Raises:
        ValueError: If an argument is invalid (the message names it).
        FileNotFoundError: If dlib's shape predictor file is missing.
    """
    _check_videos(videos)
    _check_workers(workers)
    settings = TrackerSettings(detection_size, upsample, max_gap_s, detect_every)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any] | None] = []
    tasks: list[dict[str, Any]] = []
    for position, (video, video_path) in enumerate(zip(videos["video"], videos["path"])):
        track_path = out_dir / f"{Path(str(video)).stem}.npz"
        existing = _try_load_track(track_path) if track_path.is_file() else None
        if existing is not None and existing.settings == settings:
            rows.append(_summary_row(str(video), str(track_path), existing))
            continue
        rows.append(None)
        tasks.append({
            "position": position,
            "video": str(video),
            "video_path": str(video_path),
            "track_path": str(track_path),
            "settings": settings,
        })

    logger.info("Tracking faces in %d videos into %s (%d current track files reused)",
                len(videos), out_dir, len(videos) - len(tasks))
    if tasks:
        # Fail here, before any worker starts, when the model file is missing.
        predictor_path()
        workers = _resolve_workers(workers, len(tasks))
        logger.debug("Using %d worker processes", workers)
        for result in run_tasks(_track_one, tasks, workers, progress, "dlib tracks"):
            rows[result.pop("position")] = result

    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for row in summary.itertuples():
        if row.status == STATUS_SKIPPED:
            logger.warning("Skipped video %s: %s", row.video, row.reason)
    num_invalid = sum(1 for row in rows if row["status"] == STATUS_OK and not row["valid"])
    if num_invalid:
        logger.warning("%d of %d tracks are invalid (see the reason column of %s)",
                       num_invalid, len(summary), out_dir / TRACKS_FILE)

    temporary = out_dir / f".{TRACKS_FILE}.tmp"
    summary.to_csv(temporary, index=False)
    os.replace(temporary, out_dir / TRACKS_FILE)
    return summary
