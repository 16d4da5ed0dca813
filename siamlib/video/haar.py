"""Estimate an eye track from face boxes found by OpenCV's Haar cascade.

This is the fallback for videos without a landmark file. It finds faces with the frontal-face
cascade bundled with opencv-python (`haarcascade_frontalface_default.xml` in
`cv2.data.haarcascades`), keeps the biggest face in each frame and places the eye centres at fixed
fractions of that box. Frames without a detection are filled by linear interpolation over time;
temporal smoothing happens later in `siamlib.video.align`.

NOTE: fixed eye positions in a face box ignore head roll and the box jitters more than a landmark
tracker, so alignment from this track is coarse. A real 68-point landmark tracker will replace it.

Shapes: N frames, H and W frame height and width. Eye tracks are (N, 2, 2) with right eye then
left eye, each (x, y) in frame pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from siamlib.landmarks import LEFT_EYE, NUM_LANDMARKS, RIGHT_EYE

CASCADE_FILE = "haarcascade_frontalface_default.xml"

EYE_FRACTIONS = np.array([[0.30, 0.38], [0.70, 0.38]])
"""Eye centres (x, y) as fractions of the face box width and height, right eye then left eye.

NOTE: checked by eye on one frontal portrait (scikit-image's `astronaut`), where they land on
the pupils, but not fitted to annotated data.
"""

DETECTION_SIDE = 320
"""Frames whose longer side exceeds this many pixels are shrunk to it before detection."""

MIN_FACE_FRACTION = 0.1
"""Smallest face side searched, as a fraction of the shorter side of the detection image."""


@functools.cache
def _cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / CASCADE_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"failed to load the Haar cascade {path}. Reinstall opencv-python.")
    return cascade


def detect_face(frame: np.ndarray) -> np.ndarray | None:
    """Find the biggest frontal face in one frame.

    Args:
        frame: uint8 RGB array of shape (H, W, 3).

    Returns:
        float64 array [x, y, width, height] of the face box in frame pixels, or None when no face
        is found.
    """
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # (H, W)
    scale = min(1.0, DETECTION_SIDE / max(gray.shape))
    if scale < 1.0:
        size = (round(gray.shape[1] * scale), round(gray.shape[0] * scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    min_side = max(1, round(MIN_FACE_FRACTION * min(gray.shape)))
    boxes = _cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(boxes) == 0:
        return None
    boxes = np.asarray(boxes, dtype=np.float64)  # (faces, 4)
    biggest = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
    return biggest / scale


def eyes_from_box(box: np.ndarray) -> np.ndarray:
    """Place the eye centres at `EYE_FRACTIONS` of a face box.

    Args:
        box: [x, y, width, height] in frame pixels.

    Returns:
        float64 array of shape (2, 2): right eye then left eye, each (x, y).
    """
    x, y, width, height = np.asarray(box, dtype=np.float64)
    return np.array([x, y]) + EYE_FRACTIONS * np.array([width, height])  # (2, 2)


def fill_gaps(track: np.ndarray) -> np.ndarray:
    """Fill NaN frames of a track by linear interpolation over time.

    Frames before the first or after the last valid frame take that frame's value. A frame
    counts as valid only when all its values are finite.

    Args:
        track: float array of shape (N, ...) with NaN in frames without a measurement.

    Returns:
        float64 array of the same shape without NaN.

    Raises:
        ValueError: If no frame is valid.
    """
    values = np.asarray(track, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1)  # (N, D)
    valid = np.isfinite(flat).all(axis=1)  # (N,)
    if not valid.any():
        raise ValueError(f"track has no valid frame among its {values.shape[0]} frames")
    frames = np.arange(values.shape[0])
    filled = np.empty_like(flat)
    for column in range(flat.shape[1]):
        filled[:, column] = np.interp(frames, frames[valid], flat[valid, column])
    return filled.reshape(values.shape)  # (N, ...)


def track_eyes(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Detect the face in every frame and turn the boxes into an eye track.

    Args:
        frames: uint8 RGB frames of shape (H, W, 3), for example a `VideoReader`.

    Returns:
        eyes: float64 array of shape (N, 2, 2), with gaps filled by interpolation.
        detected: bool array of shape (N,), True in the frames where a face was found.

    Raises:
        ValueError: If there are no frames or no face is found in any frame.
    """
    eyes = []
    for frame in frames:
        box = detect_face(frame)
        eyes.append(np.full((2, 2), np.nan) if box is None else eyes_from_box(box))
    if not eyes:
        raise ValueError("frames is empty, so there is no face to track")
    track = np.stack(eyes)  # (N, 2, 2)
    detected = np.isfinite(track).all(axis=(1, 2))  # (N,)
    if not detected.any():
        raise ValueError(f"no face detected in any of {len(eyes)} frames")
    return fill_gaps(track), detected


def landmarks_from_eyes(eyes: np.ndarray) -> np.ndarray:
    """Build a 68-point landmark array that carries only the eye centres.

    All six points of each eye are set to that eye's centre, so `siamlib.landmarks.eye_centres`
    returns the centres unchanged. Every other point is NaN, because a box-based tracker does not
    know where the mouth, brows or jaw are.

    Args:
        eyes: Array of shape (N, 2, 2), right eye then left eye.

    Returns:
        float32 array of shape (N, 68, 2).
    """
    eyes = np.asarray(eyes, dtype=np.float32)
    landmarks = np.full((eyes.shape[0], NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
    landmarks[:, RIGHT_EYE] = eyes[:, None, 0]  # (N, 1, 2) broadcast over the 6 eye points
    landmarks[:, LEFT_EYE] = eyes[:, None, 1]  # (N, 1, 2) broadcast over the 6 eye points
    return landmarks
