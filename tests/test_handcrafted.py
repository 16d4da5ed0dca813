"""Tests of handcrafted feature extraction and the SVR cross-validation loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siamlib.baselines import dynamics, handcrafted
from siamlib.baselines.base import VideoSet, parse_methods, run_baseline
from siamlib.baselines.appearance import appearance_features

FPS = 25.0
NUM_FRAMES = 60  # full-rate frames per track
SAMPLED = np.array([0, 10, 20, 30, 40, -1])  # T = 6 sampled frames, the last one padding
PEAK_FRAME = 22  # lip peak of the planted smile; sampled frame 20 is the closest


def face() -> np.ndarray:
    """Return a simple 68-point face (68, 2): eyes 20 px wide, mouth 24 px wide."""
    points = np.zeros((68, 2))
    points[:, 0] = np.linspace(10, 90, 68)
    points[:, 1] = 50 + 10 * np.sin(np.arange(68))
    points[27:31] = np.c_[np.full(4, 50.0), np.linspace(38, 60, 4)]
    points[33] = (50, 64)
    for first, centre in ((36, 35.0), (42, 65.0)):
        points[first:first + 6] = np.c_[
            [centre - 10, centre - 4, centre + 4, centre + 10, centre + 4, centre - 4],
            [40, 36, 36, 40, 44, 44],
        ]
    points[48] = (38, 80)
    points[54] = (62, 80)
    return points


def smile_track(amplitude: float) -> np.ndarray:
    """Return a track (NUM_FRAMES, 68, 2) whose lip corners peak at PEAK_FRAME."""
    frames = np.arange(NUM_FRAMES)
    lip = amplitude * np.exp(-0.5 * ((frames - PEAK_FRAME) / 6.0) ** 2)  # (N_frames,)
    track = np.repeat(face()[None], NUM_FRAMES, axis=0)
    track[:, 48, 0] -= lip * 24
    track[:, 54, 0] += lip * 24
    return track.astype(np.float32)


def make_inputs(tmp_path: Path, num_videos: int = 3):
    """Write track files and return (index, clips (N, 6, 20, 24, 3), mask (N, 6), sampled)."""
    rng = np.random.default_rng(0)
    rows = []
    for video in range(num_videos):
        path = tmp_path / f"{video:03d}.npz"
        np.savez(path, landmarks=smile_track(0.05 * (video + 1)), fps=np.float64(FPS))
        rows.append({"video": f"{video:03d}_spontaneous_smile_1.mp4", "subject": video,
                     "age": 20 + video, "gender": "female", "smile_type": "spontaneous",
                     "track_path": str(path)})
    index = pd.DataFrame(rows)
    clips = rng.integers(0, 256, size=(num_videos, 6, 20, 24, 3), dtype=np.uint8)
    mask = np.tile(SAMPLED >= 0, (num_videos, 1))  # (N, T)
    sampled = np.tile(SAMPLED, (num_videos, 1))  # (N, T)
    return index, clips, mask, sampled


def test_extract_rows_and_frames(tmp_path):
    index, clips, mask, sampled = make_inputs(tmp_path)
    mask[1, 0] = False  # the second video's first sampled frame is invalid
    features = handcrafted.extract_features(
        index, clips, mask, sampled, lbp_grid=(2, 3), lbp_points=8, progress=False
    )
    assert features["video"].tolist() == index["video"].tolist()
    assert features["peak_frame"].tolist() == [PEAK_FRAME] * 3
    assert features["apex_frame"].tolist() == [20, 20, 20]
    assert features["neutral_frame"].tolist() == [0, 10, 0]
    lbp_columns = [name for name in features.columns if name.startswith("lbp.")]
    assert len(lbp_columns) == 2 * 2 * 3 * 10
    assert (features[handcrafted.DYNAMICS_REASON] == "").all()
    numeric = features.drop(columns=["video", handcrafted.DYNAMICS_REASON])
    assert np.all(np.isfinite(numeric.to_numpy(dtype=float)))


def test_extract_matches_parts(tmp_path):
    index, clips, mask, sampled = make_inputs(tmp_path)
    features = handcrafted.extract_features(
        index, clips, mask, sampled, lbp_grid=(2, 3), lbp_points=8, progress=False
    )
    expected_dynamics = dynamics.dynamics_features(smile_track(0.1), FPS)
    row = features.iloc[1]
    for name, value in expected_dynamics.items():
        assert row[name] == pytest.approx(value), name
    # Apex is sampled position 2 (frame 20), neutral is position 0.
    expected_appearance = appearance_features(clips[1, 0], clips[1, 2], grid=(2, 3), points=8)
    lbp_columns = [name for name in features.columns if name.startswith("lbp.")]
    np.testing.assert_allclose(row[lbp_columns].to_numpy(dtype=float), expected_appearance)
    assert features["onset.lip.max_amplitude"].is_monotonic_increasing


def test_extract_invalid_inputs(tmp_path):
    index, clips, mask, sampled = make_inputs(tmp_path)
    with pytest.raises(ValueError, match="unknown keys"):
        handcrafted.extract_features(index, clips, mask, sampled, dynamics_options={"sigma": 1},
                                     progress=False)
    with pytest.raises(ValueError, match="mask"):
        handcrafted.extract_features(index, clips, mask[:2], sampled, progress=False)
    no_frames = mask.copy()
    no_frames[2] = False
    with pytest.raises(ValueError, match="002_spontaneous_smile_1.mp4"):
        handcrafted.extract_features(index, clips, no_frames, sampled, progress=False)
    missing = index.copy()
    missing.loc[0, "track_path"] = str(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="000_spontaneous_smile_1.mp4"):
        handcrafted.extract_features(missing, clips, mask, sampled, progress=False)


def cv_inputs(num_subjects: int = 16, clips_per_subject: int = 2, num_folds: int = 4):
    """Return (features, index, folds).

    Every dynamics feature is a noisy multiple of one per-subject signal, and age is a smooth
    function of that signal.
    """
    rng = np.random.default_rng(1)
    num_videos = num_subjects * clips_per_subject
    subjects = np.repeat(np.arange(num_subjects), clips_per_subject)  # (N,)
    index = pd.DataFrame({
        "video": [f"{subject:03d}_posed_smile_{take}.mp4"
                  for subject in range(num_subjects) for take in range(clips_per_subject)],
        "subject": subjects,
        "gender": np.where(subjects % 2 == 0, "female", "male"),
        "smile_type": "posed",
    })
    names = dynamics.feature_names()
    signal = rng.uniform(-2, 2, size=num_subjects)[subjects]  # (N,)
    weights = rng.uniform(0.5, 1.5, size=len(names))  # (D,)
    values = signal[:, None] * weights + 0.1 * rng.normal(size=(num_videos, len(names)))  # (N, D)
    index["age"] = np.round(35 + 12 * np.tanh(signal)).astype(int)
    features = pd.DataFrame(values, columns=names)
    features.insert(0, "video", index["video"])
    features["lbp.neutral.r0c0.b0"] = rng.uniform(size=num_videos)
    features["lbp.neutral.r0c0.b1"] = 0.0
    folds = subjects % num_folds  # (N,)
    # A feature that is zero on every training row of fold 0 and nonzero on its test rows.
    features.loc[folds == 0, "phase.flat"] = 1.0
    return features, index, folds


def cv_set(features, index):
    """A VideoSet of the cv_inputs rows; HandcraftedSVR reads no pixels, so clips are blank."""
    clips = np.zeros((len(index), 1, 4, 4, 3), dtype=np.uint8)
    return VideoSet(index, clips, np.ones((len(index), 1), dtype=bool), features)


def svr_spec(**options):
    spec, = parse_methods({"svr": {"class": "siamlib.baselines.handcrafted.HandcraftedSVR",
                                   **options}})
    return spec


def test_cv_predictions_table(tmp_path):
    features, index, folds = cv_inputs()
    predictions = run_baseline(svr_spec(features="both"), cv_set(features, index), folds,
                               seed=0, work_dir=tmp_path, progress=False)
    assert list(predictions.columns) == [
        "method", "video", "subject", "fold", "age", "predicted_age", "gender", "smile_type"
    ]
    assert predictions["method"].unique().tolist() == ["SVR (dynamics+appearance)"]
    assert predictions["video"].tolist() == index["video"].tolist()
    assert predictions["fold"].tolist() == folds.tolist()
    assert np.all(np.isfinite(predictions["predicted_age"]))
    mae = (predictions["predicted_age"] - predictions["age"]).abs().mean()
    mean_mae = (index["age"] - index["age"].mean()).abs().mean()
    assert mae < 0.3 * mean_mae


def test_cv_never_fits_test_subjects(monkeypatch, tmp_path):
    features, index, folds = cv_inputs()
    calls = []

    class RecordingSVR(handcrafted.SVRBaseline):
        def fit(self, X, y, groups):
            calls.append((X.shape, set(np.asarray(groups).tolist())))
            return super().fit(X, y, groups)

    monkeypatch.setattr(handcrafted, "SVRBaseline", RecordingSVR)
    run_baseline(svr_spec(features="dynamics", svr={"C_grid": [10.0]}),
                 cv_set(features, index), folds, seed=0, work_dir=tmp_path, progress=False)
    assert len(calls) == 4
    for fold, (shape, fitted_subjects) in enumerate(calls):
        test_subjects = set(index["subject"][folds == fold].tolist())
        assert not fitted_subjects & test_subjects
        assert shape == ((folds != fold).sum(), len(dynamics.feature_names()))


def test_cv_feature_set_columns():
    features, _, _ = cv_inputs()
    assert len(handcrafted.feature_columns(features, "dynamics")) == len(dynamics.feature_names())
    assert handcrafted.feature_columns(features, "appearance") == [
        "lbp.neutral.r0c0.b0", "lbp.neutral.r0c0.b1"
    ]
    assert len(handcrafted.feature_columns(features, "both")) == len(dynamics.feature_names()) + 2
    with pytest.raises(ValueError, match="feature_set"):
        handcrafted.feature_columns(features, "gabor")
    features["gabor.apex.f0o0.r0c0"] = 1.0
    assert handcrafted.feature_columns(features, "appearance")[-1] == "gabor.apex.f0o0.r0c0"


def test_cv_invalid_inputs(tmp_path):
    features, index, folds = cv_inputs()
    data = cv_set(features, index)
    leaking = folds.copy()
    leaking[1] = (leaking[0] + 1) % 4  # subject 0's second clip in another fold
    with pytest.raises(ValueError, match="more than one fold"):
        run_baseline(svr_spec(), data, leaking, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="rows but index has"):
        cv_set(features.iloc[1:], index)
    with pytest.raises(ValueError, match="unknown keys"):
        svr_spec(svr={"seed": 1})
    with pytest.raises(ValueError, match="folds must be an integer array of shape"):
        run_baseline(svr_spec(), data, folds[:-1], 0, tmp_path, progress=False)


def test_extract_track_without_mouth(tmp_path):
    # A Haar-cascade track stores the eye centres only; every other point is NaN.
    index, clips, mask, sampled = make_inputs(tmp_path)
    eyes_only = np.full((NUM_FRAMES, 68, 2), np.nan, dtype=np.float32)
    eyes_only[:, 36:42] = (35.0, 40.0)
    eyes_only[:, 42:48] = (65.0, 40.0)
    np.savez(index["track_path"].iloc[1], landmarks=eyes_only, fps=np.float64(FPS))

    features = handcrafted.extract_features(index, clips, mask, sampled, progress=False)

    assert features[handcrafted.DYNAMICS_UNAVAILABLE].tolist() == [0, 1, 0]
    dynamics_columns = handcrafted.feature_columns(features, "dynamics")
    assert (features.loc[1, dynamics_columns] == 0).all()
    assert features.loc[0, "onset.lip.max_amplitude"] > 0
    assert features.loc[1, "apex_frame"] == 20  # the middle valid sampled frame
    assert "no lip and eyelid landmarks" in features.loc[1, handcrafted.DYNAMICS_REASON]
    assert features.loc[0, handcrafted.DYNAMICS_REASON] == ""
    numeric = features.drop(columns=["video", handcrafted.DYNAMICS_REASON])
    assert np.all(np.isfinite(numeric.to_numpy(dtype=float)))


def test_extract_invalid_tracker_track_keeps_its_reason(tmp_path):
    # A dlib track that lost the face too long is marked invalid, with NaN in the gap.
    index, clips, mask, sampled = make_inputs(tmp_path)
    landmarks = smile_track(0.1)
    landmarks[30:45] = np.nan
    reason = "no face in 15 consecutive frames (0.60 s) from frame 30; the limit is 0.20 s"
    tracker_paths = []
    for row in range(len(index)):
        path = tmp_path / f"dlib_{row}.npz"
        track = smile_track(0.05 * (row + 1)) if row != 2 else landmarks
        np.savez(path, landmarks=track, fps=np.float64(FPS), valid=np.bool_(row != 2),
                 reason=np.str_(reason if row == 2 else ""))
        tracker_paths.append(str(path))

    features = handcrafted.extract_features(index, clips, mask, sampled, progress=False,
                                            dynamics_tracks=tracker_paths)

    assert features[handcrafted.DYNAMICS_UNAVAILABLE].tolist() == [0, 0, 1]
    assert features.loc[2, handcrafted.DYNAMICS_REASON] == reason
    expected = dynamics.dynamics_features(smile_track(0.1), FPS)
    assert features.loc[1, "onset.lip.max_amplitude"] == pytest.approx(
        expected["onset.lip.max_amplitude"])
    with pytest.raises(ValueError, match="dynamics_tracks has 2 paths for 3 videos"):
        handcrafted.extract_features(index, clips, mask, sampled, progress=False,
                                     dynamics_tracks=tracker_paths[:2])


def test_extract_degenerate_track_is_reported_not_fatal(tmp_path):
    index, clips, mask, sampled = make_inputs(tmp_path)
    track = smile_track(0.1)
    track[0, 54] = track[0, 48]  # zero mouth width in the first frame
    np.savez(index["track_path"].iloc[0], landmarks=track, fps=np.float64(FPS))
    features = handcrafted.extract_features(index, clips, mask, sampled, progress=False)
    assert features[handcrafted.DYNAMICS_UNAVAILABLE].tolist() == [1, 0, 0]
    assert "mouth width" in features.loc[0, handcrafted.DYNAMICS_REASON]


def test_load_features_follows_index_order(tmp_path):
    index, clips, mask, sampled = make_inputs(tmp_path)
    features = handcrafted.extract_features(index, clips, mask, sampled, progress=False)
    path = tmp_path / "features.csv"
    features.iloc[::-1].to_csv(path, index=False)
    loaded = handcrafted.load_features(path, index)
    assert loaded["video"].tolist() == index["video"].tolist()
    assert loaded[handcrafted.DYNAMICS_REASON].tolist() == ["", "", ""]
    np.testing.assert_allclose(loaded["onset.lip.max_amplitude"],
                               features["onset.lip.max_amplitude"], rtol=1e-6)
    extra = pd.concat([index, index.iloc[:1].assign(video="999_posed_smile_1.mp4")])
    with pytest.raises(ValueError, match="no features for 1 videos"):
        handcrafted.load_features(path, extra)
    with pytest.raises(FileNotFoundError, match="run the features stage"):
        handcrafted.load_features(tmp_path / "absent.csv", index)
