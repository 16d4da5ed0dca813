"""Tests for one video's extraction: settings, time resampling, jitter and the single decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import yaml

from siamlib.video import decode
from siamlib.video.dlib_tracker import DlibTracker
from siamlib.video.extract import (
    ClipExtractionError,
    PreprocessSettings,
    _monotonic_timestamps,
    extract_clip,
    landmark_jitter,
)
from siamlib.video.sampling import resample_frames

FPS = 25.0
CROP = 160
FACE_TOP, FACE_LEFT = 40, 140
"""A CROP x CROP window of scikit-image's astronaut around her face (as in test_dlib_tracker)."""


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory):
    """12 frames of the astronaut's face moving right by 2 pixels a frame, H.264."""
    image = skimage.data.astronaut()  # (512, 512, 3)
    frames = np.stack([
        image[FACE_TOP:FACE_TOP + CROP, FACE_LEFT - 2 * i:FACE_LEFT - 2 * i + CROP]
        for i in range(12)
    ])  # (12, CROP, CROP, 3)
    path = tmp_path_factory.mktemp("extract") / "astronaut.mp4"
    decode.write_video(path, np.ascontiguousarray(frames), FPS)
    return path


def test_settings_from_params_yaml():
    params = yaml.safe_load(open("params.yaml"))["preprocess"]
    settings = PreprocessSettings.from_params(params)
    assert settings.num_frames == params["num_frames"]
    assert settings.tracker.detect_every == params["tracker"]["detect_every"]
    assert settings.to_dict()["tracker"]["max_gap_s"] == params["tracker"]["max_gap_s"]


def test_resample_frames_constant_rate():
    times = np.arange(10) / 50.0
    np.testing.assert_array_equal(resample_frames(times, None), np.arange(10))
    np.testing.assert_array_equal(resample_frames(times, 25.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(resample_frames(times, 50.0), np.arange(10))


def test_resample_frames_variable_rate_even_in_time():
    # Frames bunched at the start, then sparse: the resampled frames follow the clock.
    times = np.array([0.0, 0.01, 0.02, 0.03, 0.2, 0.4, 0.6])
    np.testing.assert_array_equal(resample_frames(times, 10.0), [0, 3, 4, 4, 5, 5, 6])


@pytest.mark.parametrize(("times", "fps"), [([], None), ([0.0, 0.1, 0.05], None),
                                            ([0.0, 0.1], 0.0)])
def test_resample_frames_rejects(times, fps):
    with pytest.raises(ValueError):
        resample_frames(np.array(times), fps)


def test_landmark_jitter_steady_and_noisy():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 100, size=(68, 2))
    steady = base + np.arange(20)[:, None, None] * np.array([1.5, -0.5])  # (20, 68, 2)
    detected = np.ones(20, dtype=bool)
    assert landmark_jitter(steady, detected) == pytest.approx(0.0, abs=1e-9)
    noisy = steady + rng.normal(0, 1.0, size=steady.shape)
    small_noise = steady + rng.normal(0, 0.1, size=steady.shape)
    assert landmark_jitter(noisy, detected) > 5 * landmark_jitter(small_noise, detected) > 0
    # Only triples of detected frames count; none here.
    assert np.isnan(landmark_jitter(noisy, np.arange(20) % 2 == 0))


def test_single_pass_matches_second_decode(astronaut_video, monkeypatch):
    settings = PreprocessSettings(num_frames=5, image_size=32, landmarks="dlib")
    single = extract_clip(astronaut_video, settings)
    assert single.quality["face_fraction"] == 1.0

    # A header without a frame count, or with a wrong one, forces the second decode.
    for claimed in (None, 7):
        monkeypatch.setattr(decode.VideoReader, "expected_frames", lambda self: claimed)
        twice = extract_clip(astronaut_video, settings)
        np.testing.assert_array_equal(twice.clip, single.clip)
        np.testing.assert_array_equal(twice.indices, single.indices)
    np.testing.assert_array_equal(single.indices, [0, 3, 6, 8, 11])
    assert single.clip[single.mask].std() > 10  # real pixels, not zeros


def test_fps_setting_resamples_by_time(astronaut_video):
    settings = PreprocessSettings(num_frames=20, image_size=32, landmarks="dlib", fps=12.5)
    extracted = extract_clip(astronaut_video, settings)
    # 12 frames at 25 fps span 0.44 s: at 12.5 fps that is 6 frames, every other one.
    assert extracted.mask.sum() == 6
    np.testing.assert_array_equal(extracted.indices[extracted.mask], [0, 2, 4, 6, 8, 10])
    np.testing.assert_allclose(extracted.timestamps, np.arange(12) / FPS)


def test_carried_frames_undone_when_face_leaves():
    image = skimage.data.astronaut()
    face = image[FACE_TOP:FACE_TOP + CROP, FACE_LEFT:FACE_LEFT + CROP]
    frames = [face] * 11 + [np.full_like(face, 128)] * 9  # the face leaves after frame 10
    tracker = DlibTracker(detect_every=5)

    track = tracker.track_frames(frames, FPS)

    # Detection runs on frames 0, 5, 10 and 15; frames 11-14 were fitted in a carried box
    # and count as undetected once frame 15 finds no face.
    np.testing.assert_array_equal(track.detected, [True] * 11 + [False] * 9)
    np.testing.assert_array_equal(track.num_faces[11:], 0)


def test_haar_face_fraction_enforced(tmp_path):
    portrait = skimage.data.astronaut()[20:220, 120:330]  # (200, 210, 3) around the face
    frames = np.full((20,) + portrait.shape, 128, dtype=np.uint8)
    frames[[0, 10]] = portrait
    path = tmp_path / "sparse.mp4"
    decode.write_video(path, frames, FPS)

    with pytest.raises(ClipExtractionError, match="only 2 of 20 frames"):
        extract_clip(path, PreprocessSettings(num_frames=8, image_size=32, landmarks="haar"))


def test_backward_timestamps_replaced(caplog):
    times = np.array([0.0, 0.04, 0.12, 0.08, 0.16])  # B-frame order written as presentation times
    fixed = _monotonic_timestamps(times, FPS, Path("clip.avi"))
    np.testing.assert_allclose(fixed, np.arange(5) / FPS)
    assert "clip.avi: frame timestamps go backwards at frame 3" in caplog.text
    steady = np.arange(5) / FPS
    np.testing.assert_array_equal(_monotonic_timestamps(steady, FPS, Path("clip.mp4")), steady)
