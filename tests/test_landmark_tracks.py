"""Choosing the landmark tracks behind the dynamics features: the dataset's, or dlib's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skimage.data

from siamlib.baselines import handcrafted, tracks
from siamlib.video.decode import write_video

FPS = 25.0


def cache_index(tmp_path, sources):
    """An index like the clip cache's, with one track file per source ("file" or "haar")."""
    rows = []
    for number, source in enumerate(sources):
        path = tmp_path / f"cached_{number}.npz"
        np.savez(path, landmarks=np.zeros((3, 68, 2)), fps=np.float64(FPS),
                 landmark_source=np.str_(source))
        rows.append({"video": f"{number:03d}_spontaneous_smile_1.mp4", "track_path": str(path)})
    return pd.DataFrame(rows)


def astronaut_video(path, num_frames, blank=()):
    """Write a video of the astronaut portrait's face; frames in `blank` are black."""
    face = skimage.data.astronaut()[20:240, 110:330]  # (220, 220, 3)
    frames = np.repeat(face[None], num_frames, axis=0)
    frames[list(blank)] = 0
    write_video(path, frames, FPS)
    return path


@pytest.mark.parametrize("sources, setting, expected", [
    (["file", "file"], "auto", "dataset"),
    (["file", "haar"], "auto", "dlib"),
    (["haar", "haar"], "dataset", "dataset"),
    (["file", "file"], "dlib", "dlib"),
])
def test_resolve_landmark_source(tmp_path, sources, setting, expected):
    index = cache_index(tmp_path, sources)
    assert tracks.resolve_landmark_source(setting, index) == expected


def test_resolve_landmark_source_rejects_unknown(tmp_path):
    with pytest.raises(ValueError, match="baseline.landmarks must be one of"):
        tracks.resolve_landmark_source("mediapipe", cache_index(tmp_path, ["file"]))


def test_dataset_source_uses_cached_tracks(tmp_path):
    index = cache_index(tmp_path, ["file", "file"])
    paths, summary = tracks.dynamics_track_paths(index, "dataset", tmp_path / "dlib")
    assert paths == index["track_path"].tolist()
    assert summary is None
    assert not (tmp_path / "dlib").exists()


def test_dlib_tracks_feed_the_dynamics_features(tmp_path):
    """Two real-face videos: one tracked throughout, one that loses the face too long."""
    videos = pd.DataFrame({
        "video": ["000_spontaneous_smile_1.mp4", "001_spontaneous_smile_1.mp4"],
        "path": [str(astronaut_video(tmp_path / "a.mp4", 20)),
                 str(astronaut_video(tmp_path / "b.mp4", 20, blank=range(5, 15)))],
    })
    paths, summary = tracks.dynamics_track_paths(
        videos, "dlib", tmp_path / "dlib", tracker={"max_gap_s": 0.2}, workers=1,
        progress=False,
    )
    assert summary["valid"].tolist() == [True, False]
    assert "no face in 10 consecutive frames" in summary["reason"].iloc[1]

    index = videos.assign(subject=[0, 1], age=[30, 40], gender="female",
                          smile_type="spontaneous", track_path=paths)
    clips = np.zeros((2, 4, 16, 16, 3), dtype=np.uint8)
    sampled = np.tile(np.array([0, 6, 12, 18]), (2, 1))
    features = handcrafted.extract_features(index, clips, sampled >= 0, sampled,
                                            lbp_grid=(2, 2), progress=False,
                                            dynamics_tracks=paths)
    assert features[handcrafted.DYNAMICS_UNAVAILABLE].tolist() == [0, 1]
    assert features[handcrafted.DYNAMICS_REASON].iloc[1] == summary["reason"].iloc[1]
    # A still face: dlib's whole-pixel landmarks jitter by a pixel at most, so the lip
    # signal stays within a few hundredths of a mouth width, and every value is defined.
    assert abs(features.loc[0, "onset.lip.max_amplitude"]) < 0.05
    dynamics_columns = handcrafted.feature_columns(features, "dynamics")
    assert np.isfinite(features[dynamics_columns].to_numpy(dtype=float)).all()


def test_dlib_source_reports_undecodable_videos(tmp_path, monkeypatch):
    def skipped(videos, out_dir, **options):
        return pd.DataFrame({"video": videos["video"], "track_path": "", "status": "skipped",
                             "reason": "cannot decode x.mp4", "valid": False,
                             "detected_fraction": 0.0})

    import siamlib.video.dlib_tracker as dlib_tracker

    monkeypatch.setattr(dlib_tracker, "track_videos", skipped)
    videos = pd.DataFrame({"video": ["x.mp4"], "path": ["x.mp4"]})
    with pytest.raises(ValueError, match=r"could not read 1 videos(.|\n)*tracks.csv"):
        tracks.dynamics_track_paths(videos, "dlib", tmp_path)
