"""Tests for the iBUG 68-point index constants and eye centres."""

import numpy as np
import pytest

from siamlib import landmarks as lm


def test_groups_partition_all_points():
    groups = [lm.JAW, lm.RIGHT_BROW, lm.LEFT_BROW, lm.NOSE_BRIDGE, lm.NOSE_BASE,
              lm.RIGHT_EYE, lm.LEFT_EYE, lm.MOUTH_OUTER, lm.MOUTH_INNER]
    flat = [i for group in groups for i in group]
    assert sorted(flat) == list(range(68))
    assert len(lm.JAW) == 17
    assert len(lm.RIGHT_EYE) == 6
    assert len(lm.MOUTH_OUTER) == 12
    assert len(lm.MOUTH_INNER) == 8


def test_named_points_follow_ibug():
    assert lm.LIP_CORNERS == (48, 54)
    assert lm.RIGHT_EYE_OUTER == 36
    assert lm.RIGHT_EYE_INNER == 39
    assert lm.LEFT_EYE_INNER == 42
    assert lm.LEFT_EYE_OUTER == 45
    assert lm.CHIN == 8
    assert lm.NOSE_TIP == 30
    assert lm.UPPER_LIP_TOP == 51
    assert lm.LOWER_LIP_BOTTOM == 57


def test_eye_centres_known_answer():
    points = np.zeros((68, 2), dtype=np.float32)
    points[list(lm.RIGHT_EYE)] = [[10, 20], [12, 18], [14, 18], [16, 20], [14, 22], [12, 22]]
    points[list(lm.LEFT_EYE)] = [[30, 21], [32, 19], [34, 19], [36, 21], [34, 23], [32, 23]]
    centres = lm.eye_centres(points)
    assert centres.shape == (2, 2)
    assert centres.dtype == np.float32
    np.testing.assert_allclose(centres[0], [13.0, 20.0])
    np.testing.assert_allclose(centres[1], [33.0, 21.0])


def test_eye_centres_leading_axes():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(2, 3, 68, 2))  # (B=2, T=3, 68, 2)
    centres = lm.eye_centres(points)
    assert centres.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(centres[1, 2, 0], points[1, 2, 36:42].mean(axis=0))
    np.testing.assert_allclose(centres[0, 1, 1], points[0, 1, 42:48].mean(axis=0))


def test_eye_centres_integer_input_is_float():
    points = np.ones((68, 2), dtype=np.int64)
    points[42:48] = 3
    centres = lm.eye_centres(points)
    assert centres.dtype == np.float64
    np.testing.assert_array_equal(centres, [[1.0, 1.0], [3.0, 3.0]])


@pytest.mark.parametrize("shape", [(68,), (67, 2), (68, 3), (5, 2)])
def test_eye_centres_rejects_bad_shape(shape):
    with pytest.raises(ValueError, match="68, 2"):
        lm.eye_centres(np.zeros(shape))


def test_inter_ocular_distance_known_answer():
    points = np.zeros((4, 68, 2))
    points[:, 42:48, 0] = 3.0
    points[:, 42:48, 1] = 4.0
    np.testing.assert_allclose(lm.inter_ocular_distance(points), np.full(4, 5.0))
