"""Tests for siamlib.models.siam with B=2 clips, T=3 frames, C=3 channels, 32x32 frames."""

import itertools

import pytest
import torch

from siamlib.models.siam import SIAM, SPATIAL_ATTENTIONS, SIAMConfig

B, T, C, S = 2, 3, 3, 32
CHANNELS = (4, 6, 8, 10)


def small_config(**overrides) -> SIAMConfig:
    values = dict(image_size=S, channels=CHANNELS, hidden_size=7, attention_size=5, dropout=0.0)
    return SIAMConfig(**{**values, **overrides})


@pytest.fixture
def clips() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    frames = torch.rand(B, T, C, S, S)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    return frames, mask


def trained_like(model: SIAM) -> SIAM:
    """Give the zero-initialised head non-zero weights so the age depends on the input."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.head.weight.normal_()
    return model


@pytest.mark.parametrize(
    "spatial_attention, after_block", list(itertools.product(SPATIAL_ATTENTIONS, [1, 2, 3, 4]))
)
def test_siam_output_shapes(clips, spatial_attention, after_block):
    frames, mask = clips
    config = small_config(spatial_attention=spatial_attention, attention_after_block=after_block)
    output = SIAM(config)(frames, mask)

    side = S // 2**after_block
    assert config.attention_map_size == side
    assert output.age.shape == (B,)
    assert output.spatial_attention.shape == (B, T, side, side)
    assert output.temporal_attention.shape == (B, T)
    assert torch.equal(output.spatial_attention[0, 2], torch.zeros(side, side))
    assert output.temporal_attention[0, 2].item() == 0.0


def test_siam_no_spatial_attention_map_is_ones(clips):
    frames, mask = clips
    output = SIAM(small_config(spatial_attention="none"))(frames, mask)
    assert torch.equal(output.spatial_attention[mask], torch.ones(5, 4, 4))


def test_siam_flatten_keeps_positions():
    # 32x32 frames through four stride-2 blocks leave a 2x2 map of CHANNELS[-1] channels.
    config = small_config(frame_pooling="flatten")
    assert config.frame_feature_size == CHANNELS[-1] * 2 * 2
    assert small_config().frame_feature_size == CHANNELS[-1]
    assert SIAM(config).lstm.input_size == CHANNELS[-1] * 4


def test_siam_default_config_map_size():
    config = SIAMConfig()
    assert (config.image_size, config.attention_after_block) == (64, 3)
    assert config.attention_map_size == 8


def test_siam_untrained_predicts_age_mean(clips):
    frames, mask = clips
    output = SIAM(small_config(), age_mean=31.5, age_std=12.0)(frames, mask)
    assert torch.equal(output.age, torch.full((B,), 31.5))


def test_siam_head_scaled_by_age_std(clips):
    frames, mask = clips
    model = trained_like(SIAM(small_config(), age_mean=30.0, age_std=1.0)).eval()
    scaled = SIAM(small_config(), age_mean=30.0, age_std=10.0).eval()
    scaled.load_state_dict({**model.state_dict(), "age_std": torch.tensor(10.0)})
    assert torch.allclose(scaled(frames, mask).age - 30, 10 * (model(frames, mask).age - 30))


@pytest.mark.parametrize(
    "spatial_attention, frame_pooling", [("indexed", "mean"), ("none", "mean"), ("indexed", "flatten")]
)
def test_siam_padding_invariance(clips, spatial_attention, frame_pooling):
    frames, mask = clips
    config = small_config(spatial_attention=spatial_attention, frame_pooling=frame_pooling)
    model = trained_like(SIAM(config)).eval()
    padded_frames = torch.cat([frames, torch.rand(B, 2, C, S, S)], dim=1)  # (B, 5, C, S, S)
    padded_mask = torch.cat([mask, torch.zeros(B, 2, dtype=torch.bool)], dim=1)  # (B, 5)

    short = model(frames, mask)
    padded = model(padded_frames, padded_mask)
    assert short.age.abs().max() > 1e-3
    assert torch.allclose(short.age, padded.age, atol=1e-6)
    assert torch.equal(short.temporal_attention, padded.temporal_attention[:, :T])
    assert torch.equal(short.spatial_attention, padded.spatial_attention[:, :T])
    assert torch.equal(padded.temporal_attention[:, T:], torch.zeros(B, 2))


def test_siam_padding_invariance_in_train_mode(clips):
    # BatchNorm uses batch statistics in train mode; they must come from valid frames only.
    frames, mask = clips
    model = trained_like(SIAM(small_config())).train()
    padded_frames = torch.cat([frames, torch.rand(B, 2, C, S, S)], dim=1)  # (B, 5, C, S, S)
    padded_mask = torch.cat([mask, torch.zeros(B, 2, dtype=torch.bool)], dim=1)  # (B, 5)
    assert torch.allclose(model(frames, mask).age, model(padded_frames, padded_mask).age, atol=1e-5)


def test_siam_padding_between_frames(clips):
    frames, _ = clips
    model = trained_like(SIAM(small_config())).eval()
    compact = model(frames[:1, :2], torch.ones(1, 2, dtype=torch.bool))
    gap_frames = torch.stack([frames[0, 0], torch.rand(C, S, S), frames[0, 1]])  # (3, C, S, S)
    gap_frames = gap_frames.unsqueeze(0)  # (1, 3, C, S, S)
    with_gap = model(gap_frames, torch.tensor([[True, False, True]]))
    assert torch.allclose(compact.age, with_gap.age, atol=1e-6)
    assert torch.allclose(compact.temporal_attention[0], with_gap.temporal_attention[0, [0, 2]])
    assert with_gap.temporal_attention[0, 1].item() == 0.0


def test_siam_depends_on_frame_order(clips):
    frames, _ = clips
    model = trained_like(SIAM(small_config())).eval()
    mask = torch.ones(1, T, dtype=torch.bool)
    forward = model(frames[:1], mask).age
    backward = model(frames[:1].flip(1), mask).age
    assert not torch.allclose(forward, backward)


def test_siam_empty_clip_raises(clips):
    frames, _ = clips
    mask = torch.tensor([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match=r"clips \[1\] have none"):
        SIAM(small_config())(frames, mask)


def test_siam_wrong_frame_size_raises(clips):
    frames, mask = clips
    with pytest.raises(ValueError, match="frames must have shape"):
        SIAM(small_config(image_size=64))(frames, mask)


def test_siam_gradients_reach_attention(clips):
    frames, mask = clips
    model = trained_like(SIAM(small_config())).train()
    model(frames, mask).age.sum().backward()
    assert model.spatial_attention.weight.grad.abs().sum() > 0
    assert model.temporal_pooling.proj.weight.grad.abs().sum() > 0


def test_config_from_dict_reads_lists():
    values = {"channels": [8, 16], "image_size": 16, "attention_after_block": 2}
    config = SIAMConfig.from_dict(values)
    assert config.channels == (8, 16)
    assert config.attention_map_size == 4


def test_config_from_dict_unknown_key_raises():
    with pytest.raises(ValueError, match="unknown SIAMConfig keys"):
        SIAMConfig.from_dict({"hidden": 3})


@pytest.mark.parametrize(
    "overrides, argument",
    [
        ({"attention_after_block": 5}, "attention_after_block"),
        ({"attention_after_block": 0}, "attention_after_block"),
        ({"image_size": 40}, "image_size"),
        ({"spatial_attention": "cbam"}, "spatial_attention"),
        ({"spatial_gate": "tanh"}, "spatial_gate"),
        ({"temporal_pooling": "max"}, "temporal_pooling"),
        ({"frame_pooling": "max"}, "frame_pooling"),
        ({"dropout": 1.0}, "dropout"),
        ({"channels": ()}, "channels"),
    ],
)
def test_config_invalid_value_raises(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        SIAMConfig(**overrides)
