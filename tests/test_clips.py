"""Tests for the clip cache: frame sampling, per-video extraction, the Haar fallback and caching."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import skimage.data

from siamlib.landmarks import LEFT_EYE, RIGHT_EYE, eye_centres
from siamlib.video.align import canonical_eye_positions
import siamlib.video.clips as clips_module
from siamlib.video.clips import (
    build_clip_cache,
    load_clip_cache,
    load_sampled_indices,
    sample_indices,
)
from siamlib.video.decode import write_video
from siamlib.video.extract import PreprocessSettings
from siamlib.video.haar import fill_gaps, landmarks_from_eyes

# Distinct sizes: frames H=48 x W=64, clip length T=6, crop side S=24, video lengths 9 and 4.
HEIGHT, WIDTH, CLIP_FRAMES, CROP = 48, 64, 6, 24
LONG_FRAMES, SHORT_FRAMES = 9, 4
FPS = 10.0
RIGHT_EYE_XY, LEFT_EYE_XY = np.array([24.0, 20.0]), np.array([40.0, 20.0])


def make_video(num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw frames with white squares on the eyes and a landmark track that matches them."""
    frames = np.full((num_frames, HEIGHT, WIDTH, 3), 60, dtype=np.uint8)
    for x, y in (RIGHT_EYE_XY, LEFT_EYE_XY):
        frames[:, int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = 255

    rng = np.random.default_rng(num_frames)
    landmarks = rng.uniform(10, 38, size=(num_frames, 68, 2)).astype(np.float32)
    offsets = np.array([[-2, 0], [-1, -1], [1, -1], [2, 0], [1, 1], [-1, 1]], dtype=np.float32)
    landmarks[:, list(RIGHT_EYE)] = RIGHT_EYE_XY + offsets
    landmarks[:, list(LEFT_EYE)] = LEFT_EYE_XY + offsets
    return frames, landmarks


@pytest.fixture()
def dataset(tmp_path):
    """Write three videos with landmark files, the middle one corrupt."""
    videos_dir, landmarks_dir = tmp_path / "videos", tmp_path / "landmarks"
    videos_dir.mkdir()
    landmarks_dir.mkdir()
    rows = []
    for name, num_frames, age in (("001_spontaneous_smile_1.mp4", LONG_FRAMES, 31),
                                  ("002_deliberate_smile_1.mp4", None, 45),
                                  ("003_spontaneous_smile_2.mp4", SHORT_FRAMES, 12)):
        path = videos_dir / name
        frames, landmarks = make_video(num_frames or LONG_FRAMES)
        np.save(landmarks_dir / f"{path.stem}.npy", landmarks)
        if num_frames is None:
            path.write_bytes(b"\x00\x01 not an mp4 at all " * 40)
        else:
            write_video(path, frames, FPS)
        rows.append({"video": name, "path": str(path), "subject": len(rows) + 1, "age": age})
    return pd.DataFrame(rows), landmarks_dir, tmp_path / "cache"


def settings(num_frames=CLIP_FRAMES, image_size=CROP, **kwargs) -> PreprocessSettings:
    return PreprocessSettings(num_frames, image_size, **kwargs)


def read_bytes(cache_dir) -> dict[str, bytes]:
    names = ["clips.npy", "mask.npy", "index.csv"]
    names += [f"tracks/{path.name}" for path in sorted((cache_dir / "tracks").iterdir())]
    return {name: (cache_dir / name).read_bytes() for name in names}


def test_sample_indices_longer_video():
    indices, mask = sample_indices(10, 4)
    np.testing.assert_array_equal(indices, [0, 3, 6, 9])
    assert mask.all()
    indices, _ = sample_indices(11, 3)
    np.testing.assert_array_equal(indices, [0, 5, 10])


def test_sample_indices_strictly_increasing():
    for num_available in range(5, 40):
        indices, mask = sample_indices(num_available, 5)
        assert np.all(np.diff(indices) > 0)
        assert indices[0] == 0
        assert indices[-1] == num_available - 1
        assert mask.all()


def test_sample_indices_shorter_video():
    indices, mask = sample_indices(3, 5)
    np.testing.assert_array_equal(indices, [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(mask, [True, True, True, False, False])
    assert np.all(np.diff(indices) >= 0)


def test_sample_indices_equal_length():
    indices, mask = sample_indices(6, 6)
    np.testing.assert_array_equal(indices, np.arange(6))
    assert mask.all()


@pytest.mark.parametrize(("num_available", "num_frames", "name"),
                         [(0, 4, "num_available"), (5, 0, "num_frames"), (5, 2.0, "num_frames")])
def test_sample_indices_rejects_counts(num_available, num_frames, name):
    with pytest.raises(ValueError, match=name):
        sample_indices(num_available, num_frames)


def test_cache_keeps_good_videos(dataset, caplog):
    annotations, landmarks_dir, cache_dir = dataset
    with caplog.at_level(logging.INFO, logger="siamlib.video.clips"):
        index = build_clip_cache(annotations, landmarks_dir, cache_dir, settings(smoothing_window=3),
                                 progress=False, workers=1)

    assert index["status"].tolist() == ["ok", "skipped", "ok"]
    assert index["row"].tolist() == [0, -1, 1]
    assert index["num_decoded"].tolist() == [LONG_FRAMES, 0, SHORT_FRAMES]
    assert index.loc[[0, 2], "fps"].tolist() == [FPS, FPS]
    assert np.isnan(index.loc[1, "fps"])
    assert index.loc[[0, 2], "reason"].tolist() == ["", ""]
    assert "FFmpeg failed to open it" in index.loc[1, "reason"]
    assert "Skipped video 002_deliberate_smile_1.mp4" in caplog.text
    assert "2 of 3 videos used" in caplog.text


def test_cache_index_csv(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    index = build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                             progress=False, workers=1)

    numeric = ["fps", "face_fraction", "longest_gap_s", "landmark_jitter", "max_faces",
               "rotation", "frame_interval_cv"]
    written = pd.read_csv(cache_dir / "index.csv", keep_default_na=False,
                          na_values={column: [""] for column in numeric})
    assert written.columns.tolist() == [
        "video", "path", "subject", "age", "row", "num_decoded", "fps", "status", "reason",
        "landmark_source", "face_fraction", "longest_gap_s", "landmark_jitter", "max_faces",
        "rotation", "frame_interval_cv",
    ]
    pd.testing.assert_frame_equal(written, index, check_dtype=False)
    assert written["landmark_source"].tolist() == ["file", "", "file"]
    assert written.loc[[0, 2], "face_fraction"].tolist() == [1.0, 1.0]
    assert written.loc[[0, 2], "longest_gap_s"].tolist() == [0.0, 0.0]
    assert written.loc[[0, 2], "rotation"].tolist() == [0, 0]
    # Constant-rate video: every frame interval is the same.
    np.testing.assert_allclose(written.loc[[0, 2], "frame_interval_cv"], 0, atol=1e-9)
    assert written.loc[1, ["face_fraction", "landmark_jitter"]].isna().all()


def test_cache_array_shapes(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)

    clips = np.load(cache_dir / "clips.npy", mmap_mode="r")
    mask = np.load(cache_dir / "mask.npy")
    assert isinstance(clips, np.memmap)
    assert clips.shape == (2, CLIP_FRAMES, CROP, CROP, 3)
    assert clips.dtype == np.uint8
    assert mask.shape == (2, CLIP_FRAMES)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[0], [True] * CLIP_FRAMES)
    np.testing.assert_array_equal(mask[1], [True] * SHORT_FRAMES + [False] * 2)
    assert not clips[1, SHORT_FRAMES:].any()


def test_cache_clips_aligned(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)

    clips = np.load(cache_dir / "clips.npy")
    for x, y in np.rint(canonical_eye_positions(CROP)).astype(int):
        assert clips[0, :, y, x].min() > 200
        assert clips[1, :SHORT_FRAMES, y, x].min() > 200
    # The top-left corner and the bottom centre of the crop show the grey background.
    assert clips[0, :, 2, 2].max() < 90
    assert clips[0, :, CROP - 3, CROP // 2].max() < 90


def test_cache_track_files(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(smoothing_window=3),
                     progress=False, workers=1)

    tracks_dir = cache_dir / "tracks"
    assert sorted(path.name for path in tracks_dir.iterdir()) == [
        "001_spontaneous_smile_1.npz", "003_spontaneous_smile_2.npz",
    ]
    assert not (cache_dir / ".parts").exists()
    with np.load(tracks_dir / "001_spontaneous_smile_1.npz") as track:
        _, landmarks = make_video(LONG_FRAMES)
        np.testing.assert_array_equal(track["landmarks"], landmarks)
        assert track["aligned_landmarks"].shape == (LONG_FRAMES, 68, 2)
        assert track["matrices"].shape == (LONG_FRAMES, 2, 3)
        np.testing.assert_allclose(track["eye_centres"][0], [RIGHT_EYE_XY, LEFT_EYE_XY])
        np.testing.assert_array_equal(track["indices"], [0, 2, 3, 5, 6, 8])
        assert track["mask"].all()
        assert float(track["fps"]) == FPS
        assert str(track["landmark_source"]) == "file"
        aligned_eyes = eye_centres(track["aligned_landmarks"].astype(float))
        np.testing.assert_allclose(
            aligned_eyes, np.broadcast_to(canonical_eye_positions(CROP), (LONG_FRAMES, 2, 2)),
            atol=1e-4,
        )


def test_cache_rerun_identical_bytes(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    first = read_bytes(cache_dir)
    shutil.rmtree(cache_dir)  # nothing to reuse: the second build computes every video again
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=2)
    second = read_bytes(cache_dir)
    assert sorted(first) == sorted(second)
    assert len(first) == 5
    for name in first:
        assert first[name] == second[name], name


def test_load_cache_ok_rows(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)

    clips, mask, index = load_clip_cache(cache_dir)
    assert isinstance(clips, np.memmap)
    assert clips.shape == (2, CLIP_FRAMES, CROP, CROP, 3)
    assert mask.shape == (2, CLIP_FRAMES)
    assert index["video"].tolist() == ["001_spontaneous_smile_1.mp4", "003_spontaneous_smile_2.mp4"]
    assert index["row"].tolist() == [0, 1]
    assert index["age"].tolist() == [31, 12]
    assert index["track_path"].tolist() == [
        str(cache_dir / "tracks" / "001_spontaneous_smile_1.npz"),
        str(cache_dir / "tracks" / "003_spontaneous_smile_2.npz"),
    ]


def test_load_sampled_indices_padding(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    _, _, index = load_clip_cache(cache_dir)

    sampled = load_sampled_indices(index)

    np.testing.assert_array_equal(sampled, [[0, 2, 3, 5, 6, 8], [0, 1, 2, 3, -1, -1]])
    assert sampled.dtype == np.int64


def test_load_cache_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.csv"):
        load_clip_cache(tmp_path)


def test_cache_skips_bad_landmarks(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    _, landmarks = make_video(LONG_FRAMES)
    np.save(landmarks_dir / "001_spontaneous_smile_1.npy", landmarks[:-1])
    (landmarks_dir / "003_spontaneous_smile_2.npy").unlink()

    index = build_clip_cache(annotations, landmarks_dir, cache_dir, settings(landmarks="dataset"),
                             progress=False, workers=1)

    assert index["status"].tolist() == ["skipped"] * 3
    assert index.loc[0, "reason"] == (
        f"landmarks have {LONG_FRAMES - 1} frames but the video decoded {LONG_FRAMES}"
    )
    assert index.loc[0, "num_decoded"] == LONG_FRAMES
    assert index.loc[0, "fps"] == FPS
    assert index.loc[2, "reason"].startswith("landmarks file not found")
    clips, mask, ok_rows = load_clip_cache(cache_dir)
    assert clips.shape == (0, CLIP_FRAMES, CROP, CROP, 3)
    assert mask.shape == (0, CLIP_FRAMES)
    assert len(ok_rows) == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"num_frames": 0}, "num_frames"), ({"image_size": 1}, "image_size"),
     ({"smoothing_window": 4}, "smoothing_window"), ({"landmarks": "mediapipe"}, "landmarks"),
     ({"fps": 0}, "fps"), ({"min_face_fraction": 1.5}, "min_face_fraction"),
     ({"tracker": {"detect_every": 0}}, "detect_every"),
     ({"tracker": {"detection_sise": 256}}, "detection_sise")],
)
def test_settings_reject_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PreprocessSettings(**({"num_frames": CLIP_FRAMES, "image_size": CROP} | kwargs))


def test_settings_from_params_rejects_unknown_key():
    with pytest.raises(ValueError, match="image_sise"):
        PreprocessSettings.from_params({"num_frames": 4, "image_sise": 32})


def test_cache_rejects_workers(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    with pytest.raises(ValueError, match="workers"):
        build_clip_cache(annotations, landmarks_dir, cache_dir, settings(), progress=False,
                         workers=0)


def test_cache_rejects_duplicate_stems(dataset):
    annotations, landmarks_dir, cache_dir = dataset
    doubled = pd.concat([annotations, annotations.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="unique file stems"):
        build_clip_cache(doubled, landmarks_dir, cache_dir, settings(), progress=False)


def test_fill_gaps_interpolates():
    track = np.array([np.nan, 2.0, np.nan, np.nan, 8.0, np.nan])
    np.testing.assert_allclose(fill_gaps(track), [2.0, 2.0, 4.0, 6.0, 8.0, 8.0])
    with pytest.raises(ValueError, match="no valid frame"):
        fill_gaps(np.full(3, np.nan))


def test_haar_landmarks_keep_eyes():
    eyes = np.array([[[10.0, 20.0], [30.0, 21.0]], [[11.0, 19.0], [31.0, 22.0]]])
    landmarks = landmarks_from_eyes(eyes)
    assert landmarks.shape == (2, 68, 2)
    np.testing.assert_allclose(eye_centres(landmarks.astype(float)), eyes)
    assert np.isnan(landmarks[:, :36]).all()
    assert np.isnan(landmarks[:, 48:]).all()


def test_haar_fallback_no_face(dataset):
    annotations, _, cache_dir = dataset
    index = build_clip_cache(annotations.iloc[:1], None, cache_dir, settings(landmarks="haar"),
                             progress=False, workers=1)
    assert index.loc[0, "status"] == "skipped"
    assert index.loc[0, "reason"] == f"no face detected in any of {LONG_FRAMES} frames"


def test_haar_fallback_finds_eyes(tmp_path):
    # scikit-image's astronaut portrait; her pupils sit near (204, 101) and (243, 101).
    portrait = skimage.data.astronaut()[20:220, 120:330]  # (200, 210, 3) around the face
    true_eyes = np.array([[204.0 - 120, 101.0 - 20], [243.0 - 120, 101.0 - 20]])
    shifts = [0, 2, 4, 6, 8]
    frames = np.stack([np.roll(portrait, shift, axis=1) for shift in shifts])  # (5, 200, 210, 3)
    path = tmp_path / "004_spontaneous_smile_1.mp4"
    write_video(path, frames, FPS)
    annotations = pd.DataFrame({"video": [path.name], "path": [str(path)]})

    index = build_clip_cache(annotations, None, tmp_path / "cache",
                             settings(3, landmarks="haar", smoothing_window=1),
                             progress=False, workers=1)

    assert index.loc[0, "status"] == "ok"
    with np.load(tmp_path / "cache" / "tracks" / f"{path.stem}.npz") as track:
        assert str(track["landmark_source"]) == "haar"
        eyes = eye_centres(track["landmarks"].astype(float))  # (5, 2, 2)
        assert np.isnan(track["landmarks"][:, 48:]).all()
    for frame, shift in enumerate(shifts):
        expected = true_eyes + np.array([shift, 0.0])
        np.testing.assert_allclose(eyes[frame], expected, atol=6.0)


@pytest.fixture()
def extracted_videos(monkeypatch):
    """Record the file name of every video that build_clip_cache extracts (not reused)."""
    calls = []
    original = clips_module.extract_clip

    def counting_extract(video_path, *args):
        calls.append(os.path.basename(video_path))
        return original(video_path, *args)

    monkeypatch.setattr(clips_module, "extract_clip", counting_extract)
    return calls


def test_cache_resumes_after_interruption(dataset, caplog, extracted_videos):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    complete = read_bytes(cache_dir)
    extracted_videos.clear()

    # An interrupted build: index.csv never written, one video's result lost.
    (cache_dir / "index.csv").unlink()
    (cache_dir / "videos" / "003_spontaneous_smile_2.npz").unlink()
    with caplog.at_level(logging.INFO, logger="siamlib.video.clips"):
        build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                         progress=False, workers=1)

    assert extracted_videos == ["003_spontaneous_smile_2.mp4"]
    assert "Reused the results of 2 of 3 videos" in caplog.text
    assert read_bytes(cache_dir) == complete


def test_cache_recomputes_after_changes(dataset, extracted_videos):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    extracted_videos.clear()

    # A replaced video file is processed again; the others are reused.
    frames, _ = make_video(LONG_FRAMES)
    write_video(annotations.loc[0, "path"], frames[::-1].copy(), FPS + 1)
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    assert extracted_videos == ["001_spontaneous_smile_1.mp4"]

    # New settings invalidate every stored result, including the skipped video's.
    extracted_videos.clear()
    index = build_clip_cache(annotations, landmarks_dir, cache_dir, settings(image_size=16),
                             progress=False, workers=1)
    assert sorted(extracted_videos) == sorted(annotations["video"])
    clips, _, _ = load_clip_cache(cache_dir)
    assert clips.shape == (2, CLIP_FRAMES, 16, 16, 3)
    assert index.loc[0, "fps"] == FPS + 1


def test_cache_recomputes_after_code_change(dataset, extracted_videos, monkeypatch):
    annotations, landmarks_dir, cache_dir = dataset
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)
    extracted_videos.clear()

    monkeypatch.setattr(clips_module, "_code_fingerprint", lambda: {"code": "changed"})
    build_clip_cache(annotations, landmarks_dir, cache_dir, settings(),
                     progress=False, workers=1)

    assert sorted(extracted_videos) == sorted(annotations["video"])
