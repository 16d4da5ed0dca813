"""Index constants and helpers for the 68-point iBUG (dlib) facial landmark scheme.

Landmarks are 0-indexed (x, y) pixel coordinates in the frame, stored as float32 arrays whose
last two axes are (68, 2). "Right" means the subject's right, which is on the image's left.

Index map:
    jaw 0-16; right brow 17-21; left brow 22-26; nose bridge 27-30; nose base 31-35;
    right eye 36-41 (36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid);
    left eye 42-47 (42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid);
    outer lip 48-59 (48 right corner, 51 top centre, 54 left corner, 57 bottom centre);
    inner lip 60-67.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_BASE = tuple(range(31, 36))
NOSE = NOSE_BRIDGE + NOSE_BASE
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
MOUTH_OUTER = tuple(range(48, 60))
MOUTH_INNER = tuple(range(60, 68))
MOUTH = MOUTH_OUTER + MOUTH_INNER

CHIN = 8
NOSE_TIP = 30

RIGHT_EYE_OUTER = 36
RIGHT_EYE_INNER = 39
LEFT_EYE_INNER = 42
LEFT_EYE_OUTER = 45
EYE_CORNERS = (RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER)

RIGHT_UPPER_LID = (37, 38)
RIGHT_LOWER_LID = (41, 40)
LEFT_UPPER_LID = (43, 44)
LEFT_LOWER_LID = (47, 46)

RIGHT_LIP_CORNER = 48
LEFT_LIP_CORNER = 54
LIP_CORNERS = (RIGHT_LIP_CORNER, LEFT_LIP_CORNER)
UPPER_LIP_TOP = 51
LOWER_LIP_BOTTOM = 57


def _check_landmarks(landmarks: np.ndarray, name: str = "landmarks") -> np.ndarray:
    array = np.asarray(landmarks)
    if array.ndim < 2 or array.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(
            f"{name} must have shape (..., {NUM_LANDMARKS}, 2), got {array.shape}"
        )
    return array


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Compute the right and left eye centres as the mean of each eye's six points.

    Args:
        landmarks: Array of shape (..., 68, 2) in the iBUG scheme; any leading axes.

    Returns:
        Array of shape (..., 2, 2). Index 0 of the second-to-last axis is the right eye
        (subject's right, image left) and index 1 the left eye. The last axis is (x, y).
        Float inputs keep their dtype, and integer inputs become float64.

    Raises:
        ValueError: If the last two axes are not (68, 2).
    """
    array = _check_landmarks(landmarks)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    right = array[..., RIGHT_EYE, :].mean(axis=-2)  # (..., 2)
    left = array[..., LEFT_EYE, :].mean(axis=-2)  # (..., 2)
    return np.stack([right, left], axis=-2)  # (..., 2, 2)


def inter_ocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """Compute the distance between the two eye centres.

    Args:
        landmarks: Array of shape (..., 68, 2).

    Returns:
        Array of shape (...) with the distance in pixels.

    Raises:
        ValueError: If the last two axes are not (68, 2).
    """
    centres = eye_centres(landmarks)  # (..., 2, 2)
    return np.linalg.norm(centres[..., 1, :] - centres[..., 0, :], axis=-1)
