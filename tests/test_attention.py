"""Tests for siamlib.models.attention with B=2 clips, T=3 frames, C=5 channels, h=4, w=6."""

import pytest
import torch
from siamlib.models.attention import (
    NoSpatialAttention,
    PositionalSpatialAttention,
    SharedSpatialAttention,
    SpatiallyIndexedAttention,
    TemporalAttention,
    TemporalLastPooling,
    TemporalMeanPooling,
)

B, T, C, H, W = 2, 3, 5, 4, 6
D = 7


@pytest.fixture
def features() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(B * T, C, H, W)


@pytest.fixture
def states_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    states = torch.randn(B, T, D)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    return states, mask


def test_indexed_attention_known_answer(features):
    attention = SpatiallyIndexedAttention(C, H, W)
    with torch.no_grad():
        attention.weight.copy_(torch.randn(C, H, W))
        attention.bias.copy_(torch.randn(H, W))
    gated, attn = attention(features)

    expected = torch.empty(B * T, H, W)
    for n in range(B * T):
        for i in range(H):
            for j in range(W):
                dot = (attention.weight[:, i, j] * features[n, :, i, j]).sum()
                expected[n, i, j] = torch.sigmoid(dot + attention.bias[i, j])
    assert attn.shape == (B * T, H, W)
    assert torch.allclose(attn, expected, atol=1e-6)
    assert torch.allclose(gated, features * expected[:, None], atol=1e-6)


def test_indexed_attention_starts_near_half(features):
    torch.manual_seed(2)
    _, attn = SpatiallyIndexedAttention(C, H, W)(features)
    assert (attn - 0.5).abs().max() < 0.05


def test_indexed_attention_positions_independent(features):
    attention = SpatiallyIndexedAttention(C, H, W)
    _, before = attention(features)
    with torch.no_grad():
        attention.weight[:, 1, 2] += 1.0
    _, after = attention(features)

    changed = (after - before).abs().amax(dim=0) > 1e-4  # (h, w)
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[1, 2] = True
    assert torch.equal(changed, expected)


def test_shared_attention_changes_every_position(features):
    attention = SharedSpatialAttention(C)
    _, before = attention(features)
    with torch.no_grad():
        attention.conv.weight += 1.0
    _, after = attention(features)
    assert ((after - before).abs().amax(dim=0) > 1e-4).all()


def test_indexed_attention_differs_from_shared(features):
    indexed = SpatiallyIndexedAttention(C, H, W)
    shared = SharedSpatialAttention(C)
    with torch.no_grad():
        shared.conv.weight.copy_(torch.randn(1, C, 1, 1))
        shared.conv.bias.copy_(torch.randn(1))
        # The same weights at every position reproduce the shared convolution exactly.
        indexed.weight.copy_(shared.conv.weight.reshape(C, 1, 1).expand(C, H, W))
        indexed.bias.fill_(shared.conv.bias.item())
    assert torch.allclose(indexed(features)[1], shared(features)[1], atol=1e-6)

    with torch.no_grad():
        indexed.weight[:, 0, 0] = -indexed.weight[:, 0, 0]
    assert not torch.allclose(indexed(features)[1][:, 0, 0], shared(features)[1][:, 0, 0])
    assert torch.allclose(indexed(features)[1][:, 1:], shared(features)[1][:, 1:], atol=1e-6)


def test_indexed_attention_parameter_count():
    indexed = SpatiallyIndexedAttention(C, H, W)
    shared = SharedSpatialAttention(C)
    assert sum(p.numel() for p in indexed.parameters()) == C * H * W + H * W
    assert sum(p.numel() for p in shared.parameters()) == C + 1


def test_softmax_gate_mean_one(features):
    attention = SpatiallyIndexedAttention(C, H, W, gate="softmax", init_std=1.0)
    _, attn = attention(features)
    assert torch.allclose(attn.mean(dim=(1, 2)), torch.ones(B * T), atol=1e-5)
    assert attn.std() > 0.1


def test_positional_attention_ignores_content(features):
    attention = PositionalSpatialAttention(H, W)
    with torch.no_grad():
        attention.bias.copy_(torch.randn(H, W))
    _, attn = attention(features)
    _, attn_other = attention(torch.randn_like(features))
    assert torch.equal(attn, attn_other)
    assert torch.allclose(attn[0], torch.sigmoid(attention.bias))


def test_no_spatial_attention_identity(features):
    gated, attn = NoSpatialAttention()(features)
    assert torch.equal(gated, features)
    assert torch.equal(attn, torch.ones(B * T, H, W))


def test_indexed_attention_wrong_shape_raises(features):
    with pytest.raises(ValueError, match="features must have shape"):
        SpatiallyIndexedAttention(C, W, H)(features)


def test_indexed_attention_bad_gate_raises():
    with pytest.raises(ValueError, match="gate"):
        SpatiallyIndexedAttention(C, H, W, gate="tanh")


def test_temporal_attention_masked_softmax(states_and_mask):
    states, mask = states_and_mask
    attention = TemporalAttention(D, attention_size=4)
    pooled, weights = attention(states, mask)

    assert pooled.shape == (B, D)
    assert weights.shape == (B, T)
    assert weights[0, 2].item() == 0.0
    assert torch.allclose(weights.sum(dim=1), torch.ones(B))
    assert (weights[mask] > 0).all()
    expected = (weights.unsqueeze(2) * states).sum(dim=1)
    assert torch.allclose(pooled, expected, atol=1e-6)


def test_temporal_attention_known_scores(states_and_mask):
    states, mask = states_and_mask
    attention = TemporalAttention(D, attention_size=4)
    _, weights = attention(states, mask)

    scores = attention.score(torch.tanh(attention.proj(states[0, :2]))).squeeze(1)  # (2,)
    assert torch.allclose(weights[0, :2], torch.softmax(scores, dim=0), atol=1e-6)


def test_temporal_attention_ignores_padded_states(states_and_mask):
    states, mask = states_and_mask
    attention = TemporalAttention(D, attention_size=4)
    changed = states.clone()
    changed[0, 2] = 100.0
    pooled, weights = attention(states, mask)
    pooled_changed, weights_changed = attention(changed, mask)
    assert torch.equal(pooled, pooled_changed)
    assert torch.equal(weights, weights_changed)


def test_temporal_attention_empty_clip_raises(states_and_mask):
    states, _ = states_and_mask
    mask = torch.tensor([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match=r"clips \[1\] have none"):
        TemporalAttention(D, attention_size=4)(states, mask)


def test_temporal_attention_bad_mask_raises(states_and_mask):
    states, mask = states_and_mask
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        TemporalAttention(D, attention_size=4)(states, mask.float())


def test_temporal_mean_pooling_known_answer(states_and_mask):
    states, mask = states_and_mask
    pooled, weights = TemporalMeanPooling()(states, mask)
    assert torch.allclose(weights[0], torch.tensor([0.5, 0.5, 0.0]))
    assert torch.allclose(pooled[0], states[0, :2].mean(dim=0), atol=1e-6)
    assert torch.allclose(pooled[1], states[1].mean(dim=0), atol=1e-6)


def test_temporal_last_pooling_known_answer(states_and_mask):
    states, mask = states_and_mask
    pooled, weights = TemporalLastPooling()(states, mask)
    assert torch.equal(weights, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(pooled[0], states[0, 1])
    assert torch.equal(pooled[1], states[1, 2])
