"""Tests for siamlib.video.align: eye-based similarity transforms, smoothing and frame warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamlib.landmarks import LEFT_EYE, RIGHT_EYE, eye_centres
from siamlib.video.align import (
    align_frames,
    canonical_eye_positions,
    similarity_from_eyes,
    smooth_track,
    transform_points,
)

# Distinct sizes: crop side S=40, frame H=90 x W=120, N=3 frames.
CROP, HEIGHT, WIDTH, NUM_FRAMES = 40, 90, 120, 3
EYE_DISTANCE, EYE_Y = 0.4, 0.35


def canonical_landmarks() -> np.ndarray:
    """Build 68 crop-space landmarks whose eye centres sit exactly at the canonical positions."""
    rng = np.random.default_rng(3)
    points = rng.uniform(8, 32, size=(68, 2))
    eyes = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)  # (2, 2)
    offsets = np.array([[-3, 0], [-1, -1], [1, -1], [3, 0], [1, 1], [-1, 1]], dtype=float)
    points[list(RIGHT_EYE)] = eyes[0] + offsets
    points[list(LEFT_EYE)] = eyes[1] + offsets
    return points


def canonical_image() -> np.ndarray:
    """Draw a smooth crop-space image with bright Gaussian blobs on the eye centres."""
    ys, xs = np.mgrid[0:CROP, 0:CROP].astype(float)
    image = 40 + 2.0 * xs + 1.0 * ys  # (S, S) gradient so misplacement shows
    for x, y in canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y):
        image += 100 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2))
    gray = np.clip(image, 0, 255).astype(np.uint8)
    return np.stack([gray, gray // 2, 255 - gray], axis=-1)  # (S, S, 3)


def crop_to_frame(angle_degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """Build a 2x3 similarity matrix from crop coordinates to frame coordinates."""
    centre = ((CROP - 1) / 2, (CROP - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle_degrees, scale)
    matrix[:, 2] += np.asarray(shift) - np.asarray(centre)
    return matrix


def test_similarity_maps_eyes_exactly():
    rng = np.random.default_rng(0)
    right = rng.uniform(10, 60, size=(4, 2))
    left = right + rng.uniform(5, 30, size=(4, 2))
    matrices = similarity_from_eyes(right, left, CROP, EYE_DISTANCE, EYE_Y)
    assert matrices.shape == (4, 2, 3)

    mapped = transform_points(np.stack([right, left], axis=1), matrices)  # (4, 2, 2)
    expected = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)
    np.testing.assert_allclose(mapped, np.broadcast_to(expected, (4, 2, 2)), atol=1e-9)


def test_similarity_is_rotation_and_scale():
    matrix = similarity_from_eyes(np.array([10.0, 20.0]), np.array([10.0, 40.0]), CROP)
    linear = matrix[:, :2]
    # The eye line points down the image, so the transform rotates by -90 degrees.
    scale = 0.35 * CROP / 20.0
    np.testing.assert_allclose(linear, scale * np.array([[0.0, 1.0], [-1.0, 0.0]]), atol=1e-12)


def test_canonical_positions_symmetric():
    eyes = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)
    assert eyes[1, 0] - eyes[0, 0] == pytest.approx(EYE_DISTANCE * CROP)
    assert (eyes[0, 0] + eyes[1, 0]) / 2 == pytest.approx((CROP - 1) / 2)
    assert eyes[0, 1] == eyes[1, 1] == pytest.approx(EYE_Y * CROP - 0.5)


def test_align_undoes_rotation_and_scale():
    forward = crop_to_frame(angle_degrees=25.0, scale=1.8, shift=(70.0, 40.0))
    frame = cv2.warpAffine(
        canonical_image(), forward, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    frame_landmarks = transform_points(canonical_landmarks(), forward)  # (68, 2)
    frames = np.repeat(frame[None], NUM_FRAMES, axis=0)  # (N, H, W, 3)
    landmarks = np.repeat(frame_landmarks[None], NUM_FRAMES, axis=0).astype(np.float32)

    aligned, aligned_landmarks = align_frames(
        frames, landmarks, CROP, eye_distance=EYE_DISTANCE, eye_y=EYE_Y, smoothing_window=3
    )

    assert aligned.shape == (NUM_FRAMES, CROP, CROP, 3)
    assert aligned.dtype == np.uint8
    assert aligned_landmarks.shape == (NUM_FRAMES, 68, 2)
    assert aligned_landmarks.dtype == np.float32
    for index in range(NUM_FRAMES):
        np.testing.assert_allclose(aligned_landmarks[index], canonical_landmarks(), atol=1e-3)

    error = np.abs(aligned[1].astype(float) - canonical_image().astype(float))
    assert error[4:-4, 4:-4].mean() < 2.0
    assert error[4:-4, 4:-4].max() <= 12


def test_align_puts_blobs_on_eyes():
    forward = crop_to_frame(angle_degrees=-15.0, scale=2.2, shift=(55.0, 48.0))
    frame = cv2.warpAffine(canonical_image(), forward, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    landmarks = transform_points(canonical_landmarks(), forward)[None].astype(np.float32)

    aligned, _ = align_frames(frame[None], landmarks, CROP, EYE_DISTANCE, EYE_Y, 1)

    eyes = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)
    ys, xs = np.mgrid[0:CROP, 0:CROP]
    for x, y in eyes:
        near = (xs - x) ** 2 + (ys - y) ** 2 <= 16
        weights = np.where(near, aligned[0, :, :, 0].astype(float) - 100, 0).clip(0)
        centroid = (np.sum(weights * xs) / weights.sum(), np.sum(weights * ys) / weights.sum())
        assert centroid == pytest.approx((x, y), abs=0.6)


def test_align_follows_moving_head():
    shifts = [(50.0, 40.0), (57.0, 44.0), (61.0, 39.0)]
    angles = [0.0, 10.0, -8.0]
    landmarks = np.stack([
        transform_points(canonical_landmarks(), crop_to_frame(angle, 1.5, shift))
        for angle, shift in zip(angles, shifts)
    ]).astype(np.float32)  # (N, 68, 2)
    frames = np.zeros((NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)

    _, aligned_landmarks = align_frames(frames, landmarks, CROP, EYE_DISTANCE, EYE_Y, 1)

    expected = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)
    np.testing.assert_allclose(eye_centres(aligned_landmarks.astype(float)),
                               np.broadcast_to(expected, (NUM_FRAMES, 2, 2)), atol=1e-3)


def test_align_smooths_eye_track():
    # The head moves 2 px right per frame; a 3-frame average is exact inside the track and
    # lags by half a step at both ends.
    num_frames, step, scale = 5, 2.0, 1.5
    landmarks = np.stack([
        transform_points(canonical_landmarks(), crop_to_frame(0.0, scale, (50 + step * i, 45)))
        for i in range(num_frames)
    ]).astype(np.float32)  # (5, 68, 2)
    frames = np.zeros((num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)

    _, aligned_landmarks = align_frames(frames, landmarks, CROP, EYE_DISTANCE, EYE_Y, 3)

    eyes = eye_centres(aligned_landmarks.astype(float))  # (5, 2, 2)
    expected = canonical_eye_positions(CROP, EYE_DISTANCE, EYE_Y)
    np.testing.assert_allclose(eyes[1:-1], np.broadcast_to(expected, (3, 2, 2)), atol=1e-3)
    # The lag is step / 2 / scale crop pixels. At frame 0 the smoothed eye is ahead of the
    # real one, so the real eye lands left of canonical, and at the last frame right of it.
    lag = step / 2 / scale
    np.testing.assert_allclose(eyes[0, :, 0] - expected[:, 0], [-lag, -lag], atol=1e-3)
    np.testing.assert_allclose(eyes[-1, :, 0] - expected[:, 0], [lag, lag], atol=1e-3)


def test_smooth_track_known_values():
    track = np.array([0.0, 0.0, 3.0, 0.0, 6.0])
    np.testing.assert_allclose(smooth_track(track, 3), [0.0, 1.0, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(smooth_track(track, 5), [1.0, 0.75, 1.8, 2.25, 3.0])
    np.testing.assert_array_equal(smooth_track(track, 1), track)


def test_smooth_track_keeps_constant():
    track = np.full((6, 2, 2), 7.25)
    np.testing.assert_array_equal(smooth_track(track, 5), track)


@pytest.mark.parametrize("window", [0, 2, 4, -1, 1.0])
def test_smooth_track_rejects_window(window):
    with pytest.raises(ValueError, match="window"):
        smooth_track(np.zeros(4), window)


def test_similarity_rejects_coincident_eyes():
    with pytest.raises(ValueError, match="coincident"):
        similarity_from_eyes(np.array([5.0, 5.0]), np.array([5.0, 5.0]), CROP)


def test_align_rejects_nan_eyes():
    landmarks = np.repeat(canonical_landmarks()[None], 2, axis=0).astype(np.float32)
    landmarks[1, RIGHT_EYE[0]] = np.nan
    frames = np.zeros((2, HEIGHT, WIDTH, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"frames \[1\]"):
        align_frames(frames, landmarks, CROP)


def test_align_rejects_count_mismatch():
    landmarks = np.repeat(canonical_landmarks()[None], 2, axis=0).astype(np.float32)
    frames = np.zeros((3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="same number of frames"):
        align_frames(frames, landmarks, CROP)


@pytest.mark.parametrize(
    ("image_size", "eye_distance", "eye_y", "name"),
    [(1, 0.35, 0.4, "image_size"), (40, 0.0, 0.4, "eye_distance"), (40, 0.35, 1.2, "eye_y")],
)
def test_canonical_rejects_geometry(image_size, eye_distance, eye_y, name):
    with pytest.raises(ValueError, match=name):
        canonical_eye_positions(image_size, eye_distance, eye_y)
