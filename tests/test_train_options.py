"""Tests for the optional training settings: age-group loss weights and clip augmentation.

Toy clips: N=16 clips of T=6 frames, 32x32 pixels, with brightness rising with age. Some clips
end in padding, and one has a single valid frame.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import siamlib.training.fold as fold_module
from siamlib.models.siam import SIAMConfig
from siamlib.training.augment import (
    augment_batch,
    spatial_jitter,
    temporal_crop,
    temporal_crop_min_length,
)
from siamlib.training.checkpoint import load_checkpoint, save_checkpoint
from siamlib.training.config import TrainConfig
from siamlib.training.dataset import ClipDataset, WeightedClipDataset, age_group_weights
from siamlib.training.fold import batch_loss, train_fold

N, T, S = 16, 6, 32
TRAIN_ROWS = np.arange(12)
VAL_ROWS = np.arange(12, 16)
MODEL_CONFIG = SIAMConfig(image_size=S, channels=(4, 8, 8, 8), hidden_size=8, attention_size=4)
ALL_OPTIONS = dict(
    reweight_age_groups=True, temporal_augment=True, spatial_augment=True, horizontal_flip=True
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ages = np.array([9, 12, 15, 18, 22, 25, 27, 28, 29, 33, 47, 65, 11, 24, 36, 52], dtype=float)
    brightness = ages[:, None, None, None, None] / 70 * 255
    clips = np.clip(brightness + rng.normal(0, 20, (N, T, S, S, 3)), 0, 255).astype(np.uint8)
    mask = np.ones((N, T), dtype=bool)
    mask[::3, -2:] = False
    mask[5, 1:] = False
    return clips, mask, ages


def train_config(**overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=4, learning_rate=3e-3, patience=5, device="cpu")
    return TrainConfig(**{**values, **overrides})


def run_fold(toy, path, config, seed=0):
    clips, mask, ages = toy
    return train_fold(MODEL_CONFIG, config, clips, mask, ages, TRAIN_ROWS, VAL_ROWS, path,
                      seed=seed, progress=False)


def assert_same_weights(first: nn.Module, second: nn.Module) -> None:
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for name in first_state:
        assert torch.equal(first_state[name], second_state[name]), name


def weights_differ(first: nn.Module, second: nn.Module) -> bool:
    second_state = second.state_dict()
    return any(not torch.equal(value, second_state[name])
               for name, value in first.state_dict().items())


def numbered_clip(mask: list[bool], size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Return a (T, 3, size, size) float clip whose frame t is filled with t + 1, and its mask."""
    frames = torch.arange(1, len(mask) + 1, dtype=torch.float32)
    return frames[:, None, None, None].expand(-1, 3, size, size).clone(), torch.tensor(mask)


# Config


def test_config_defaults_turn_options_off():
    config = TrainConfig()
    assert config.reweight_age_groups is False
    assert config.age_group_edges == (8, 10, 20, 30, 40, 50, 60)
    assert config.temporal_augment is False
    assert config.temporal_min_fraction == 0.6
    assert config.spatial_augment is False


def test_config_from_dict_reads_new_keys():
    config = TrainConfig.from_dict({
        "reweight_age_groups": True, "age_group_edges": [10, 30, 50], "temporal_augment": True,
        "temporal_min_fraction": "0.5", "spatial_augment": True,
    })
    assert config.reweight_age_groups is True
    assert config.age_group_edges == (10, 30, 50)
    assert config.temporal_augment is True
    assert config.temporal_min_fraction == 0.5
    assert config.spatial_augment is True


@pytest.mark.parametrize(
    "overrides, argument",
    [({"temporal_min_fraction": 0.0}, "temporal_min_fraction"),
     ({"temporal_min_fraction": 1.5}, "temporal_min_fraction"),
     ({"age_group_edges": ()}, "age_group_edges"),
     ({"age_group_edges": (10, 10)}, "age_group_edges"),
     ({"age_group_edges": (20, 10)}, "age_group_edges"),
     ({"age_group_edges": (8.5, 10)}, "age_group_edges")],
)
def test_config_invalid_option_raises(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        TrainConfig(**overrides)


def test_config_from_dict_non_integer_edge_raises():
    with pytest.raises(ValueError, match=r"age_group_edges\[1\]"):
        TrainConfig.from_dict({"age_group_edges": [8, "x"]})


def test_config_list_edges_become_tuple():
    assert TrainConfig(age_group_edges=[8, 20]).age_group_edges == (8, 20)


# Age-group weights and the loss


def test_age_group_weights_inverse_frequency():
    weights = age_group_weights(np.array([20, 21, 29, 45]), (8, 10, 20, 30, 40, 50, 60))
    np.testing.assert_allclose(weights, [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0)


def test_age_group_weights_three_groups():
    # Groups 8-19 (2 clips), 20-39 (1 clip), 40+ (3 clips); raw weights 1/2, 1, 1/3.
    weights = age_group_weights(np.array([9, 70, 15, 25, 40, 41]), (8, 20, 40))
    raw = np.array([1 / 2, 1 / 3, 1 / 2, 1, 1 / 3, 1 / 3])
    np.testing.assert_allclose(weights, raw / raw.mean(), rtol=1e-12)


def test_age_group_weights_one_group_all_one():
    np.testing.assert_array_equal(age_group_weights(np.array([21.0, 25.5, 29.0]), (8, 20, 30)),
                                  np.ones(3))


def test_age_group_weights_young_in_first_group():
    weights = age_group_weights(np.array([5, 9, 12]), (8, 10))
    np.testing.assert_allclose(weights, [0.75, 0.75, 1.5], rtol=1e-12)


def test_age_group_weights_empty_raises():
    with pytest.raises(ValueError, match="non-empty"):
        age_group_weights(np.array([]), (8, 10))


def test_weighted_dataset_item_has_weight(toy):
    clips, mask, ages = toy
    weights = np.arange(N, dtype=float)
    frames, frame_mask, age, weight = WeightedClipDataset(
        clips, mask, np.array([3, 7]), ages, weights
    )[1]
    plain = ClipDataset(clips, mask, np.array([3, 7]), ages)[1]
    assert torch.equal(frames, plain[0])
    assert torch.equal(frame_mask, plain[1])
    assert age.item() == pytest.approx(ages[7])
    assert weight.dtype == torch.float32
    assert weight.item() == 7.0


def test_weighted_dataset_negative_weight_raises(toy):
    clips, mask, ages = toy
    with pytest.raises(ValueError, match="non-negative"):
        WeightedClipDataset(clips, mask, np.array([0]), ages, -np.ones(N))


@pytest.mark.parametrize("loss", ["l1", "mse"])
def test_batch_loss_weighted_hand_computed(loss):
    prediction = torch.tensor([10.0, 20.0, 30.0, 40.0])
    target = torch.tensor([12.0, 19.0, 30.0, 36.0])
    weight = torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0])
    errors = [2.0, 1.0, 0.0, 4.0] if loss == "l1" else [4.0, 1.0, 0.0, 16.0]
    expected = (2 / 3 * errors[0] + 2 / 3 * errors[1] + 2 / 3 * errors[2] + 2.0 * errors[3]) / 4

    weighted, unweighted = batch_loss(prediction, target, loss, weight)
    assert weighted.item() == pytest.approx(expected)
    assert unweighted.item() == pytest.approx(sum(errors) / 4)


@pytest.mark.parametrize("loss, module", [("l1", nn.L1Loss()), ("mse", nn.MSELoss())])
def test_batch_loss_unweighted_matches_module(loss, module):
    prediction = torch.tensor([10.3, 20.7, 30.1], requires_grad=True)
    target = torch.tensor([12.0, 19.0, 30.0])
    minimised, reported = batch_loss(prediction, target, loss)
    assert torch.equal(minimised, module(prediction, target))
    assert reported is minimised


def test_batch_loss_weights_reach_gradient():
    prediction = torch.tensor([10.0, 20.0], requires_grad=True)
    target = torch.tensor([12.0, 19.0])
    weighted, _ = batch_loss(prediction, target, "l1", torch.tensor([0.5, 1.5]))
    weighted.backward()
    # d/dp mean(w * |p - t|) = w * sign(p - t) / B
    assert prediction.grad.tolist() == pytest.approx([-0.25, 0.75])


def test_batch_loss_unknown_loss_raises():
    with pytest.raises(ValueError, match="huber"):
        batch_loss(torch.zeros(2), torch.zeros(2), "huber")


# Temporal augmentation


@pytest.mark.parametrize("min_fraction", [0.6, 0.3, 1.0])
@pytest.mark.parametrize("mask", [[True] * 10, [True] * 7 + [False] * 3, [True, False] * 4])
def test_temporal_crop_strided_subsequence(mask, min_fraction):
    frames, frame_mask = numbered_clip(mask)
    valid_numbers = (torch.tensor(mask).nonzero().flatten() + 1).tolist()
    min_length = math.ceil(min_fraction * len(valid_numbers))
    strides = set()
    for seed in range(40):
        cropped, cropped_mask = temporal_crop(
            frames, frame_mask, min_fraction, torch.Generator().manual_seed(seed)
        )
        assert cropped.shape == frames.shape
        assert cropped.dtype == frames.dtype
        assert cropped_mask.dtype == torch.bool
        length = int(cropped_mask.sum())
        assert length >= min_length
        assert cropped_mask[:length].all()
        assert not cropped_mask[length:].any()
        assert (cropped[length:] == 0).all()

        numbers = cropped[:length, 0, 0, 0].long().tolist()
        positions = [valid_numbers.index(number) for number in numbers]
        steps = {b - a for a, b in zip(positions, positions[1:])}
        assert len(steps) <= 1
        assert steps <= {1, 2}
        strides |= steps
    if min_fraction <= 0.5:
        assert strides == {1, 2}
    if min_fraction == 1.0:
        assert strides == {1}


def test_temporal_crop_draws_differ():
    frames, frame_mask = numbered_clip([True] * 12)
    generator = torch.Generator().manual_seed(0)
    crops = {
        tuple(temporal_crop(frames, frame_mask, 0.5, generator)[0][:, 0, 0, 0].tolist())
        for _ in range(20)
    }
    assert len(crops) > 5


def test_temporal_crop_single_valid_frame():
    frames, frame_mask = numbered_clip([False, False, True, False])
    cropped, cropped_mask = temporal_crop(frames, frame_mask, 0.6, torch.Generator())
    assert cropped_mask.tolist() == [True, False, False, False]
    assert cropped[0, 0, 0, 0].item() == 3.0
    assert (cropped[1:] == 0).all()


def test_temporal_crop_inputs_unchanged():
    frames, frame_mask = numbered_clip([True] * 6)
    original = frames.clone()
    temporal_crop(frames, frame_mask, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(frames, original)
    assert frame_mask.all()


def test_temporal_crop_no_valid_frame_raises():
    frames, frame_mask = numbered_clip([False] * 3)
    with pytest.raises(ValueError, match="no valid frame"):
        temporal_crop(frames, frame_mask, 0.6, torch.Generator())


def test_temporal_crop_min_length_float_error():
    assert temporal_crop_min_length(10, 0.7) == 7
    assert temporal_crop_min_length(10, 0.61) == 7
    assert temporal_crop_min_length(3, 0.01) == 1
    assert temporal_crop_min_length(16, 1.0) == 16


# Spatial augmentation


def smooth_frame(size: int = S) -> torch.Tensor:
    """Return a (3, size, size) frame in [0.1, 0.9] with a gradient and a bright square."""
    ramp = torch.linspace(0.1, 0.7, size)
    frame = (ramp[None, :, None] + ramp[None, None, :]).expand(3, -1, -1) / 2
    frame = frame.clone()
    frame[:, size // 4 : size // 2, size // 4 : size // 2] = 0.9
    return frame


def test_spatial_jitter_same_in_every_frame():
    clip = smooth_frame().expand(5, -1, -1, -1).clone()
    augmented = spatial_jitter(clip, torch.Generator().manual_seed(3))
    for t in range(1, 5):
        assert torch.equal(augmented[t], augmented[0])


def test_spatial_jitter_changes_clip_in_range():
    clip = torch.stack([smooth_frame(), smooth_frame().flip(-1)])
    for seed in range(5):
        augmented = spatial_jitter(clip, torch.Generator().manual_seed(seed))
        assert augmented.shape == clip.shape
        assert augmented.dtype == clip.dtype
        assert augmented.min() >= 0.0
        assert augmented.max() <= 1.0
        assert not torch.allclose(augmented, clip, atol=1e-3)


def test_spatial_jitter_seeded_and_leaves_global_rng():
    clip = smooth_frame().expand(2, -1, -1, -1).clone()
    global_state = torch.get_rng_state()
    first = spatial_jitter(clip, torch.Generator().manual_seed(9))
    second = spatial_jitter(clip, torch.Generator().manual_seed(9))
    other = spatial_jitter(clip, torch.Generator().manual_seed(10))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), global_state)


def test_spatial_jitter_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        spatial_jitter(torch.zeros(3, S, S), torch.Generator())


def test_augment_batch_off_returns_inputs_and_draws_nothing():
    frames, mask = torch.rand(2, 4, 3, 8, 8), torch.ones(2, 4, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    out_frames, out_mask = augment_batch(frames, mask, generator)
    assert out_frames is frames
    assert out_mask is mask
    assert torch.equal(generator.get_state(), state)


def test_augment_batch_each_clip_cropped():
    clip, clip_mask = numbered_clip([True] * 5 + [False] * 3, size=8)
    frames = torch.stack([clip, clip, clip]) / 10
    mask = torch.stack([clip_mask] * 3)
    out_frames, out_mask = augment_batch(frames, mask, torch.Generator().manual_seed(0), 0.6,
                                         spatial=True)
    assert out_frames.shape == frames.shape
    assert out_mask.shape == mask.shape
    assert (out_mask.sum(dim=1) >= 3).all()
    assert torch.equal(frames[:, :, 0, 0, 0], clip[None, :, 0, 0, 0].expand(3, -1) / 10)


# Training with the options


def test_train_fold_all_options_repeatable(toy, tmp_path):
    config = train_config(**ALL_OPTIONS)
    first, first_history = run_fold(toy, tmp_path / "first.pt", config, seed=4)
    second, second_history = run_fold(toy, tmp_path / "second.pt", config, seed=4)
    assert np.isfinite(first_history["train_loss"]).all()
    assert np.isfinite(first_history["val_mae"]).all()
    pd.testing.assert_frame_equal(first_history, second_history)
    assert_same_weights(first, second)


def test_train_fold_options_change_result(toy, tmp_path):
    plain, _ = run_fold(toy, tmp_path / "plain.pt", train_config())
    for name in ("reweight_age_groups", "temporal_augment", "spatial_augment"):
        model, _ = run_fold(toy, tmp_path / f"{name}.pt", train_config(**{name: True}))
        assert weights_differ(model, plain), name


def test_train_fold_augments_training_batches_only(toy, tmp_path, monkeypatch):
    batch_sizes = []
    original = fold_module.augment_batch

    def counting(frames, *args):
        batch_sizes.append(len(frames))
        return original(frames, *args)

    monkeypatch.setattr(fold_module, "augment_batch", counting)
    run_fold(toy, tmp_path / "fold.pt", train_config(temporal_augment=True, spatial_augment=True))
    assert sum(batch_sizes) == 2 * len(TRAIN_ROWS)


def test_train_fold_reported_loss_unweighted(toy, tmp_path):
    # One batch contains every training clip, so epoch 1 reports the loss of the initial model,
    # which the weights must not change.
    config = dict(epochs=1, batch_size=len(TRAIN_ROWS))
    plain, plain_history = run_fold(toy, tmp_path / "plain.pt", train_config(**config))
    weighted, weighted_history = run_fold(
        toy, tmp_path / "weighted.pt", train_config(**config, reweight_age_groups=True)
    )
    assert weighted_history["train_loss"][0] == plain_history["train_loss"][0]
    assert weights_differ(weighted, plain)


def reference_epoch(model, loader, optimizer, train_config, device, generator, group=None):
    """The epoch loop as it was before the options existed: flips only, unweighted loss."""
    model.train()
    loss_fn = nn.L1Loss() if train_config.loss == "l1" else nn.MSELoss()
    total_loss, num_clips = 0.0, 0
    for frames, frame_mask, target in loader:
        if train_config.horizontal_flip:
            flip = torch.rand(len(frames), generator=generator) < 0.5
            frames[flip] = frames[flip].flip(-1)
        prediction = model(frames.to(device), frame_mask.to(device)).age
        loss = loss_fn(prediction, target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(target)
        num_clips += len(target)
    return total_loss / num_clips


@pytest.mark.parametrize("overrides", [dict(loss="l1"), dict(loss="mse", horizontal_flip=True)])
def test_train_fold_options_off_match_reference(toy, tmp_path, monkeypatch, overrides):
    config = train_config(
        reweight_age_groups=False, temporal_augment=False, spatial_augment=False, **overrides
    )
    model, history = run_fold(toy, tmp_path / "current.pt", config, seed=2)
    monkeypatch.setattr(fold_module, "_train_epoch", reference_epoch)
    reference, reference_history = run_fold(toy, tmp_path / "reference.pt", config, seed=2)
    pd.testing.assert_frame_equal(history, reference_history, check_exact=True)
    assert_same_weights(model, reference)


def test_train_fold_reuses_checkpoint_without_new_fields(toy, tmp_path, monkeypatch):
    path = tmp_path / "fold.pt"
    model, history = run_fold(toy, path, train_config())
    checkpoint = load_checkpoint(path)
    for name in ("reweight_age_groups", "age_group_edges", "temporal_augment",
                 "temporal_min_fraction", "spatial_augment"):
        del checkpoint["train_config"][name]
    save_checkpoint(checkpoint, path)

    def fail(*args, **kwargs):
        raise AssertionError("a finished fold must not be trained again")

    monkeypatch.setattr(fold_module, "_train_epoch", fail)
    loaded, loaded_history = run_fold(toy, path, train_config())
    pd.testing.assert_frame_equal(history, loaded_history)
    assert_same_weights(model, loaded)


def test_train_fold_option_change_retrains(toy, tmp_path):
    path = tmp_path / "fold.pt"
    run_fold(toy, path, train_config(epochs=1))
    run_fold(toy, path, train_config(epochs=1, temporal_augment=True))
    assert load_checkpoint(path)["train_config"]["temporal_augment"] is True
