"""SIAM: Spatially-Indexed Attention Model for age estimation from face videos.

Architecture from Pei et al., "Attended End-to-end Architecture for Age Estimation from
Facial Expression Videos", IEEE TIP 29 (2020), arXiv:1711.08690. A CNN extracts each frame's
appearance, and a spatially-indexed attention among its convolutional layers weights facial
regions. A recurrent network over the frames models the dynamics, a temporal attention weights
the frames and a regression output gives the age in years. Layer sizes, the attention's
position and the pooling are this repository's choices, all set in :class:`SIAMConfig`.

Shape letters: B clips, T frames per clip, C channels, H x W input frames, N valid frames of
a batch folded together, h x w positions of the spatial attention map, D LSTM state size.

Padding: a clip shorter than T frames is padded and marked False in the mask. The CNN and the
LSTM run on the valid frames only, so BatchNorm statistics never include padding. The temporal
attention gives padded frames weight 0. A clip's output therefore does not depend on how much
padding it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from siamlib.config import config_from_mapping
from siamlib.models.attention import (
    SPATIAL_GATES,
    NoSpatialAttention,
    PositionalSpatialAttention,
    SharedSpatialAttention,
    SpatiallyIndexedAttention,
    TemporalAttention,
    TemporalLastPooling,
    TemporalMeanPooling,
)

SPATIAL_ATTENTIONS: tuple[str, ...] = ("indexed", "shared", "positional", "none")
TEMPORAL_POOLINGS: tuple[str, ...] = ("attention", "mean", "last")
FRAME_POOLINGS: tuple[str, ...] = ("mean", "flatten")


@dataclass
class SIAMConfig:
    """Architecture of :class:`SIAM`.

    Attributes:
        in_channels: Channels of the input frames (3 for RGB).
        image_size: Side of the square input frames in pixels; divisible by
            2 ** len(channels) because every conv block halves the resolution.
        channels: Output channels of the conv blocks (conv 3x3 with stride 2, BatchNorm, ReLU).
        attention_after_block: The spatial attention follows this conv block (1-based), so
            its map has side ``image_size // 2 ** attention_after_block``.
        spatial_attention: ``"indexed"`` (separate parameters per position), ``"shared"``
            (1x1 convolution), ``"positional"`` (content-free learned map) or ``"none"``.
        spatial_gate: ``"sigmoid"`` or ``"softmax"`` over positions.
        temporal_pooling: ``"attention"`` (masked temporal attention), ``"mean"`` or
            ``"last"`` (state of the last valid frame).
        frame_pooling: How the last conv block's map becomes the frame's feature vector fed
            to the LSTM: ``"mean"`` (global average pooling, C_last features) or ``"flatten"``
            (every position kept, C_last * H_last * W_last features, so the LSTM receives where
            in the face a feature fired).
        hidden_size: D, LSTM state size.
        attention_size: Hidden size of the temporal attention's scoring layer.
        dropout: Dropout probability before the regression head.
    """

    in_channels: int = 3
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 64, 64)
    attention_after_block: int = 3
    spatial_attention: str = "indexed"
    spatial_gate: str = "sigmoid"
    temporal_pooling: str = "attention"
    frame_pooling: str = "mean"
    hidden_size: int = 64
    attention_size: int = 32
    dropout: float = 0.2

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        num_blocks = len(self.channels)
        if num_blocks == 0 or min(self.channels) < 1:
            raise ValueError(
                f"channels must be a non-empty list of positive ints, got {self.channels}"
            )
        for name in ("in_channels", "image_size", "hidden_size", "attention_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.image_size % 2**num_blocks != 0:
            raise ValueError(
                f"image_size must be divisible by 2 ** len(channels) = {2**num_blocks}, "
                f"got {self.image_size}"
            )
        if not 1 <= self.attention_after_block <= num_blocks:
            raise ValueError(
                f"attention_after_block must be in 1..{num_blocks} (one per conv block), "
                f"got {self.attention_after_block}"
            )
        if self.spatial_attention not in SPATIAL_ATTENTIONS:
            raise ValueError(
                f"spatial_attention must be one of {SPATIAL_ATTENTIONS}, "
                f"got {self.spatial_attention!r}"
            )
        if self.spatial_gate not in SPATIAL_GATES:
            raise ValueError(
                f"spatial_gate must be one of {SPATIAL_GATES}, got {self.spatial_gate!r}"
            )
        if self.temporal_pooling not in TEMPORAL_POOLINGS:
            raise ValueError(
                f"temporal_pooling must be one of {TEMPORAL_POOLINGS}, "
                f"got {self.temporal_pooling!r}"
            )
        if self.frame_pooling not in FRAME_POOLINGS:
            raise ValueError(
                f"frame_pooling must be one of {FRAME_POOLINGS}, got {self.frame_pooling!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SIAMConfig:
        """Build a config from a mapping such as the ``model`` section of params.yaml.

        Raises:
            ValueError: If a key is not a field of the config, or a value is invalid.
        """
        return config_from_mapping(cls, values)

    @property
    def frame_feature_size(self) -> int:
        """Length of the per-frame feature vector fed to the LSTM."""
        if self.frame_pooling == "flatten":
            side = self.image_size // 2 ** len(self.channels)
            return self.channels[-1] * side * side
        return self.channels[-1]

    @property
    def attention_map_size(self) -> int:
        """Side h = w of the spatial attention map."""
        return self.image_size // 2**self.attention_after_block


class SIAMOutput(NamedTuple):
    """Output of :class:`SIAM`.

    Attributes:
        age: Predicted age in years, (B,).
        spatial_attention: Spatial attention map of every frame, (B, T, h, w); 0 on padded
            frames, and 1 everywhere on valid frames when ``spatial_attention="none"``.
        temporal_attention: Weight of every frame, (B, T); 0 on padded frames.
    """

    age: Tensor
    spatial_attention: Tensor
    temporal_attention: Tensor


class ConvBlock(nn.Sequential):
    """Conv 3x3 with stride 2, BatchNorm, ReLU: (N, C_in, H, W) -> (N, C_out, H/2, W/2).

    NOTE: a stride-2 convolution halves the resolution in place of the common stride-1
    convolution followed by 2x2 max-pooling. Its 3x3 kernel still covers every input pixel, and
    the four default blocks trained about 8x faster this way (channels-last, a batch of 128
    64x64 frames, PyTorch 2.14 on 2 CPU cores).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def build_spatial_attention(config: SIAMConfig) -> nn.Module:
    """Build the spatial attention module that ``config`` selects."""
    channels = config.channels[config.attention_after_block - 1]
    side = config.attention_map_size
    if config.spatial_attention == "indexed":
        return SpatiallyIndexedAttention(channels, side, side, gate=config.spatial_gate)
    if config.spatial_attention == "shared":
        return SharedSpatialAttention(channels, gate=config.spatial_gate)
    if config.spatial_attention == "positional":
        return PositionalSpatialAttention(side, side, gate=config.spatial_gate)
    return NoSpatialAttention()


def build_temporal_pooling(config: SIAMConfig) -> nn.Module:
    """Build the temporal pooling module that ``config`` selects."""
    if config.temporal_pooling == "attention":
        return TemporalAttention(config.hidden_size, config.attention_size)
    if config.temporal_pooling == "mean":
        return TemporalMeanPooling()
    return TemporalLastPooling()


class SIAM(nn.Module):
    """Per-frame CNN with spatial attention, LSTM over frames, temporal attention, age head.

    The head predicts ``age_mean + age_std * linear(state)`` with a zero-initialised linear
    layer, so an untrained model predicts ``age_mean`` and the layer learns ages in units of
    ``age_std``. Both are buffers, saved in the state dict.

    Args:
        config: The architecture.
        age_mean: Mean training age in years, the initial prediction.
        age_std: Scale of the head's output in years, e.g. the training ages' standard deviation.

    Raises:
        ValueError: If ``age_std`` is not positive.
    """

    def __init__(self, config: SIAMConfig, age_mean: float = 0.0, age_std: float = 1.0) -> None:
        super().__init__()
        if not age_std > 0:
            raise ValueError(f"age_std must be positive, got {age_std!r}")
        self.config = config
        in_channels = (config.in_channels, *config.channels[:-1])
        blocks = [ConvBlock(c_in, c_out) for c_in, c_out in zip(in_channels, config.channels)]
        k = config.attention_after_block
        self.blocks_before = nn.Sequential(*blocks[:k])
        self.spatial_attention = build_spatial_attention(config)
        self.blocks_after = nn.Sequential(*blocks[k:])
        self.lstm = nn.LSTM(config.frame_feature_size, config.hidden_size, batch_first=True)
        self.temporal_pooling = build_temporal_pooling(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("age_mean", torch.tensor(float(age_mean)))
        self.register_buffer("age_std", torch.tensor(float(age_std)))

    def forward(self, frames: Tensor, mask: Tensor) -> SIAMOutput:
        """Predict the age of each clip.

        Args:
            frames: Clips (B, T, C, H, W), float, e.g. in [0, 1]. Padded frames may hold anything.
            mask: (B, T) bool, True on valid frames. Every clip needs one valid frame at least.

        Returns:
            A :class:`SIAMOutput` with age (B,), spatial_attention (B, T, h, w) and
            temporal_attention (B, T).

        Raises:
            ValueError: If the shapes do not match the config or a clip has no valid frame.
        """
        B, T, C, H, W = frames.shape
        cfg = self.config
        if (C, H, W) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(
                f"frames must have shape (B, T, {cfg.in_channels}, {cfg.image_size}, "
                f"{cfg.image_size}), got {tuple(frames.shape)}"
            )
        if mask.dtype != torch.bool or mask.shape != (B, T):
            raise ValueError(
                f"mask must be a bool tensor of shape {(B, T)}, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        lengths = mask.sum(dim=1)  # (B,)
        if (lengths == 0).any():
            empty = (lengths == 0).nonzero().flatten().tolist()
            raise ValueError(f"every clip needs at least one valid frame; clips {empty} have none")

        # Per-frame CNN with spatial attention, on the valid frames only.
        x = frames[mask].contiguous(memory_format=torch.channels_last)  # (N, C, H, W)
        x = self.blocks_before(x)  # (N, C_a, h, w)
        x, spatial = self.spatial_attention(x)  # (N, C_a, h, w), (N, h, w)
        x = self.blocks_after(x)  # (N, C_last, H_last, W_last)
        if cfg.frame_pooling == "flatten":
            x = x.flatten(1)  # (N, C_last * H_last * W_last)
        else:
            x = x.mean(dim=(2, 3))  # (N, C_last), global average pooling

        # Back to clips; padded frames get zero features and a zero attention map.
        features = x.new_zeros(B, T, x.shape[1])  # (B, T, F)
        features[mask] = x
        spatial_attention = spatial.new_zeros(B, T, *spatial.shape[1:])  # (B, T, h, w)
        spatial_attention[mask] = spatial

        # LSTM over each clip's valid frames in time order. Valid frames move to the front, so
        # packing skips the padding wherever it sits, and the states move back afterwards.
        order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)  # (B, T)
        compact = features.gather(1, order.unsqueeze(2).expand_as(features))  # (B, T, F)
        packed = pack_padded_sequence(
            compact, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=T)
        inverse = torch.argsort(order, dim=1)  # (B, T)
        states = states.gather(1, inverse.unsqueeze(2).expand_as(states))  # (B, T, D), 0 on padding

        # Temporal attention over the valid frames.
        pooled, temporal_attention = self.temporal_pooling(states, mask)  # (B, D), (B, T)

        # Regression head in years.
        age = self.head(self.dropout(pooled)).squeeze(1)  # (B,)
        age = self.age_mean + self.age_std * age
        return SIAMOutput(age, spatial_attention, temporal_attention)
