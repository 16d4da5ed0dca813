"""Tests for the synthetic smile-video generator."""

import av
import numpy as np
import pandas as pd
import pytest

from siamlib import landmarks as lm
from siamlib.data.synthetic import SyntheticConfig, generate_dataset
from siamlib.data.synthetic.clip import sample_subject, synthesize_clip
from siamlib.data.synthetic.cues import CUE_SPECS
from siamlib.data.synthetic.encode import write_h264
from siamlib.data.synthetic.population import (
    AGE_RANGES, CLIPS_PER_SUBJECT, allocate, sample_population,
)
from siamlib.data.uvanemo import FILE_DETAILS_NAME, read_file_details

TINY = SyntheticConfig(num_subjects=3, fps=10, frame_size=48, min_duration_s=1.5,
                       max_duration_s=2.0)
NOISE_OFF = SyntheticConfig(cue_noise=0.0, nuisance=0.0, frame_size=96)


def decode(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    annotations = generate_dataset(root, TINY, seed=5, progress=False, workers=1)
    return root, annotations


def make_clip(age, smile_type, config=NOISE_OFF, gender="female"):
    subject = sample_subject(1, age, gender, config, seed=0)
    return synthesize_clip("001_x.mp4", subject, smile_type, 1, config, seed=0)


def lip_corner_signal(landmarks):
    """Mean distance of the lip corners from their first-frame midpoint, per frame."""
    corners = landmarks[:, list(lm.LIP_CORNERS)]  # (N, 2, 2)
    midpoint = corners[0].mean(axis=0)
    return np.linalg.norm(corners - midpoint, axis=-1).mean(axis=1)  # (N,)


def rise_frames(signal):
    """Frames from 10% to 90% of the rise above the first frame."""
    rise = signal - signal[0]
    return int(np.argmax(rise >= 0.9 * rise.max()) - np.argmax(rise >= 0.1 * rise.max()))


def eyelid_aperture(landmarks):
    """Mean lower-lid minus upper-lid height of both eyes, per frame."""
    lower = landmarks[:, [41, 40, 47, 46], 1].mean(axis=1)
    upper = landmarks[:, [37, 38, 43, 44], 1].mean(axis=1)
    return lower - upper


def test_config_rejects_unknown_key():
    with pytest.raises(ValueError, match="unknown SyntheticConfig keys"):
        SyntheticConfig.from_dict({"num_subjects": 3, "frames_per_second": 25})


@pytest.mark.parametrize(
    "values",
    [{"frame_size": 33}, {"num_subjects": 0}, {"min_duration_s": 4.0, "max_duration_s": 3.0},
     {"cue_noise": -1.0}, {"crf": 60}, {"preset": "quick"}],
)
def test_config_rejects_invalid_value(values):
    with pytest.raises(ValueError):
        SyntheticConfig.from_dict(values)


def test_allocate_known_answer():
    counts = allocate(60, [count for _, _, count in AGE_RANGES])
    assert counts.tolist() == [8, 15, 10, 8, 12, 4, 2, 1]


def test_population_full_size_matches_uvanemo():
    subjects, videos = sample_population(400, seed=0)
    for first, last, count in AGE_RANGES:
        assert subjects["age"].between(first, last).sum() == count
    assert (subjects["gender"] == "female").sum() == 185
    clips = videos.groupby("subject").size().value_counts().to_dict()
    assert clips == CLIPS_PER_SUBJECT
    assert len(videos) == 1240
    assert 0.45 < (videos["smile_type"] == "spontaneous").mean() < 0.52
    both = (videos.groupby("subject")["smile_type"].nunique() == 2).sum()
    assert 295 < both < 355


def test_population_names_and_takes():
    _, videos = sample_population(20, seed=3)
    assert videos["video"].is_unique
    for row in videos.itertuples():
        word = "deliberate" if row.smile_type == "posed" else "spontaneous"
        assert row.video == f"{row.subject:03d}_{word}_smile_{row.take}.mp4"


def test_generate_returns_annotations(tiny_root):
    root, annotations = tiny_root
    assert list(annotations.columns) == ["video", "path", "subject", "age", "gender",
                                         "smile_type"]
    assert annotations["subject"].nunique() == 3
    assert set(annotations["smile_type"]) <= {"spontaneous", "posed"}
    details = read_file_details(root / FILE_DETAILS_NAME)
    assert details["video"].tolist() == annotations["video"].tolist()


def test_generate_landmarks_match_frames(tiny_root):
    root, annotations = tiny_root
    for row in annotations.itertuples():
        stem = row.video[:-4]
        frames = decode(row.path)
        landmarks = np.load(root / "landmarks" / f"{stem}.npy")
        truth = np.load(root / "ground_truth" / f"{stem}.npz")
        assert landmarks.dtype == np.float32
        assert landmarks.shape == (len(frames), 68, 2)
        assert truth["smile_intensity"].shape == (len(frames),)
        assert frames[0].shape == (48, 48, 3)
        assert 15 <= len(frames) <= 20


def test_generate_cues_table(tiny_root):
    root, annotations = tiny_root
    cues = pd.read_csv(root / "cues.csv")
    assert cues["video"].tolist() == annotations["video"].tolist()
    assert list(cues.columns[:5]) == ["video", "subject", "age", "gender", "smile_type"]
    for spec in CUE_SPECS:
        assert spec.name in cues.columns


def test_generate_card_lists_every_cue(tiny_root):
    root, _ = tiny_root
    card = (root / "dataset_card.md").read_text(encoding="utf-8")
    for spec in CUE_SPECS:
        assert f"| {spec.name} |" in card


def test_generate_deterministic_across_workers(tiny_root, tmp_path):
    root, annotations = tiny_root
    generate_dataset(tmp_path, TINY, seed=5, progress=False, workers=2)
    for name in (FILE_DETAILS_NAME, "cues.csv", "dataset_card.md"):
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes(), name
    for video in annotations["video"]:
        stem = video[:-4]
        assert (tmp_path / "videos" / video).read_bytes() == (root / "videos" / video).read_bytes()
        other = tmp_path / "landmarks" / f"{stem}.npy"
        assert other.read_bytes() == (root / "landmarks" / f"{stem}.npy").read_bytes()
        other = tmp_path / "ground_truth" / f"{stem}.npz"
        assert other.read_bytes() == (root / "ground_truth" / f"{stem}.npz").read_bytes()


def test_generate_seed_changes_output(tiny_root, tmp_path):
    root, _ = tiny_root
    config = SyntheticConfig.from_dict({**TINY.to_dict(), "num_subjects": 1})
    generate_dataset(tmp_path, config, seed=6, progress=False, workers=1)
    first = sorted((tmp_path / "landmarks").glob("*.npy"))[0]
    assert first.read_bytes() != (root / "landmarks" / first.name).read_bytes()


def test_decoded_eyes_darker_than_cheek(tiny_root):
    root, annotations = tiny_root
    for row in annotations.itertuples():
        stem = row.video[:-4]
        frames = decode(row.path)
        landmarks = np.load(root / "landmarks" / f"{stem}.npy")
        blink = np.load(root / "ground_truth" / f"{stem}.npz")["blink"]
        i = int(np.argmin(blink))
        grey = frames[i].astype(float).mean(axis=-1)
        points = landmarks[i]
        for eye in lm.eye_centres(points):
            x, y = np.round(eye).astype(int)
            cheek = (points[2] + points[31]) / 2
            cx, cy = np.round(cheek).astype(int)
            assert grey[y, x] < grey[cy, cx] - 20, row.video


def test_clip_starts_and_ends_neutral():
    clip = make_clip(40, "spontaneous", config=SyntheticConfig())
    assert clip.smile[0] == 0.0
    assert clip.smile[-1] == 0.0
    assert clip.smile.max() > 0.3
    # Head motion moves the frame landmarks, so compare the face-unit mouth shape.
    mouth = list(lm.MOUTH)
    np.testing.assert_allclose(clip.face_points[0, mouth], clip.face_points[-1, mouth])


def test_crows_feet_grow_with_age():
    young = make_clip(10, "spontaneous")
    old = make_clip(70, "spontaneous")
    assert young.cue_values()["crows_feet_apex_contrast"] == 0.0
    assert old.cue_values()["crows_feet_apex_contrast"] > 0.3


def outer_corner_brightness(clip, frame_index):
    """Mean grey level beside both outer eye corners in one rendered frame."""
    frame, points = clip.renderer.render_frame(
        clip.face_points[frame_index], clip.pose[frame_index],
        float(clip.crows_feet[frame_index]), float(clip.nasolabial[frame_index]),
        np.random.default_rng(0),
    )
    grey = frame.astype(float).mean(axis=-1)
    means = []
    for corner, inner, outward in ((36, 39, -1), (45, 42, 1)):
        width = abs(points[inner, 0] - points[corner, 0])
        xs = sorted([points[corner, 0] + outward * 0.1 * width,
                     points[corner, 0] + outward * 0.7 * width])
        y = points[corner, 1]
        box = grey[int(y - 0.35 * width):int(y + 0.35 * width) + 1,
                   int(xs[0]):int(xs[1]) + 1]
        means.append(box.mean())
    return float(np.mean(means))


def test_crows_feet_visible_in_pixels():
    darkening = {}
    for age in (10, 70):
        clip = make_clip(age, "spontaneous")
        apex = int(np.argmax(clip.smile))
        darkening[age] = outer_corner_brightness(clip, 0) - outer_corner_brightness(clip, apex)
    assert abs(darkening[10]) < 1.0
    assert darkening[70] > 3.0


def test_posed_onset_faster():
    spontaneous = make_clip(40, "spontaneous")
    posed = make_clip(40, "posed")
    assert posed.timeline.onset_duration_s < spontaneous.timeline.onset_duration_s
    posed_rise = rise_frames(lip_corner_signal(posed.landmarks))
    spontaneous_rise = rise_frames(lip_corner_signal(spontaneous.landmarks))
    assert posed_rise < spontaneous_rise


def test_posed_less_eyelid_narrowing():
    spontaneous = eyelid_aperture(make_clip(40, "spontaneous").landmarks)
    posed = eyelid_aperture(make_clip(40, "posed").landmarks)
    assert posed.min() / posed[0] > spontaneous.min() / spontaneous[0] + 0.1


def test_onset_slower_and_weaker_with_age():
    young = make_clip(10, "spontaneous")
    old = make_clip(70, "spontaneous")
    young_signal = lip_corner_signal(young.landmarks)
    old_signal = lip_corner_signal(old.landmarks)
    assert rise_frames(old_signal) > rise_frames(young_signal)
    young_width = np.linalg.norm(young.landmarks[0, 54] - young.landmarks[0, 48])
    old_width = np.linalg.norm(old.landmarks[0, 54] - old.landmarks[0, 48])
    young_amplitude = (young_signal.max() - young_signal[0]) / young_width
    old_amplitude = (old_signal.max() - old_signal[0]) / old_width
    assert old_amplitude < young_amplitude


def test_child_eyes_lower_in_face():
    child = make_clip(8, "posed").cue_values()
    adult = make_clip(40, "posed").cue_values()
    assert child["eye_line_ratio"] > adult["eye_line_ratio"] + 0.05
    assert child["lower_face_ratio"] < adult["lower_face_ratio"]


# Documented direction of each age cue: +1 grows with age, -1 shrinks with age.
AGE_DIRECTIONS = {
    "crows_feet_strength": 1, "forehead_line_contrast": 1, "nasolabial_strength": 1,
    "skin_texture": 1, "lip_thickness": -1, "eye_line_ratio": -1, "eye_width": -1,
    "lower_face_ratio": 1, "onset_duration_s": 1, "apex_duration_s": 1,
    "offset_duration_s": 1, "amplitude": -1,
}


@pytest.mark.parametrize("cue", sorted(AGE_DIRECTIONS))
def test_cue_follows_documented_age_direction(cue):
    # Noise-free subjects aged 10 to 70: the cue never moves against its direction and
    # differs between the youngest and the oldest.
    values = np.array([make_clip(age, "spontaneous").cue_values()[cue]
                       for age in (10, 30, 50, 70)])
    steps = AGE_DIRECTIONS[cue] * np.diff(values)
    assert np.all(steps >= -1e-9), values
    assert steps.sum() > 0, values


def test_male_jaw_wider():
    female = make_clip(30, "posed", gender="female").cue_values()
    male = make_clip(30, "posed", gender="male").cue_values()
    assert male["jaw_width_ratio"] > female["jaw_width_ratio"]
    assert male["brow_thickness"] > female["brow_thickness"]


def test_write_h264_repeatable(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(7, 34, 46, 3), dtype=np.uint8)  # (N, H, W, 3)
    assert write_h264(tmp_path / "a.mp4", frames, fps=5) == 7
    write_h264(tmp_path / "b.mp4", frames, fps=5)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    decoded = decode(tmp_path / "a.mp4")
    assert len(decoded) == 7
    assert decoded[0].shape == (34, 46, 3)


def test_write_h264_rejects_odd_size(tmp_path):
    frames = np.zeros((2, 33, 46, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="even"):
        write_h264(tmp_path / "odd.mp4", frames, fps=5)
    assert not list(tmp_path.iterdir())
