"""LBP and Gabor appearance descriptors of an aligned face.

The face is converted to 8-bit grayscale and split into a grid of cells of near-equal size
(integer edges from ``numpy.linspace``), taken in row-major order.

- LBP histograms (always on): scikit-image's ``local_binary_pattern`` codes every pixel with
  one of the variants in :data:`LBP_METHODS`. Each cell's code histogram, with
  :func:`lbp_bin_count` bins, is normalised to sum 1.
- Gabor magnitudes (optional): a bank of complex Gabor filters, one per frequency and
  orientation, filters the grayscale face as float. The magnitude of each complex response
  is averaged over each cell.

:func:`appearance_features` computes them for the neutral and the apex frame, and
:func:`appearance_feature_names` names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from skimage.color import rgb2gray
from skimage.feature import local_binary_pattern
from skimage.filters import gabor_kernel
from skimage.util import img_as_ubyte

FRAMES = ("neutral", "apex")

# LBP variants of scikit-image's local_binary_pattern (its ``method`` argument) and their
# histogram bin counts for P sampling points:
#   "uniform": rotation-invariant uniform patterns, codes 0..P, plus one bin for all
#       non-uniform patterns: P + 2 bins.
#   "nri_uniform": non-rotation-invariant uniform patterns, P(P - 1) + 2 codes, plus one bin
#       for all non-uniform patterns: P(P - 1) + 3 bins.
#   "default": the raw P-bit code: 2^P bins.
LBP_METHODS = ("uniform", "nri_uniform", "default")
# Largest P of the "default" variant, whose histograms have 2^P bins per cell.
MAX_DEFAULT_LBP_POINTS = 16

DEFAULT_GABOR_FREQUENCIES = (0.1, 0.2, 0.3)
DEFAULT_GABOR_ORIENTATIONS = 4


def _check_grid(grid: tuple[int, int]) -> tuple[int, int]:
    if len(grid) != 2 or any(int(cells) != cells or cells < 1 for cells in grid):
        raise ValueError(f"grid must be two positive integers (rows, columns), got {grid!r}")
    return int(grid[0]), int(grid[1])


def _check_settings(grid: tuple[int, int], points: int, radius: float) -> tuple[int, int]:
    rows, columns = _check_grid(grid)
    if int(points) != points or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    return rows, columns


def lbp_bin_count(points: int, method: str = "uniform") -> int:
    """Return the number of histogram bins of an LBP variant with P sampling points.

    Args:
        points: Number of LBP sampling points P.
        method: LBP variant, one of :data:`LBP_METHODS`.

    Returns:
        P + 2 for "uniform", P(P - 1) + 3 for "nri_uniform" and 2^P for "default".

    Raises:
        ValueError: If points is not a positive integer, method is unknown, or method is
            "default" with P above :data:`MAX_DEFAULT_LBP_POINTS`.
    """
    if int(points) != points or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    points = int(points)
    if method == "uniform":
        return points + 2
    if method == "nri_uniform":
        return points * (points - 1) + 3
    if method == "default":
        if points > MAX_DEFAULT_LBP_POINTS:
            raise ValueError(
                f"LBP method 'default' supports at most {MAX_DEFAULT_LBP_POINTS} points "
                f"(2^P bins per cell), got points={points}. Use fewer points or the method "
                "'uniform' or 'nri_uniform'."
            )
        return 2**points
    raise ValueError(f"LBP method must be one of {LBP_METHODS}, got {method!r}")


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


def _grid_cells(height: int, width: int, rows: int, columns: int) -> np.ndarray:
    """Return the row-major cell index of every pixel, int64 of shape (H, W).

    Raises:
        ValueError: If the image has fewer pixels than the grid has cells along an axis.
    """
    if height < rows or width < columns:
        raise ValueError(
            f"frame of size {height}x{width} is smaller than the grid {rows}x{columns}"
        )
    row_edges = np.linspace(0, height, rows + 1).astype(int)
    column_edges = np.linspace(0, width, columns + 1).astype(int)
    row_cell = np.searchsorted(row_edges, np.arange(height), side="right") - 1  # (H,)
    column_cell = np.searchsorted(column_edges, np.arange(width), side="right") - 1  # (W,)
    return row_cell[:, None] * columns + column_cell[None, :]  # (H, W)


def lbp_histograms(
    frame: np.ndarray,
    grid: tuple[int, int] = (4, 4),
    points: int = 8,
    radius: float = 1.0,
    method: str = "uniform",
) -> np.ndarray:
    """Compute the normalised LBP histogram of every grid cell of one face.

    Args:
        frame: Aligned face, uint8, shape (H, W, 3) RGB or (H, W) grayscale.
        grid: Number of cell rows and columns.
        points: Number of LBP sampling points P.
        radius: LBP radius in pixels.
        method: LBP variant, one of :data:`LBP_METHODS`.

    Returns:
        Float64 array of shape (rows * columns * B,) with B = ``lbp_bin_count(points,
        method)``: cells in row-major order, each cell's B bins summing to 1.

    Raises:
        ValueError: If the frame or settings are invalid or the image has fewer pixels
            than the grid has cells along an axis.
        RuntimeError: If scikit-image returns codes that are not integers in 0..B - 1.
    """
    rows, columns = _check_settings(grid, points, radius)
    num_bins = lbp_bin_count(points, method)
    gray = to_gray_uint8(frame)
    height, width = gray.shape
    cell = _grid_cells(height, width, rows, columns)  # (H, W)

    codes = local_binary_pattern(gray, int(points), float(radius), method=method)  # (H, W)
    if codes.min() < 0 or codes.max() >= num_bins or not np.all(codes == np.round(codes)):
        raise RuntimeError(
            f"{method} LBP with P={points} must give integer codes 0..{num_bins - 1}, "
            f"got range {codes.min()}..{codes.max()}"
        )

    flat_bin = cell * num_bins + codes.astype(np.int64)  # (H, W)
    counts = np.bincount(flat_bin.ravel(), minlength=rows * columns * num_bins)
    counts = counts.reshape(rows * columns, num_bins).astype(np.float64)  # (cells, B)
    counts /= counts.sum(axis=1, keepdims=True)
    return counts.ravel()  # (cells * B,)


def _check_gabor_settings(
    frequencies: Sequence[float], orientations: int, prefix: str = ""
) -> tuple[tuple[float, ...], int]:
    """Validate a Gabor bank and return (frequencies, orientations), or ((), 0) for none.

    An empty ``frequencies`` means no bank. ``prefix`` is prepended to the argument names in
    error messages.
    """
    values = tuple(float(frequency) for frequency in frequencies)
    if int(orientations) != orientations or orientations < 0:
        raise ValueError(
            f"{prefix}orientations must be a non-negative integer, got {orientations!r}"
        )
    if not values:
        return (), 0
    invalid = [frequency for frequency in values if not 0 < frequency <= 0.5]
    if invalid:
        raise ValueError(
            f"{prefix}frequencies must lie in (0, 0.5] cycles per pixel (0.5 is the Nyquist "
            f"frequency), got {invalid}"
        )
    if orientations < 1:
        raise ValueError(
            f"{prefix}orientations must be a positive integer when {prefix}frequencies is "
            f"set, got {orientations!r}"
        )
    return values, int(orientations)


@lru_cache(maxsize=8)
def _gabor_bank(
    frequencies: tuple[float, ...], orientations: int
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Build the (real, imaginary) kernels of every frequency and orientation.

    Kernels come from scikit-image's ``gabor_kernel`` (bandwidth 1 octave, envelope cut at
    3 standard deviations) in the order frequency, then orientation j with angle j pi / n.
    They are flipped because OpenCV's ``filter2D`` computes a correlation, so filtering
    with them is a convolution.
    """
    bank = []
    for frequency in frequencies:
        for orientation in range(orientations):
            kernel = gabor_kernel(frequency, theta=orientation * np.pi / orientations)  # (k, k)
            flipped = kernel[::-1, ::-1]  # (k, k)
            bank.append(
                (np.ascontiguousarray(flipped.real), np.ascontiguousarray(flipped.imag))
            )
    return tuple(bank)


def gabor_magnitudes(
    frame: np.ndarray,
    grid: tuple[int, int] = (4, 4),
    frequencies: Sequence[float] = DEFAULT_GABOR_FREQUENCIES,
    orientations: int = DEFAULT_GABOR_ORIENTATIONS,
) -> np.ndarray:
    """Compute the mean Gabor magnitude of every filter and grid cell of one face.

    The grayscale face (levels 0-255, as float64) is convolved with the real and the
    imaginary part of each complex Gabor kernel, with the image mirrored at its borders
    (OpenCV ``BORDER_REFLECT``). The magnitude sqrt(real^2 + imag^2) is averaged over each
    cell. Each kernel's Gaussian envelope sums to about 1, so a sinusoidal grating of amplitude A
    at the filter's frequency and orientation gives a magnitude of about A / 2 away from the
    borders. The kernels are not exactly zero-mean, so a constant image gives a magnitude of
    up to 0.2 % of its grey level for frequencies 0.1 to 0.3.

    Args:
        frame: Aligned face, uint8, shape (H, W, 3) RGB or (H, W) grayscale.
        grid: Number of cell rows and columns.
        frequencies: Filter frequencies in cycles per pixel, each in (0, 0.5].
        orientations: Number n of filter orientations, at angles j pi / n for j = 0..n-1,
            measured from the image's x axis (columns) towards its y axis (rows).

    Returns:
        Float64 array of shape (F * n * rows * columns,), F frequencies, ordered by
        frequency, orientation, cell row and cell column.

    Raises:
        ValueError: If the frame, grid or filter settings are invalid or the image has
            fewer pixels than the grid has cells along an axis.
    """
    rows, columns = _check_grid(grid)
    bank_frequencies, bank_orientations = _check_gabor_settings(frequencies, orientations)
    if not bank_frequencies:
        raise ValueError("frequencies must contain at least one frequency, got an empty sequence")
    gray = to_gray_uint8(frame).astype(np.float64)  # (H, W)
    height, width = gray.shape
    cell = _grid_cells(height, width, rows, columns).ravel()  # (H * W,)
    num_cells = rows * columns
    cell_sizes = np.bincount(cell, minlength=num_cells)  # (cells,)

    means = []
    for real_kernel, imaginary_kernel in _gabor_bank(bank_frequencies, bank_orientations):
        real = cv2.filter2D(gray, -1, real_kernel, borderType=cv2.BORDER_REFLECT)  # (H, W)
        imaginary = cv2.filter2D(gray, -1, imaginary_kernel, borderType=cv2.BORDER_REFLECT)
        magnitude = np.hypot(real, imaginary).ravel()  # (H * W,)
        sums = np.bincount(cell, weights=magnitude, minlength=num_cells)  # (cells,)
        means.append(sums / cell_sizes)
    return np.concatenate(means)  # (F * n * cells,)


def appearance_feature_names(
    grid: tuple[int, int] = (4, 4),
    points: int = 8,
    method: str = "uniform",
    gabor_frequencies: Sequence[float] = (),
    gabor_orientations: int = 0,
) -> list[str]:
    """Return the appearance feature names in the order :func:`appearance_features` uses.

    LBP names are ``"lbp.<frame>.r<row>c<column>.b<bin>"`` and Gabor names
    ``"gabor.<frame>.f<k>o<j>.r<row>c<column>"`` with k the frequency index and j the
    orientation index. All LBP names (neutral, then apex) come before all Gabor names
    (neutral, then apex). The arguments are those of :func:`appearance_features`.

    Raises:
        ValueError: If a setting is invalid.
    """
    rows, columns = _check_settings(grid, points, 1.0)
    num_bins = lbp_bin_count(points, method)
    frequencies, orientations = _check_gabor_settings(
        gabor_frequencies, gabor_orientations, prefix="gabor_"
    )
    cells = [(row, column) for row in range(rows) for column in range(columns)]
    names = [
        f"lbp.{frame}.r{row}c{column}.b{code}"
        for frame in FRAMES
        for row, column in cells
        for code in range(num_bins)
    ]
    names.extend(
        f"gabor.{frame}.f{frequency}o{orientation}.r{row}c{column}"
        for frame in FRAMES
        for frequency in range(len(frequencies))
        for orientation in range(orientations)
        for row, column in cells
    )
    return names


def appearance_features(
    neutral_frame: np.ndarray,
    apex_frame: np.ndarray,
    grid: tuple[int, int] = (4, 4),
    points: int = 8,
    radius: float = 1.0,
    method: str = "uniform",
    gabor_frequencies: Sequence[float] = (),
    gabor_orientations: int = 0,
) -> np.ndarray:
    """Concatenate the LBP histograms and the Gabor magnitudes of the neutral and apex frame.

    Args:
        neutral_frame: Aligned face before the smile, uint8, (H, W, 3) RGB or (H, W).
        apex_frame: Aligned face at the smile's peak, same format.
        grid: Number of cell rows and columns, shared by LBP and Gabor.
        points: Number of LBP sampling points P.
        radius: LBP radius in pixels.
        method: LBP variant, one of :data:`LBP_METHODS`.
        gabor_frequencies: Gabor frequencies in cycles per pixel. An empty sequence turns
            Gabor off.
        gabor_orientations: Number of Gabor orientations, positive when gabor_frequencies
            is set.

    Returns:
        Float64 array of shape (2 * cells * B + 2 * F * n * cells,): the neutral, then the
        apex LBP histograms (B = ``lbp_bin_count(points, method)`` bins per cell), then the
        neutral, then the apex Gabor magnitudes (F frequencies, n orientations). Names in
        :func:`appearance_feature_names`.

    Raises:
        ValueError: If a frame or setting is invalid.
    """
    frequencies, orientations = _check_gabor_settings(
        gabor_frequencies, gabor_orientations, prefix="gabor_"
    )
    frames = (neutral_frame, apex_frame)
    parts = [lbp_histograms(frame, grid, points, radius, method) for frame in frames]
    if frequencies:
        parts.extend(gabor_magnitudes(frame, grid, frequencies, orientations) for frame in frames)
    return np.concatenate(parts)
