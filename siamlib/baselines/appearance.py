"""Uniform LBP appearance descriptors of an aligned face.

The face is converted to 8-bit grayscale, coded with rotation-invariant uniform local binary
patterns (scikit-image ``local_binary_pattern`` with ``method="uniform"``, which gives P + 2
distinct codes for P sampling points) and split into a grid of cells. Each cell's code
histogram is normalised to sum 1, and the cell histograms are concatenated in row-major
order. :func:`appearance_features` does this for the neutral and the apex frame.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import local_binary_pattern
from skimage.util import img_as_ubyte

FRAMES = ("neutral", "apex")


def _check_settings(grid: tuple[int, int], points: int, radius: float) -> tuple[int, int]:
    if len(grid) != 2 or any(int(cells) != cells or cells < 1 for cells in grid):
        raise ValueError(f"grid must be two positive integers (rows, columns), got {grid!r}")
    if int(points) != points or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    return int(grid[0]), int(grid[1])


def to_gray_uint8(frame: np.ndarray) -> np.ndarray:
    """Convert a uint8 RGB frame (H, W, 3) or grayscale frame (H, W) to uint8 grayscale (H, W).

    RGB uses scikit-image's ``rgb2gray`` weights (ITU-R BT.709 luma).

    Raises:
        ValueError: If the frame is not uint8 or its shape is neither (H, W) nor (H, W, 3).
    """
    image = np.asarray(frame)
    if image.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return img_as_ubyte(rgb2gray(image))
    raise ValueError(f"frame must have shape (H, W) or (H, W, 3), got {image.shape}")


def lbp_histograms(
    frame: np.ndarray, grid: tuple[int, int] = (4, 4), points: int = 8, radius: float = 1.0
) -> np.ndarray:
    """Compute the normalised uniform LBP histogram of every grid cell of one face.

    Cells split the image into ``grid`` rows and columns of near-equal size (integer
    edges from ``numpy.linspace``).

    Args:
        frame: Aligned face, uint8, shape (H, W, 3) RGB or (H, W) grayscale.
        grid: Number of cell rows and columns.
        points: Number of LBP sampling points P.
        radius: LBP radius in pixels.

    Returns:
        Float64 array of shape (rows * columns * (P + 2),): cells in row-major order, each
        cell's P + 2 bins summing to 1.

    Raises:
        ValueError: If the frame or settings are invalid or the image has fewer pixels
            than the grid has cells along an axis.
        RuntimeError: If the LBP codes fall outside the P + 2 bins of uniform patterns.
    """
    rows, columns = _check_settings(grid, points, radius)
    gray = to_gray_uint8(frame)
    height, width = gray.shape
    if height < rows or width < columns:
        raise ValueError(
            f"frame of size {height}x{width} is smaller than the grid {rows}x{columns}"
        )

    num_bins = int(points) + 2
    codes = local_binary_pattern(gray, int(points), float(radius), method="uniform")  # (H, W)
    if codes.min() < 0 or codes.max() >= num_bins or not np.all(codes == np.round(codes)):
        raise RuntimeError(
            f"uniform LBP with P={points} must give integer codes 0..{num_bins - 1}, "
            f"got range {codes.min()}..{codes.max()}"
        )

    row_edges = np.linspace(0, height, rows + 1).astype(int)
    column_edges = np.linspace(0, width, columns + 1).astype(int)
    row_cell = np.searchsorted(row_edges, np.arange(height), side="right") - 1  # (H,)
    column_cell = np.searchsorted(column_edges, np.arange(width), side="right") - 1  # (W,)
    cell = row_cell[:, None] * columns + column_cell[None, :]  # (H, W)
    flat_bin = cell * num_bins + codes.astype(np.int64)  # (H, W)
    counts = np.bincount(flat_bin.ravel(), minlength=rows * columns * num_bins)
    counts = counts.reshape(rows * columns, num_bins).astype(np.float64)  # (cells, P + 2)
    counts /= counts.sum(axis=1, keepdims=True)
    return counts.ravel()  # (cells * (P + 2),)


def appearance_feature_names(grid: tuple[int, int] = (4, 4), points: int = 8) -> list[str]:
    """Return the names ``"lbp.<frame>.r<row>c<column>.b<bin>"`` of the appearance features.

    The order matches :func:`appearance_features`.
    """
    rows, columns = _check_settings(grid, points, 1.0)
    return [
        f"lbp.{frame}.r{row}c{column}.b{code}"
        for frame in FRAMES
        for row in range(rows)
        for column in range(columns)
        for code in range(int(points) + 2)
    ]


def appearance_features(
    neutral_frame: np.ndarray,
    apex_frame: np.ndarray,
    grid: tuple[int, int] = (4, 4),
    points: int = 8,
    radius: float = 1.0,
) -> np.ndarray:
    """Concatenate the grid LBP histograms of the neutral and the apex frame.

    Args:
        neutral_frame: Aligned face before the smile, uint8, (H, W, 3) RGB or (H, W).
        apex_frame: Aligned face at the smile's peak, same format.
        grid: Number of cell rows and columns.
        points: Number of LBP sampling points P.
        radius: LBP radius in pixels.

    Returns:
        Float64 array of shape (2 * rows * columns * (P + 2),), neutral first; names in
        :func:`appearance_feature_names`.
    """
    neutral = lbp_histograms(neutral_frame, grid, points, radius)
    apex = lbp_histograms(apex_frame, grid, points, radius)
    return np.concatenate([neutral, apex])
