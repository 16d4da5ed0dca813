"""Region masks of the planted cues in the aligned face frame.

The aligned face frame is the square crop that preprocessing produces
(`siamlib.video.align`): a similarity transform puts the eye centres at fixed positions,
`eye_distance` × S apart on the line `eye_y` × S from the top. The head pose of a synthetic
frame is a similarity transform of the face canvas, so a face-unit point p lands in the crop
at z p + t, with z and t fixed by the face-unit eye centres alone. The masks are drawn with
that transform. They differ from a crop aligned on the rendered landmarks only by the
temporal smoothing of the eye track.

Each mask is the union of the region at the clip's neutral first frame and at its apex frame,
so it covers the crow's feet and nasolabial folds wherever the expression moves them. Line cues
get a halo of `LINE_HALO` face units on each side (half face width = 0.5), about 2 pixels of a
64-pixel crop; the line itself is 1 to 2 pixels wide.

Regions (`REGION_NAMES`):
    crows_feet        the three lines at each outer eye corner
    forehead_lines    the three horizontal forehead lines (drawn whether or not they are visible)
    nasolabial_folds  the folds from the nose wings to beside the lip corners
    eyes              both eye openings, widened by `FEATURE_MARGIN`
    brows             both brows, widened by `FEATURE_MARGIN`
    mouth             the outer lip contour, widened by `FEATURE_MARGIN`
    face              the head outline, jaw to the top of the head (hair included)
"""

from __future__ import annotations

import cv2
import numpy as np

from siamlib import landmarks as lm
from siamlib.data.synthetic import face
from siamlib.data.synthetic.face import FaceShape
from siamlib.landmarks import eye_centres
from siamlib.video.align import DEFAULT_EYE_DISTANCE, DEFAULT_EYE_Y, similarity_from_eyes

REGION_NAMES = (
    "crows_feet", "forehead_lines", "nasolabial_folds", "eyes", "brows", "mouth", "face",
)
MASK_SIZE = 64
"""Side of the stored masks in pixels; resample them to any crop or attention grid."""
LINE_HALO = 0.025
FEATURE_MARGIN = 0.015
_SUPERSAMPLE = 4


def _face_to_crop(points: np.ndarray, size: int, eye_distance: float, eye_y: float) -> np.ndarray:
    """Return the 2x3 similarity that maps face units to the aligned crop of side `size`."""
    right, left = eye_centres(points)
    return similarity_from_eyes(right, left, size, eye_distance, eye_y)


def _draw_region(
    name: str, shape: FaceShape, points: np.ndarray, matrix: np.ndarray, canvas: np.ndarray
) -> None:
    """Draw one region of one frame (face-unit `points`, (68, 2)) into `canvas` with value 1."""
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))  # crop pixels per face unit

    def to_pixels(curve: np.ndarray) -> np.ndarray:
        mapped = np.asarray(curve) @ matrix[:, :2].T + matrix[:, 2]
        return np.round(mapped).astype(np.int32)

    def lines(curves: list[np.ndarray], halo: float) -> None:
        thickness = max(1, int(round(2 * halo * scale)))
        cv2.polylines(canvas, [to_pixels(c) for c in curves], False, 1, thickness, cv2.LINE_8)

    def polygons(polys: list[np.ndarray], margin: float) -> None:
        pixels = [to_pixels(p) for p in polys]
        cv2.fillPoly(canvas, pixels, 1)
        thickness = max(1, int(round(2 * margin * scale)))
        cv2.polylines(canvas, pixels, True, 1, thickness, cv2.LINE_8)

    if name == "crows_feet":
        lines(face.crows_feet_lines(points), LINE_HALO)
    elif name == "forehead_lines":
        lines(face.forehead_lines(shape), LINE_HALO)
    elif name == "nasolabial_folds":
        lines(face.nasolabial_curves(points), LINE_HALO)
    elif name == "eyes":
        polygons([points[list(lm.RIGHT_EYE)], points[list(lm.LEFT_EYE)]], FEATURE_MARGIN)
    elif name == "brows":
        brows = [points[list(lm.RIGHT_BROW)], points[list(lm.LEFT_BROW)]]
        lines(brows, shape.brow_thickness / 2 + FEATURE_MARGIN)
    elif name == "mouth":
        polygons([points[list(lm.MOUTH_OUTER)]], FEATURE_MARGIN)
    elif name == "face":
        outline = np.vstack([face.jaw_points(shape), face.head_top_arc(shape)[1:-1]])
        polygons([outline], 0.0)
    else:
        raise ValueError(f"unknown region {name!r}; the regions are {REGION_NAMES}")


def region_masks(
    shape: FaceShape,
    frames: list[np.ndarray],
    size: int = MASK_SIZE,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
) -> np.ndarray:
    """Draw the mask of every region in `REGION_NAMES` in the aligned face frame.

    Args:
        shape: The subject's face geometry.
        frames: Face-unit landmarks of the frames whose regions are united, each (68, 2),
            e.g. the neutral first frame and the apex frame.
        size: Side of the masks in pixels.
        eye_distance: Distance between the eye centres in the crop, as a fraction of `size`.
        eye_y: Height of the eye line in the crop, as a fraction of `size` from the top.

    Returns:
        Uint8 array of shape (R, size, size), R = len(REGION_NAMES), 1 inside a region and 0
        outside. Regions are drawn 4 times finer and kept where they cover at least half a
        pixel.

    Raises:
        ValueError: If `frames` is empty or a frame is not (68, 2).
    """
    if not frames:
        raise ValueError("frames must hold at least one (68, 2) landmark array")
    fine = size * _SUPERSAMPLE
    masks = np.zeros((len(REGION_NAMES), size, size), np.uint8)
    for r, name in enumerate(REGION_NAMES):
        canvas = np.zeros((fine, fine), np.uint8)
        for points in frames:
            points = np.asarray(points, dtype=np.float64)
            if points.shape != (lm.NUM_LANDMARKS, 2):
                raise ValueError(f"each frame must have shape (68, 2), got {points.shape}")
            # Pixel centres of the fine grid sit at (k + 0.5) / 4 - 0.5 coarse pixels, so the
            # fine transform is the coarse one scaled by 4 and shifted by 1.5 fine pixels.
            matrix = _face_to_crop(points, size, eye_distance, eye_y) * _SUPERSAMPLE
            matrix[:, 2] += (_SUPERSAMPLE - 1) / 2
            _draw_region(name, shape, points, matrix, canvas)
        coverage = cv2.resize(canvas.astype(np.float32), (size, size),
                              interpolation=cv2.INTER_AREA)
        masks[r] = coverage >= 0.5
    return masks
