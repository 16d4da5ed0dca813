"""Tests of the uniform LBP grid histograms."""

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
