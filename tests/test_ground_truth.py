"""Ground truth of the synthetic benchmark: smile phases, informativeness and cue region masks."""

import dataclasses

import numpy as np
import pytest

from siamlib import landmarks as lm
from siamlib.data.synthetic import SyntheticConfig, generate_dataset, latent_cue_table
from siamlib.data.synthetic.clip import sample_subject, synthesize_clip
from siamlib.data.synthetic.cues import CUE_REGION_MASKS, CUE_SPECS, frame_informativeness
from siamlib.data.synthetic.dynamics import PHASE_CODES
from siamlib.data.synthetic.ground_truth import has_ground_truth, load_attention_targets
from siamlib.data.synthetic.regions import MASK_SIZE, REGION_NAMES, region_masks
from siamlib.data.synthetic.render import FaceRenderer
from siamlib.video.align import align_frames

CONFIG = SyntheticConfig(num_subjects=4, frame_size=128, min_duration_s=3.0, max_duration_s=4.0)


def make_clip(age=65, gender="male", smile_type="spontaneous", subject=1):
    spec = sample_subject(subject, age, gender, CONFIG, seed=0)
    return synthesize_clip("x.mp4", spec, smile_type, 1, CONFIG, seed=0)


def test_phases_follow_the_smile():
    clip = make_clip()
    phase = clip.phase
    assert np.all(np.diff(phase) >= 0), "phases must run in time order"
    assert set(np.unique(phase)) == set(PHASE_CODES.values())
    neutral = (phase == PHASE_CODES["neutral_before"]) | (phase == PHASE_CODES["neutral_after"])
    assert np.all(clip.smile[neutral] == 0)
    apex = phase == PHASE_CODES["apex"]
    assert clip.smile[apex].min() > 0.9 * clip.dynamics.amplitude
    onset = phase == PHASE_CODES["onset"]
    assert np.all(np.diff(clip.smile[onset]) > 0)


def test_informativeness_rises_with_smile():
    smile = np.array([0.0, 0.5, 1.0])
    assert np.allclose(frame_informativeness(1.0, smile), [0.275, 0.6375, 1.0])
    low, high = frame_informativeness(0.3, smile), frame_informativeness(0.9, smile)
    assert low[0] == high[0]
    assert np.all(low[1:] < high[1:])
    clip = make_clip()
    assert np.argmax(clip.informativeness) == np.argmax(clip.smile)


def test_every_cue_names_an_existing_mask():
    for spec in CUE_SPECS:
        assert spec.name in CUE_REGION_MASKS, spec.name
        assert CUE_REGION_MASKS[spec.name] in REGION_NAMES + ("",)


def _aligned_difference(clip, frame, renderer_a, renderer_b, crows_feet_b, nasolabial_b):
    """Render one frame twice, align both on the frame's landmarks, return |a - b| (S, S)."""
    points, pose = clip.face_points[frame], clip.pose[frame]
    outputs = []
    for renderer, crows_feet, nasolabial in (
        (renderer_a, float(clip.crows_feet[frame]), float(clip.nasolabial[frame])),
        (renderer_b, crows_feet_b, nasolabial_b),
    ):
        image, landmarks = renderer.render_frame(points, pose, crows_feet, nasolabial,
                                                 np.random.default_rng(0))
        aligned, _ = align_frames(image[None], landmarks[None], MASK_SIZE, smoothing_window=1)
        outputs.append(aligned[0].astype(float))
    return np.abs(outputs[0] - outputs[1]).sum(axis=2)


@pytest.mark.parametrize("region", ["crows_feet", "nasolabial_folds", "forehead_lines"])
def test_rendered_cue_lies_inside_its_mask(region):
    # Remove one cue from the rendering; the pixels that change must be inside its mask.
    clip = make_clip(age=70)
    apex = int(np.argmax(clip.smile))
    renderer = clip.renderer
    without = renderer
    crows_feet, nasolabial = float(clip.crows_feet[apex]), float(clip.nasolabial[apex])
    if region == "crows_feet":
        crows_feet = 0.0
    elif region == "nasolabial_folds":
        nasolabial = 0.0
    else:
        appearance = dataclasses.replace(clip.subject.appearance, forehead_line_contrast=0.0)
        without = FaceRenderer(clip.subject.shape, appearance, clip.subject.identity,
                               clip.clip_nuisance, CONFIG.frame_size)
    difference = _aligned_difference(clip, apex, renderer, without, crows_feet, nasolabial)
    mask = clip.region_masks()[REGION_NAMES.index(region)].astype(bool)
    assert difference.sum() > 100, "the cue should be visible"
    assert difference[mask].sum() / difference.sum() > 0.9
    assert mask.mean() < 0.1


def test_feature_masks_hold_their_aligned_landmarks():
    clip = make_clip(age=30, gender="female")
    frames = np.stack(list(clip.frames()))
    _, aligned = align_frames(frames, clip.landmarks, MASK_SIZE, smoothing_window=1)
    masks = dict(zip(REGION_NAMES, clip.region_masks()))
    for frame in (0, int(np.argmax(clip.smile))):
        jaw = aligned[frame, list(lm.JAW)]
        inner_jaw = jaw + 0.1 * (aligned[frame, lm.NOSE_TIP] - jaw)  # jaw points sit on the edge
        for region, points in (("eyes", aligned[frame, list(lm.RIGHT_EYE + lm.LEFT_EYE)]),
                               ("mouth", aligned[frame, list(lm.MOUTH_OUTER)]),
                               ("face", inner_jaw)):
            x, y = np.round(points).astype(int).T
            inside = masks[region][np.clip(y, 0, MASK_SIZE - 1), np.clip(x, 0, MASK_SIZE - 1)]
            assert inside.mean() >= 0.9, (region, frame)


def test_region_masks_are_binary_and_face_is_largest():
    clip = make_clip()
    masks = clip.region_masks()
    assert masks.shape == (len(REGION_NAMES), MASK_SIZE, MASK_SIZE)
    assert masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    areas = dict(zip(REGION_NAMES, masks.mean(axis=(1, 2))))
    assert all(areas[name] > 0 for name in REGION_NAMES)
    assert areas["face"] == max(areas.values())


def test_region_masks_reject_bad_frames():
    clip = make_clip()
    with pytest.raises(ValueError, match="at least one"):
        region_masks(clip.subject.shape, [])
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        region_masks(clip.subject.shape, [np.zeros((5, 2))])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    config = SyntheticConfig(num_subjects=2, frame_size=64, min_duration_s=2.0,
                             max_duration_s=2.5)
    annotations = generate_dataset(root, config, seed=3, progress=False, workers=1)
    return root, annotations, config


def test_ground_truth_files_hold_masks_and_frame_targets(dataset):
    root, annotations, _ = dataset
    assert has_ground_truth(root)
    for video in annotations["video"]:
        with np.load(root / "ground_truth" / video.replace(".mp4", ".npz")) as truth:
            num_frames = len(truth["smile_intensity"])
            assert truth["smile_phase"].shape == (num_frames,)
            assert truth["informativeness"].shape == (num_frames,)
            assert truth["region_masks"].shape == (len(REGION_NAMES), MASK_SIZE, MASK_SIZE)
            assert tuple(truth["region_names"]) == REGION_NAMES


def test_latent_cue_table_matches_generated_cues(dataset):
    root, _, config = dataset
    written = __import__("pandas").read_csv(root / "cues.csv")
    computed = latent_cue_table(config, seed=3)
    assert list(computed.columns) == list(written.columns)
    assert np.allclose(computed.select_dtypes("number").to_numpy(float),
                       written.select_dtypes("number").to_numpy(float))


def test_load_attention_targets_at_sampled_frames(dataset):
    root, annotations, _ = dataset
    videos = list(annotations["video"])
    indices = np.tile(np.arange(6), (len(videos), 1))
    indices[0, -2:] = -1  # padding
    targets = load_attention_targets(root, videos, indices)
    assert targets.region_names == REGION_NAMES
    assert targets.masks.shape == (len(videos), len(REGION_NAMES), MASK_SIZE, MASK_SIZE)
    assert np.isnan(targets.informativeness[0, -2:]).all()
    assert not targets.apex[0, -2:].any()
    with np.load(root / "ground_truth" / videos[1].replace(".mp4", ".npz")) as truth:
        assert np.allclose(targets.informativeness[1], truth["informativeness"][:6])
        expected_apex = truth["smile_phase"][:6] == PHASE_CODES["apex"]
        assert np.array_equal(targets.apex[1], expected_apex)


def test_load_attention_targets_errors_name_the_file(dataset):
    root, annotations, _ = dataset
    indices = np.zeros((1, 4), int)
    with pytest.raises(FileNotFoundError, match="999_spontaneous_smile_1.npz"):
        load_attention_targets(root, ["999_spontaneous_smile_1.mp4"], indices)
    with pytest.raises(ValueError, match="eye_distance"):
        load_attention_targets(root, annotations["video"][:1], indices, eye_distance=0.5)
    with pytest.raises(ValueError, match="outside"):
        load_attention_targets(root, annotations["video"][:1], np.full((1, 4), 10_000))
