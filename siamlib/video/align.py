"""Align face video frames by a similarity transform that puts the eye centres at fixed positions.

Shapes: N frames, H and W frame height and width, S the side of the square aligned crop, 68
landmarks in the iBUG scheme (see `siamlib.landmarks`).

Coordinates follow OpenCV: (x, y) in pixels with integer values at pixel centres, so pixel (0, 0)
covers [-0.5, 0.5] x [-0.5, 0.5]. In an S x S crop the canonical eye centres are

    right eye (image left):  x = (0.5 - eye_distance / 2) * S - 0.5,  y = eye_y * S - 0.5
    left eye (image right):  x = (0.5 + eye_distance / 2) * S - 0.5,  y = eye_y * S - 0.5

so the eyes sit symmetrically about the crop's vertical centre line, eye_distance * S pixels apart.

Landmark trackers jitter by a pixel or two from frame to frame, and an alignment that followed that
jitter would shake the whole crop. `align_frames` therefore smooths the eye track over time with a
centred moving average (`smooth_track`) before computing the per-frame transforms.
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np

from siamlib.landmarks import NUM_LANDMARKS, eye_centres

DEFAULT_EYE_DISTANCE = 0.35
"""Distance between the canonical eye centres as a fraction of the crop side."""

DEFAULT_EYE_Y = 0.4
"""Height of the canonical eye line as a fraction of the crop side, from the top."""

DEFAULT_SMOOTHING_WINDOW = 5
"""Frames in the centred moving average over the eye track (0.2 s at 25 fps, 0.1 s at 50 fps)."""


def _check_window(window: int, name: str) -> None:
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {window!r}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"{name} must be a positive odd number of frames, got {window}")


def check_alignment_arguments(
    image_size: int, eye_distance: float, eye_y: float, smoothing_window: int
) -> None:
    """Check the alignment settings before any video is read.

    Raises:
        ValueError: If an argument is out of the range that `align_frames` documents.
    """
    _check_geometry(image_size, eye_distance, eye_y)
    _check_window(smoothing_window, "smoothing_window")


def _check_geometry(image_size: int, eye_distance: float, eye_y: float) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise ValueError(f"image_size must be an integer, got {image_size!r}")
    if image_size < 2:
        raise ValueError(f"image_size must be >= 2, got {image_size}")
    if not 0 < eye_distance < 1:
        raise ValueError(f"eye_distance must be in (0, 1) as a fraction of image_size, "
                         f"got {eye_distance!r}")
    if not 0 < eye_y < 1:
        raise ValueError(f"eye_y must be in (0, 1) as a fraction of image_size, got {eye_y!r}")


def canonical_eye_positions(
    image_size: int,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
) -> np.ndarray:
    """Compute where the eye centres land in the aligned crop.

    Args:
        image_size: Side S of the square crop in pixels.
        eye_distance: Distance between the eye centres as a fraction of S, in (0, 1).
        eye_y: Height of the eye line as a fraction of S from the top, in (0, 1).

    Returns:
        float64 array of shape (2, 2): right eye then left eye, each (x, y) in crop pixels.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check_geometry(image_size, eye_distance, eye_y)
    y = eye_y * image_size - 0.5
    right_x = (0.5 - eye_distance / 2) * image_size - 0.5
    left_x = (0.5 + eye_distance / 2) * image_size - 0.5
    return np.array([[right_x, y], [left_x, y]], dtype=np.float64)


def similarity_from_eyes(
    right_eye: np.ndarray,
    left_eye: np.ndarray,
    image_size: int,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
) -> np.ndarray:
    """Compute the similarity transform that maps the eye centres to their canonical positions.

    A similarity transform (rotation, uniform scale, translation) is fixed by two point pairs.
    With points as complex numbers p and the transform as q = z * p + t, the scale-rotation is
    z = (q_left - q_right) / (p_left - p_right) and the translation t = q_right - z * p_right.

    Args:
        right_eye: Right eye centre (subject's right, image left), shape (..., 2) as (x, y).
        left_eye: Left eye centre, same shape as right_eye.
        image_size: Side S of the square crop in pixels.
        eye_distance: Distance between the canonical eye centres as a fraction of S.
        eye_y: Height of the canonical eye line as a fraction of S from the top.

    Returns:
        float64 array of shape (..., 2, 3): matrices in the form `cv2.warpAffine` takes, mapping
        frame coordinates to crop coordinates.

    Raises:
        ValueError: If the shapes differ or are not (..., 2), a coordinate is not finite, the two
            eyes coincide, or a geometry argument is out of range.
    """
    right = np.asarray(right_eye, dtype=np.float64)
    left = np.asarray(left_eye, dtype=np.float64)
    if right.shape != left.shape or right.shape[-1:] != (2,):
        raise ValueError(f"right_eye and left_eye must have the same shape (..., 2), "
                         f"got {right.shape} and {left.shape}")
    if not (np.isfinite(right).all() and np.isfinite(left).all()):
        raise ValueError("right_eye and left_eye must be finite, got NaN or infinite values")
    target = canonical_eye_positions(image_size, eye_distance, eye_y)  # (2, 2)

    source_right = right[..., 0] + 1j * right[..., 1]  # (...)
    source_left = left[..., 0] + 1j * left[..., 1]  # (...)
    target_right = complex(*target[0])
    target_left = complex(*target[1])
    source_span = source_left - source_right  # (...)
    if np.any(np.abs(source_span) < 1e-9):
        raise ValueError("right_eye and left_eye must differ, got coincident eye centres")

    rotation_scale = (target_left - target_right) / source_span  # (...)
    translation = target_right - rotation_scale * source_right  # (...)

    matrix = np.empty(right.shape[:-1] + (2, 3), dtype=np.float64)
    matrix[..., 0, 0] = rotation_scale.real
    matrix[..., 0, 1] = -rotation_scale.imag
    matrix[..., 0, 2] = translation.real
    matrix[..., 1, 0] = rotation_scale.imag
    matrix[..., 1, 1] = rotation_scale.real
    matrix[..., 1, 2] = translation.imag
    return matrix


def smooth_track(track: np.ndarray, window: int = DEFAULT_SMOOTHING_WINDOW) -> np.ndarray:
    """Smooth a track along time with a centred moving average.

    Frame i becomes the mean of frames [i - window // 2, i + window // 2]. Near the ends the
    window shrinks to the frames that exist rather than padding, so a constant track stays
    exactly constant and the first and last frames are averaged over fewer neighbours.

    Args:
        track: Array of shape (N, ...) with time on the first axis.
        window: Odd number of frames in the average; 1 returns a float64 copy unchanged.

    Returns:
        float64 array with the shape of track.

    Raises:
        ValueError: If window is not a positive odd integer or track has no time axis.
    """
    _check_window(window, "window")
    values = np.asarray(track, dtype=np.float64)
    if values.ndim < 1 or values.shape[0] == 0:
        raise ValueError(f"track must have shape (N, ...) with N >= 1, got {values.shape}")

    half = window // 2
    num_frames = values.shape[0]
    cumulative = np.concatenate(
        [np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)], axis=0
    )  # (N + 1, ...)
    starts = np.clip(np.arange(num_frames) - half, 0, num_frames)  # (N,)
    stops = np.clip(np.arange(num_frames) + half + 1, 0, num_frames)  # (N,)
    counts = (stops - starts).reshape((num_frames,) + (1,) * (values.ndim - 1))  # (N, 1, ...)
    return (cumulative[stops] - cumulative[starts]) / counts


def smoothed_eye_track(
    landmarks: np.ndarray,
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
) -> np.ndarray:
    """Compute the eye centres of a landmark track and smooth them over time.

    Only the eye points (36-47) are used, so the other points may be NaN.

    Args:
        landmarks: float array of shape (N, 68, 2) in frame pixels.
        smoothing_window: Odd number of frames in the centred moving average (`smooth_track`).

    Returns:
        float64 array of shape (N, 2, 2): right eye then left eye, each (x, y).

    Raises:
        ValueError: If landmarks do not have shape (N, 68, 2) with N >= 1, an eye point is not
            finite, or smoothing_window is invalid.
    """
    points = np.asarray(landmarks)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or points.shape[0] == 0:
        raise ValueError(f"landmarks must have shape (N, {NUM_LANDMARKS}, 2) with N >= 1, "
                         f"got {points.shape}")
    eyes = eye_centres(points.astype(np.float64))  # (N, 2, 2)
    bad_frames = np.flatnonzero(~np.isfinite(eyes).all(axis=(1, 2)))
    if bad_frames.size:
        raise ValueError(f"landmarks must have finite eye points (36-47), got NaN or infinite "
                         f"values in frames {bad_frames[:10].tolist()}")
    return smooth_track(eyes, smoothing_window)  # (N, 2, 2)


def alignment_matrices(
    landmarks: np.ndarray,
    image_size: int,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
) -> np.ndarray:
    """Compute per-frame alignment matrices from a landmark track with a smoothed eye track.

    Args:
        landmarks: float array of shape (N, 68, 2) in frame pixels. Only the eye points 36-47
            must be finite.
        image_size: Side S of the square crop in pixels.
        eye_distance: Distance between the canonical eye centres as a fraction of S.
        eye_y: Height of the canonical eye line as a fraction of S from the top.
        smoothing_window: Odd number of frames in the moving average over the eye centres.

    Returns:
        float64 array of shape (N, 2, 3), one `cv2.warpAffine` matrix per frame.

    Raises:
        ValueError: If landmarks do not have shape (N, 68, 2) with N >= 1, an eye point is not
            finite, the eyes coincide in a frame, or another argument is out of range.
    """
    eyes = smoothed_eye_track(landmarks, smoothing_window)  # (N, 2, 2)
    return similarity_from_eyes(eyes[:, 0], eyes[:, 1], image_size, eye_distance, eye_y)


def transform_points(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply affine matrices to point sets, one matrix per leading index.

    Args:
        points: Array of shape (..., K, 2) as (x, y). NaN points stay NaN.
        matrices: Array of shape (..., 2, 3) with the same leading axes as points.

    Returns:
        float64 array of shape (..., K, 2).

    Raises:
        ValueError: If the shapes do not match.
    """
    points = np.asarray(points, dtype=np.float64)
    matrices = np.asarray(matrices, dtype=np.float64)
    if points.shape[-1:] != (2,) or matrices.shape[-2:] != (2, 3):
        raise ValueError(f"points must have shape (..., K, 2) and matrices (..., 2, 3), "
                         f"got {points.shape} and {matrices.shape}")
    if points.shape[:-2] != matrices.shape[:-2]:
        raise ValueError(f"points and matrices must share leading axes, "
                         f"got {points.shape} and {matrices.shape}")
    linear = matrices[..., :2]  # (..., 2, 2)
    offset = matrices[..., 2]  # (..., 2)
    return np.einsum("...ij,...kj->...ki", linear, points) + offset[..., None, :]


def warp_frame(frame: np.ndarray, matrix: np.ndarray, image_size: int) -> np.ndarray:
    """Warp one frame into an S x S crop with bilinear interpolation and replicated borders.

    Args:
        frame: uint8 array of shape (H, W, 3).
        matrix: float array of shape (2, 3) mapping frame coordinates to crop coordinates.
        image_size: Side S of the crop.

    Returns:
        uint8 array of shape (S, S, 3).
    """
    return cv2.warpAffine(
        frame,
        np.asarray(matrix, dtype=np.float64),
        (image_size, image_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def align_frames(
    frames: np.ndarray,
    landmarks: np.ndarray,
    image_size: int,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Align every frame so the smoothed eye centres sit at the canonical positions.

    Args:
        frames: uint8 array of shape (N, H, W, 3).
        landmarks: float array of shape (N, 68, 2) in frame pixels. Only the eye points 36-47
            must be finite.
        image_size: Side S of the square crop in pixels.
        eye_distance: Distance between the canonical eye centres as a fraction of S.
        eye_y: Height of the canonical eye line as a fraction of S from the top.
        smoothing_window: Odd number of frames in the centred moving average over the eye
            centres; 1 aligns each frame by its own eye centres.

    Returns:
        aligned_frames: uint8 array of shape (N, S, S, 3).
        aligned_landmarks: float32 array of shape (N, 68, 2) in crop pixels, transformed by the
            same matrices as the frames.

    Raises:
        ValueError: If frames is not uint8 (N, H, W, 3), the frame counts differ, or the
            landmarks or geometry arguments are invalid.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 with shape (N, H, W, 3), "
                         f"got {frames.dtype} {frames.shape}")
    points = np.asarray(landmarks)
    if points.shape[:1] != frames.shape[:1]:
        raise ValueError(f"frames and landmarks must have the same number of frames, "
                         f"got {frames.shape[0]} and {points.shape[:1]}")

    matrices = alignment_matrices(points, image_size, eye_distance, eye_y, smoothing_window)
    aligned = np.stack(
        [warp_frame(frame, matrix, image_size) for frame, matrix in zip(frames, matrices)]
    )  # (N, S, S, 3)
    aligned_landmarks = transform_points(points, matrices).astype(np.float32)  # (N, 68, 2)
    return aligned, aligned_landmarks
