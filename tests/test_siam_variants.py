"""Tests for SIAM's architecture options: the gated LSTM, the bidirectional LSTM and the
ResNet-18 backbone, with B=3 clips, T=5 frames, C=3 channels and 32x32 frames (64x64 for
ResNet-18)."""

import itertools

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from siamlib.models.attention import AttentionGatedLSTM, TemporalBidirectionalLastPooling
from siamlib.models.siam import SIAM, TEMPORAL_POOLINGS, SIAMConfig

B, T, C, S = 3, 5, 3, 32
CHANNELS = (4, 8, 8, 6)
HIDDEN = 8
# Clip 0 ends in padding, clip 1 has a gap, clip 2 is full.
MASK = torch.tensor(
    [
        [True, True, True, False, False],
        [True, False, True, True, False],
        [True, True, True, True, True],
    ]
)
ALLOWED_VARIANTS = [
    (pooling, bidirectional)
    for pooling, bidirectional in itertools.product(TEMPORAL_POOLINGS, [False, True])
    if not (pooling == "gate" and bidirectional)
]


def small_config(**overrides) -> SIAMConfig:
    values = dict(
        image_size=S, channels=CHANNELS, hidden_size=HIDDEN, attention_size=5, dropout=0.0
    )
    return SIAMConfig(**{**values, **overrides})


def trained_like(model: SIAM) -> SIAM:
    """Give the zero-initialised head non-zero weights so the age depends on the input."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.head.weight.normal_()
    return model


@pytest.fixture
def frames() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(B, T, C, S, S)


def assert_valid_weights(weights: torch.Tensor, mask: torch.Tensor) -> None:
    assert weights.shape == mask.shape
    assert (weights >= 0).all()
    assert torch.equal(weights[~mask], torch.zeros(int((~mask).sum())))
    assert torch.allclose(weights.sum(dim=1), torch.ones(mask.shape[0]), atol=1e-6)


# Temporal variants in SIAM.


@pytest.mark.parametrize("pooling, bidirectional", ALLOWED_VARIANTS)
def test_variant_forward_and_backward(frames, pooling, bidirectional):
    config = small_config(temporal_pooling=pooling, bidirectional=bidirectional)
    model = trained_like(SIAM(config)).train()
    output = model(frames, MASK)

    side = S // 2**config.attention_after_block
    assert output.age.shape == (B,)
    assert output.spatial_attention.shape == (B, T, side, side)
    assert_valid_weights(output.temporal_attention, MASK)
    assert model.head.in_features == (2 * HIDDEN if bidirectional else HIDDEN)

    output.age.sum().backward()
    lstm_grads = [p.grad for p in model.lstm.parameters()]
    assert all(grad is not None for grad in lstm_grads)
    assert sum(grad.abs().sum() for grad in lstm_grads) > 0
    assert model.spatial_attention.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "pooling, bidirectional",
    [("gate", False), ("attention", True), ("mean", True), ("last", True)],
)
def test_variant_padding_invariance(frames, pooling, bidirectional):
    config = small_config(temporal_pooling=pooling, bidirectional=bidirectional)
    model = trained_like(SIAM(config)).eval()
    padded_frames = torch.cat([frames, torch.rand(B, 2, C, S, S)], dim=1)  # (B, T + 2, C, S, S)
    padded_mask = torch.cat([MASK, torch.zeros(B, 2, dtype=torch.bool)], dim=1)  # (B, T + 2)

    short = model(frames, MASK)
    padded = model(padded_frames, padded_mask)
    assert short.age.abs().max() > 1e-3
    assert torch.allclose(short.age, padded.age, atol=1e-6)
    assert torch.allclose(short.temporal_attention, padded.temporal_attention[:, :T], atol=1e-6)
    assert torch.equal(padded.temporal_attention[:, T:], torch.zeros(B, 2))


@pytest.mark.parametrize("pooling, bidirectional", [("gate", False), ("last", True)])
def test_variant_padding_between_frames(frames, pooling, bidirectional):
    model = trained_like(SIAM(small_config(temporal_pooling=pooling, bidirectional=bidirectional)))
    model.eval()
    compact = model(frames[:1, :2], torch.ones(1, 2, dtype=torch.bool))
    gap_frames = torch.stack([frames[0, 0], torch.rand(C, S, S), frames[0, 1]]).unsqueeze(0)
    with_gap = model(gap_frames, torch.tensor([[True, False, True]]))  # gap_frames (1, 3, C, S, S)
    assert torch.allclose(compact.age, with_gap.age, atol=1e-6)
    assert torch.allclose(compact.temporal_attention[0], with_gap.temporal_attention[0, [0, 2]])
    assert with_gap.temporal_attention[0, 1].item() == 0.0


def test_gate_closed_keeps_zero_state(frames):
    model = trained_like(SIAM(small_config(temporal_pooling="gate"), age_mean=30.0, age_std=5.0))
    model.eval()
    with torch.no_grad():
        model.head.bias.fill_(0.7)
        model.lstm.gate.bias.fill_(-1e4)
    output = model(frames, MASK)

    zero_state_age = 30.0 + 5.0 * 0.7
    assert torch.allclose(output.age, torch.full((B,), zero_state_age))
    assert_valid_weights(output.temporal_attention, MASK)


def test_gate_open_depends_on_frames(frames):
    model = trained_like(SIAM(small_config(temporal_pooling="gate"))).eval()
    output = model(frames, MASK)
    assert output.age.abs().max() > 1e-3
    assert not torch.allclose(output.age, model(frames.flip(1), MASK).age)


def test_gate_module_attribute_names():
    model = SIAM(small_config(temporal_pooling="gate"))
    assert isinstance(model.lstm, AttentionGatedLSTM)
    assert model.temporal_pooling is None
    assert model.lstm.cell.input_size == CHANNELS[-1]


# AttentionGatedLSTM alone, on features (B, T, F).

F_SIZE = 6


def features_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    features = torch.randn(B, T, F_SIZE)
    return features, MASK


def test_gated_lstm_initial_gates_near_open():
    features, _ = features_and_mask()
    torch.manual_seed(3)
    lstm = AttentionGatedLSTM(F_SIZE, HIDDEN)
    gates = torch.sigmoid(lstm.gate(features))  # (B, T, 1)
    assert (gates - 0.9).abs().max() < 0.02


def test_gated_lstm_weights_are_normalised_gates():
    features, mask = features_and_mask()
    lstm = AttentionGatedLSTM(F_SIZE, HIDDEN)
    with torch.no_grad():
        lstm.gate.weight.normal_()
    _, weights = lstm(features, mask)

    gates = torch.sigmoid(lstm.gate(features).squeeze(2)) * mask  # (B, T)
    expected = gates / gates.sum(dim=1, keepdim=True)
    assert torch.allclose(weights, expected, atol=1e-6)
    assert_valid_weights(weights, mask)


def test_gated_lstm_open_gate_equals_lstm():
    # With every gate at 1 the update is the plain LSTM cell's.
    features, _ = features_and_mask()
    lengths = torch.tensor([3, 4, 5])
    mask = torch.arange(T).expand(B, T) < lengths.unsqueeze(1)  # (B, T), padding at the end
    gated = AttentionGatedLSTM(F_SIZE, HIDDEN)
    reference = nn.LSTM(F_SIZE, HIDDEN, batch_first=True)
    with torch.no_grad():
        gated.gate.bias.fill_(1e4)
        reference.weight_ih_l0.copy_(gated.cell.weight_ih)
        reference.weight_hh_l0.copy_(gated.cell.weight_hh)
        reference.bias_ih_l0.copy_(gated.cell.bias_ih)
        reference.bias_hh_l0.copy_(gated.cell.bias_hh)

    final_state, _ = gated(features * mask.unsqueeze(2), mask)
    packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = reference(packed)
    assert torch.allclose(final_state, h_n[0], atol=1e-6)


def test_gated_lstm_ignores_closed_frames():
    # Channel 0 closes the gate: frames with a 1 there must not change the state.
    features, mask = features_and_mask()
    lstm = AttentionGatedLSTM(F_SIZE, HIDDEN)
    with torch.no_grad():
        lstm.gate.weight.zero_()
        lstm.gate.weight[0, 0] = -1e4
    closed = torch.zeros(B, T, dtype=torch.bool)
    closed[:, 1] = True
    features[..., 0] = closed.float()
    changed = features.clone()
    changed[closed] = changed[closed] + torch.randn(int(closed.sum()), F_SIZE)
    changed[..., 0] = closed.float()

    state, weights = lstm(features, mask)
    changed_state, _ = lstm(changed, mask)
    assert torch.allclose(state, changed_state, atol=1e-6)
    assert torch.equal(weights[closed], torch.zeros(B))
    assert not torch.allclose(state, lstm(features.flip(1), mask)[0])


def test_gated_lstm_invalid_initial_gate_raises():
    with pytest.raises(ValueError, match="initial_gate"):
        AttentionGatedLSTM(F_SIZE, HIDDEN, initial_gate=1.0)


# TemporalBidirectionalLastPooling against nn.LSTM's h_n.


def test_bidirectional_last_equals_h_n():
    features, _ = features_and_mask()
    lengths = torch.tensor([3, 1, 5])
    mask = torch.arange(T).expand(B, T) < lengths.unsqueeze(1)  # (B, T)
    torch.manual_seed(4)
    lstm = nn.LSTM(F_SIZE, HIDDEN, batch_first=True, bidirectional=True)
    packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
    packed_states, (h_n, _) = lstm(packed)
    states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=T)

    pooled, weights = TemporalBidirectionalLastPooling()(states, mask)
    assert pooled.shape == (B, 2 * HIDDEN)
    assert torch.allclose(pooled, torch.cat([h_n[0], h_n[1]], dim=1), atol=1e-6)
    expected_weights = torch.tensor(
        [
            [0.5, 0.0, 0.5, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.5, 0.0, 0.0, 0.0, 0.5],
        ]
    )
    assert torch.equal(weights, expected_weights)


def test_bidirectional_last_odd_size_raises():
    with pytest.raises(ValueError, match="even size"):
        TemporalBidirectionalLastPooling()(torch.randn(B, T, 5), MASK)


# ResNet-18 backbone, 64x64 frames.

RESNET_SIZE = 64


def resnet_config(**overrides) -> SIAMConfig:
    values = dict(image_size=RESNET_SIZE, backbone="resnet18", hidden_size=HIDDEN, dropout=0.0)
    return SIAMConfig(**{**values, **overrides})


@pytest.mark.parametrize("after_block, side", [(1, 16), (2, 8), (3, 4), (4, 2)])
def test_resnet18_attention_map_size(after_block, side):
    config = resnet_config(attention_after_block=after_block)
    model = SIAM(config).eval()
    torch.manual_seed(5)
    frames = torch.rand(2, 2, C, RESNET_SIZE, RESNET_SIZE)
    mask = torch.tensor([[True, False], [True, True]])
    output = model(frames, mask)

    assert config.attention_map_size == side
    assert output.age.shape == (2,)
    assert output.spatial_attention.shape == (2, 2, side, side)
    assert model.spatial_attention.weight.shape == (config.block_channels[after_block - 1], side, side)


def test_resnet18_sizes_and_parameter_count():
    config = resnet_config()
    assert config.block_channels == (64, 128, 256, 512)
    assert config.block_map_sizes == (16, 8, 4, 2)
    assert config.frame_feature_size == 512
    assert resnet_config(frame_pooling="flatten").frame_feature_size == 512 * 2 * 2
    model = SIAM(config)
    assert model.lstm.input_size == 512
    assert sum(p.numel() for p in model.parameters()) > 11_000_000


def test_resnet18_ignores_channels():
    config = resnet_config(channels=(4, 8))
    assert config.block_channels == (64, 128, 256, 512)
    assert config.attention_map_size == 4


def test_resnet18_one_input_channel():
    model = SIAM(resnet_config(in_channels=1)).eval()
    assert model.blocks_before[0].conv1.in_channels == 1
    output = model(torch.rand(1, 2, 1, RESNET_SIZE, RESNET_SIZE), torch.ones(1, 2, dtype=torch.bool))
    assert output.age.shape == (1,)


def test_resnet18_loads_pretrained_weights(tmp_path):
    torch.manual_seed(6)
    source = torchvision.models.resnet18(weights=None, num_classes=10)  # fc.* keys are ignored
    path = tmp_path / "resnet18.pt"
    torch.save(source.state_dict(), path)

    model = SIAM(resnet_config(pretrained_weights=str(path), attention_after_block=2))
    stem_and_layer1 = model.blocks_before[0]
    layer4 = model.blocks_after[-1]
    assert torch.equal(stem_and_layer1.conv1.weight, source.conv1.weight)
    assert torch.equal(stem_and_layer1.bn1.running_var, source.bn1.running_var)
    assert torch.equal(layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_resnet18_missing_weights_raises(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match="never downloaded") as error:
        SIAM(resnet_config(pretrained_weights=str(path)))
    assert str(path) in str(error.value)
    assert "torch.save" in str(error.value)


def _drop_layer4(state: dict) -> dict:
    return {key: value for key, value in state.items() if not key.startswith("layer4.")}


def _add_key(state: dict) -> dict:
    return {**state, "layer5.0.conv1.weight": torch.zeros(1)}


def _wrong_conv1_shape(state: dict) -> dict:
    return {**state, "conv1.weight": torch.zeros(64, 3, 3, 3)}


@pytest.mark.parametrize(
    "make_content",
    [_drop_layer4, _add_key, _wrong_conv1_shape, lambda state: torch.zeros(3)],
    ids=["missing-keys", "unexpected-key", "wrong-shape", "not-a-dict"],
)
def test_resnet18_mismatching_weights_raise(tmp_path, make_content):
    path = tmp_path / "other.pt"
    torch.save(make_content(torchvision.models.resnet18(weights=None).state_dict()), path)
    with pytest.raises(ValueError, match="pretrained_weights file") as error:
        SIAM(resnet_config(pretrained_weights=str(path)))
    assert str(path) in str(error.value)


def test_resnet18_unreadable_weights_raise(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        SIAM(resnet_config(pretrained_weights=str(path)))


# Config checks.


def test_config_new_defaults():
    config = SIAMConfig()
    assert config.bidirectional is False
    assert config.backbone == "small"
    assert config.pretrained_weights is None
    assert config.state_size == config.hidden_size


def test_config_from_dict_reads_new_keys():
    values = {
        "backbone": "resnet18",
        "bidirectional": True,
        "temporal_pooling": "last",
        "pretrained_weights": None,
        "image_size": 32,
    }
    config = SIAMConfig.from_dict(values)
    assert config.backbone == "resnet18"
    assert config.bidirectional is True
    assert config.state_size == 2 * config.hidden_size
    assert config.attention_map_size == 2


def test_config_from_dict_still_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown SIAMConfig keys"):
        SIAMConfig.from_dict({"bidirectional": True, "backbone_name": "resnet18"})


def test_config_from_dict_wrong_type_raises():
    with pytest.raises(ValueError, match="bidirectional"):
        SIAMConfig.from_dict({"bidirectional": "yes"})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"bidirectional": True, "temporal_pooling": "gate"}, "bidirectional=True"),
        ({"backbone": "vgg16"}, "backbone must be one of"),
        ({"backbone": "resnet18", "image_size": 48}, "divisible by 32"),
        ({"backbone": "resnet18", "attention_after_block": 5}, "attention_after_block"),
        ({"pretrained_weights": "weights.pt"}, "only supported with backbone='resnet18'"),
        ({"backbone": "resnet18", "pretrained_weights": ""}, "file path or None"),
        (
            {"backbone": "resnet18", "pretrained_weights": "weights.pt", "in_channels": 1},
            "in_channels=3",
        ),
    ],
)
def test_config_invalid_option_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        SIAMConfig(**overrides)
