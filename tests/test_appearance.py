"""Tests of the LBP grid histograms and the Gabor magnitudes."""

from __future__ import annotations

import numpy as np
import pytest

from siamlib.baselines import appearance


def random_face(seed: int, height: int = 30, width: int = 35) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_lbp_bin_count_and_sums():
    for points in (4, 8):
        histograms = appearance.lbp_histograms(random_face(0), grid=(3, 5), points=points)
        assert histograms.shape == (3 * 5 * (points + 2),)
        cells = histograms.reshape(15, points + 2)  # (cells, P + 2)
        np.testing.assert_allclose(cells.sum(axis=1), 1.0)
        assert np.all(cells >= 0)


def test_lbp_constant_image_code():
    # Inside a constant image every neighbour equals the centre, so all P bits are set, which
    # is the uniform code P. Border pixels differ because scikit-image samples zeros outside.
    gray = np.full((15, 15), 90, dtype=np.uint8)
    cells = appearance.lbp_histograms(gray, grid=(3, 3), points=8).reshape(3, 3, 10)
    expected = np.zeros(10)
    expected[8] = 1.0
    np.testing.assert_allclose(cells[1, 1], expected)
    assert np.all(cells[:, :, 8] > 0.6)


def test_lbp_cell_layout_row_major():
    # Constant left half, noise from column 22: the centre-left cell (columns 10-19) is
    # interior and constant, and the centre-right cell (columns 20-29) is mostly noise.
    gray = np.full((30, 40), 100, dtype=np.uint8)
    gray[:, 22:] = np.random.default_rng(1).integers(0, 256, size=(30, 18), dtype=np.uint8)
    cells = appearance.lbp_histograms(gray, grid=(3, 4), points=8).reshape(3, 4, 10)
    assert cells[1, 1, 8] == 1.0
    assert cells[1, 2, 8] < 0.5
    assert cells[1, 3, 8] < 0.5


def test_rgb_gray_same_histograms():
    gray = random_face(2)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)  # (H, W, 3)
    np.testing.assert_allclose(
        appearance.lbp_histograms(rgb, grid=(2, 3)), appearance.lbp_histograms(gray, grid=(2, 3))
    )


def test_features_neutral_then_apex():
    neutral, apex = random_face(3), random_face(4)
    features = appearance.appearance_features(neutral, apex, grid=(2, 3), points=8, radius=2)
    half = 2 * 3 * 10
    assert features.shape == (2 * half,)
    np.testing.assert_allclose(features[:half], appearance.lbp_histograms(neutral, (2, 3), 8, 2))
    np.testing.assert_allclose(features[half:], appearance.lbp_histograms(apex, (2, 3), 8, 2))
    names = appearance.appearance_feature_names(grid=(2, 3), points=8)
    assert len(names) == features.size
    assert names[0] == "lbp.neutral.r0c0.b0"
    assert names[half] == "lbp.apex.r0c0.b0"
    assert names[-1] == "lbp.apex.r1c2.b9"


def test_invalid_inputs_rejected():
    with pytest.raises(ValueError, match="uint8"):
        appearance.lbp_histograms(random_face(5).astype(np.float32))
    with pytest.raises(ValueError, match="grid"):
        appearance.lbp_histograms(random_face(5)[:3, :3], grid=(4, 4))
    with pytest.raises(ValueError, match="grid"):
        appearance.lbp_histograms(random_face(5), grid=(0, 4))
    with pytest.raises(ValueError, match="points"):
        appearance.lbp_histograms(random_face(5), points=0)


GABOR_FREQUENCIES = (0.1, 0.2, 0.3)
GABOR_ORIENTATIONS = 4


def grating(frequency: float, angle: float, size: int = 64) -> np.ndarray:
    """Return a uint8 sinusoidal grating (size, size) of amplitude 100 around grey 128.

    The wave runs along the direction at ``angle`` from the x axis (columns) towards the
    y axis (rows), with ``frequency`` cycles per pixel.
    """
    rows, columns = np.mgrid[0:size, 0:size]  # (size, size) each
    phase = 2 * np.pi * frequency * (columns * np.cos(angle) + rows * np.sin(angle))
    return np.round(128 + 100 * np.cos(phase)).astype(np.uint8)


@pytest.mark.parametrize(
    ("method", "expected_bins"),
    [("uniform", [3, 4, 6, 10, 18]), ("nri_uniform", [3, 5, 15, 59, 243]),
     ("default", [2, 4, 16, 256, 65536])],
)
def test_lbp_bin_count_per_method(method, expected_bins):
    counts = [appearance.lbp_bin_count(points, method) for points in (1, 2, 4, 8, 16)]
    assert counts == expected_bins


@pytest.mark.parametrize("method", appearance.LBP_METHODS)
@pytest.mark.parametrize("points", [4, 8])
def test_lbp_methods_histogram_sums(method, points):
    grid = (3, 5)
    histograms = appearance.lbp_histograms(random_face(6), grid=grid, points=points,
                                           radius=1.5, method=method)
    num_bins = appearance.lbp_bin_count(points, method)
    assert histograms.shape == (3 * 5 * num_bins,)
    cells = histograms.reshape(15, num_bins)  # (cells, B)
    np.testing.assert_allclose(cells.sum(axis=1), 1.0)
    assert np.all(cells >= 0)
    names = appearance.appearance_feature_names(grid=grid, points=points, method=method)
    assert len(names) == 2 * histograms.size
    assert names[num_bins - 1] == f"lbp.neutral.r0c0.b{num_bins - 1}"


def test_lbp_nri_uniform_uses_more_bins():
    # Non-rotation-invariant codes spread random texture over more than P + 2 bins.
    cells = appearance.lbp_histograms(random_face(7), grid=(1, 1), points=8,
                                      method="nri_uniform")
    assert np.count_nonzero(cells) > 10


def test_lbp_points_too_many_rejected():
    with pytest.raises(ValueError, match="at most 16 points"):
        appearance.lbp_bin_count(17, "default")
    with pytest.raises(ValueError, match="got points=17"):
        appearance.lbp_histograms(random_face(5), points=17, method="default")
    with pytest.raises(ValueError, match="points"):
        appearance.appearance_feature_names(points=17, method="default")


def test_lbp_unknown_method_rejected():
    with pytest.raises(ValueError, match="uniform.*nri_uniform.*default.*got 'ror'"):
        appearance.lbp_histograms(random_face(5), method="ror")
    with pytest.raises(ValueError, match="got 'var'"):
        appearance.appearance_features(random_face(5), random_face(6), method="var")


@pytest.mark.parametrize("frequency_index", range(len(GABOR_FREQUENCIES)))
@pytest.mark.parametrize("orientation_index", range(GABOR_ORIENTATIONS))
def test_gabor_grating_peaks_at_matching_filter(frequency_index, orientation_index):
    angle = orientation_index * np.pi / GABOR_ORIENTATIONS
    image = grating(GABOR_FREQUENCIES[frequency_index], angle)
    magnitudes = appearance.gabor_magnitudes(image, (4, 4), GABOR_FREQUENCIES, GABOR_ORIENTATIONS)
    per_filter = magnitudes.reshape(len(GABOR_FREQUENCIES), GABOR_ORIENTATIONS, 16).mean(axis=2)
    best = np.unravel_index(np.argmax(per_filter), per_filter.shape)
    assert best == (frequency_index, orientation_index)
    # Away from the borders a matching filter gives about half the grating's amplitude of
    # 100 (47.5 to 50 measured, lowest for diagonal gratings).
    cells = magnitudes.reshape(3, 4, 4, 4)[frequency_index, orientation_index]  # (rows, columns)
    np.testing.assert_allclose(cells[1:3, 1:3], 50.0, rtol=0.08)


def test_gabor_constant_image_near_zero():
    image = np.full((64, 64), 200, dtype=np.uint8)
    magnitudes = appearance.gabor_magnitudes(image, (4, 4), GABOR_FREQUENCIES, GABOR_ORIENTATIONS)
    assert magnitudes.shape == (3 * 4 * 16,)
    assert magnitudes.max() < 0.002 * 200
    assert magnitudes.max() < 0.01 * appearance.gabor_magnitudes(grating(0.2, 0.0)).max()


def test_gabor_cell_layout_row_major():
    # Texture only in the bottom-right quarter: only those cells respond.
    image = np.full((64, 64), 128, dtype=np.uint8)
    image[32:, 32:] = grating(0.2, 0.0, size=32)
    cells = appearance.gabor_magnitudes(image, (2, 2), (0.2,), 1).reshape(2, 2)
    assert cells[1, 1] > 10 * cells[0, 0]
    assert cells[1, 1] > 2 * cells[0, 1]
    assert cells[1, 1] > 2 * cells[1, 0]


def test_gabor_features_after_lbp():
    neutral, apex = random_face(8), random_face(9)
    settings = {"grid": (2, 3), "points": 8, "method": "uniform",
                "gabor_frequencies": GABOR_FREQUENCIES, "gabor_orientations": GABOR_ORIENTATIONS}
    features = appearance.appearance_features(neutral, apex, radius=1.0, **settings)
    names = appearance.appearance_feature_names(**settings)
    assert len(names) == features.size
    assert len(names) == len(set(names))

    lbp_size = 2 * 6 * 10
    gabor_size = 3 * 4 * 6
    assert features.size == lbp_size + 2 * gabor_size
    assert all(name.startswith("lbp.") for name in names[:lbp_size])
    assert all(name.startswith("gabor.") for name in names[lbp_size:])
    assert names[lbp_size] == "gabor.neutral.f0o0.r0c0"
    assert names[lbp_size + 1] == "gabor.neutral.f0o0.r0c1"
    assert names[lbp_size + 6] == "gabor.neutral.f0o1.r0c0"
    assert names[lbp_size + gabor_size] == "gabor.apex.f0o0.r0c0"
    assert names[-1] == "gabor.apex.f2o3.r1c2"

    lbp_only = appearance.appearance_features(neutral, apex, grid=(2, 3), points=8)
    np.testing.assert_allclose(features[:lbp_size], lbp_only)
    np.testing.assert_allclose(
        features[lbp_size:lbp_size + gabor_size],
        appearance.gabor_magnitudes(neutral, (2, 3), GABOR_FREQUENCIES, GABOR_ORIENTATIONS),
    )
    np.testing.assert_allclose(
        features[lbp_size + gabor_size:],
        appearance.gabor_magnitudes(apex, (2, 3), GABOR_FREQUENCIES, GABOR_ORIENTATIONS),
    )


def test_gabor_off_by_default():
    features = appearance.appearance_features(random_face(10), random_face(11))
    names = appearance.appearance_feature_names()
    assert features.size == 2 * 4 * 4 * 10
    assert len(names) == features.size
    assert not any(name.startswith("gabor.") for name in names)


def test_gabor_invalid_settings_rejected():
    face = random_face(12)
    with pytest.raises(ValueError, match="gabor_orientations must be a positive integer"):
        appearance.appearance_features(face, face, gabor_frequencies=(0.2,))
    with pytest.raises(ValueError, match="gabor_orientations must be a positive integer"):
        appearance.appearance_feature_names(gabor_frequencies=(0.2,))
    with pytest.raises(ValueError, match="frequencies must lie in"):
        appearance.gabor_magnitudes(face, frequencies=(0.2, 0.7))
    with pytest.raises(ValueError, match="frequencies must lie in"):
        appearance.gabor_magnitudes(face, frequencies=(0.0,))
    with pytest.raises(ValueError, match="at least one frequency"):
        appearance.gabor_magnitudes(face, frequencies=())
    with pytest.raises(ValueError, match="orientations must be a non-negative integer"):
        appearance.gabor_magnitudes(face, orientations=-1)
    with pytest.raises(ValueError, match="grid"):
        appearance.gabor_magnitudes(face[:3, :3], grid=(4, 4))
