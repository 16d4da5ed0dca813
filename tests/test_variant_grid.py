"""Every ablation variant of params.yaml on tiny inputs, and a golden output of the default model.

Sizes differ per dimension (B=2 clips, T=3 frames, 32x32 pixels, channels 4/6/8/10, LSTM
state 5, temporal attention 7), so a transposed axis shows up as a shape error.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from siamlib.experiments import variant_configs
from siamlib.models.siam import SIAM, SIAMConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
VARIANTS = PARAMS["ablation"]["variants"]
TINY_MODEL = {**PARAMS["model"], "channels": [4, 6, 8, 10], "hidden_size": 5,
              "attention_size": 7, "attention_after_block": 2}
B, T, S = 2, 3, 32


def build(variant: str) -> SIAM:
    model_config, _ = variant_configs(TINY_MODEL, PARAMS["train"], VARIANTS[variant], image_size=S)
    torch.manual_seed(0)
    return SIAM(model_config, age_mean=30.0, age_std=15.0)


@pytest.fixture(scope="module")
def clip():
    generator = torch.Generator().manual_seed(1)
    frames = torch.rand(B, T, 3, S, S, generator=generator)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return frames, mask


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_forward_backward_and_weights(variant, clip):
    frames, mask = clip
    model = build(variant)
    output = model(frames, mask)
    assert output.age.shape == (B,)
    side = model.config.attention_map_size
    assert output.spatial_attention.shape == (B, T, side, side)
    assert output.temporal_attention.shape == (B, T)
    output.age.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    weights = output.temporal_attention.detach()
    assert torch.all(weights[~mask] == 0)
    assert torch.allclose(weights.sum(dim=1), torch.ones(B), atol=1e-5)
    spatial = output.spatial_attention.detach()[mask]  # (valid frames, h, w)
    if model.config.spatial_gate == "softmax" and model.config.spatial_attention != "none":
        # A softmax over positions, scaled by their number so the map averages 1.
        shares = spatial / (side * side)
        assert torch.allclose(shares.sum(dim=(1, 2)), torch.ones(len(spatial)), atol=1e-5)
    else:
        assert spatial.min() >= 0
        assert spatial.max() <= 1


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_padded_to_double_length_gives_same_age(variant, clip):
    frames, mask = clip
    model = build(variant).eval()
    padded = torch.cat([frames, torch.rand_like(frames)], dim=1)  # (B, 2T, 3, S, S)
    padded_mask = torch.cat([mask, torch.zeros_like(mask)], dim=1)
    with torch.no_grad():
        short = model(frames, mask)
        long = model(padded, padded_mask)
    assert torch.allclose(short.age, long.age, atol=1e-5)
    assert torch.allclose(short.temporal_attention, long.temporal_attention[:, :T], atol=1e-6)


# Ages of the default architecture (params.yaml's model section, 32x32 frames, seeded weights)
# on the clip fixture, recorded when the model options were added. A change here means the numbers
# the model computes changed: update the values only for an intended change of the model.
GOLDEN_AGES = [33.034298, 32.962482]


def test_default_model_golden_output(clip):
    frames, mask = clip
    config = SIAMConfig.from_dict({**PARAMS["model"], "image_size": S})
    torch.manual_seed(0)
    model = SIAM(config, age_mean=30.0, age_std=15.0).eval()
    # The regression head starts at zero, so an untrained model outputs age_mean whatever the
    # rest computes. A seeded shift of every parameter makes every layer count.
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
        ages = model(frames, mask).age.numpy()
    np.testing.assert_allclose(ages, GOLDEN_AGES, rtol=0, atol=1e-4)
