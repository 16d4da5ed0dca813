"""SIAM: Spatially-Indexed Attention Model for age estimation from face videos.

Architecture from Pei et al., "Attended End-to-end Architecture for Age Estimation from
Facial Expression Videos", IEEE TIP 29 (2020), arXiv:1711.08690. A CNN extracts each frame's
appearance, and a spatially-indexed attention among its convolutional layers weights facial
regions. A recurrent network over the frames models the dynamics, a temporal attention weights
the frames and a regression output gives the age in years. Layer sizes, the attention's
position and the pooling are this repository's choices, all set in :class:`SIAMConfig`.

Variants: the CNN is a small stack of stride-2 conv blocks or torchvision's ResNet-18 trunk
(see :mod:`siamlib.models.backbones`), the LSTM can be bidirectional, and the temporal pooling
is an attention, the mean, the last state or a per-frame sigmoid gate inside the recurrence.

Shape letters: B clips, T frames per clip, C channels, H x W input frames, N valid frames of
a batch folded together, h x w positions of the spatial attention map, D LSTM state size per
direction and D_s the size of a frame's state (D, or 2D for a bidirectional LSTM).

Padding: a clip shorter than T frames is padded and marked False in the mask. The CNN runs on
the valid frames only, so BatchNorm statistics never include padding. The packed LSTM skips
padded frames, and the gated LSTM gives them a gate of 0 so they leave its state unchanged.
The temporal pooling gives padded frames weight 0. A clip's output therefore does not depend
on how much padding it has.
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
    AttentionGatedLSTM,
    NoSpatialAttention,
    PositionalSpatialAttention,
    SharedSpatialAttention,
    SpatiallyIndexedAttention,
    TemporalAttention,
    TemporalBidirectionalLastPooling,
    TemporalLastPooling,
    TemporalMeanPooling,
)
from siamlib.models.backbones import (
    BACKBONES,
    RESNET18_CHANNELS,
    RESNET18_DOWNSAMPLING,
    ConvBlock,  # noqa: F401 (defined here before backbones.py existed; still importable)
    build_resnet18_blocks,
    build_small_blocks,
)

SPATIAL_ATTENTIONS: tuple[str, ...] = ("indexed", "shared", "positional", "none")
TEMPORAL_POOLINGS: tuple[str, ...] = ("attention", "mean", "last", "gate")
FRAME_POOLINGS: tuple[str, ...] = ("mean", "flatten")
TEMPORAL_MODELS: tuple[str, ...] = ("lstm", "none")


@dataclass
class SIAMConfig:
    """Architecture of :class:`SIAM`.

    The defaults of ``bidirectional``, ``backbone`` and ``pretrained_weights`` build the model
    from before these options existed, so stored configs without those keys still load.

    Attributes:
        in_channels: Channels of the input frames (3 for RGB).
        image_size: Side of the square input frames in pixels. It must be divisible by
            2 ** len(channels) for the "small" backbone (every conv block halves the
            resolution) and by 32 for "resnet18".
        channels: Output channels of the "small" backbone's conv blocks (conv 3x3 with
            stride 2, BatchNorm, ReLU). Ignored by "resnet18", whose four blocks have
            64, 128, 256 and 512 channels.
        attention_after_block: The spatial attention follows this backbone block (1-based), so
            its map has side ``image_size // 2 ** attention_after_block`` for "small" and
            ``image_size // 2 ** (attention_after_block + 1)`` for "resnet18".
        spatial_attention: ``"indexed"`` (separate parameters per position), ``"shared"``
            (1x1 convolution), ``"positional"`` (content-free learned map) or ``"none"``.
        spatial_gate: ``"sigmoid"`` or ``"softmax"`` over positions.
        temporal_pooling: ``"attention"`` (masked temporal attention), ``"mean"``, ``"last"``
            (state after the last valid frame) or ``"gate"`` (per-frame sigmoid gate on the
            LSTM's state update, see :class:`AttentionGatedLSTM`; its normalised gates are the
            frame weights).
        frame_pooling: How the last conv block's map becomes the frame's feature vector fed
            to the LSTM: ``"mean"`` (global average pooling, C_last features) or ``"flatten"``
            (every position kept, C_last * H_last * W_last features, so the LSTM receives where
            in the face a feature fired).
        hidden_size: D, LSTM state size per direction.
        attention_size: Hidden size of the temporal attention's scoring layer.
        dropout: Dropout probability before the regression head.
        bidirectional: Whether the LSTM also runs backwards in time, giving 2D-wide states.
            Not allowed with ``temporal_pooling="gate"``.
        backbone: Per-frame CNN, ``"small"`` (conv blocks sized by ``channels``) or
            ``"resnet18"`` (torchvision's ResNet-18 trunk in four blocks).
        pretrained_weights: Path of a local file with a torchvision ResNet-18 state dict, loaded
            into the "resnet18" trunk when the model is built (``fc.*`` keys are ignored), or
            None for random initialisation. Weights are never downloaded.
        temporal_model: ``"lstm"`` (SIAM) or ``"none"``: no recurrence, the head predicts an
            age from every frame's features and the clip's age is the mean over its valid
            frames (the per-frame CNN reference, :mod:`siamlib.baselines.frame_cnn`). It needs
            ``temporal_pooling="mean"`` and ``bidirectional=False``.
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
    bidirectional: bool = False
    backbone: str = "small"
    pretrained_weights: str | None = None
    temporal_model: str = "lstm"

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) == 0 or min(self.channels) < 1:
            raise ValueError(
                f"channels must be a non-empty list of positive ints, got {self.channels}"
            )
        for name in ("in_channels", "image_size", "hidden_size", "attention_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        self._check_backbone_sizes()
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
        if self.bidirectional and self.temporal_pooling == "gate":
            raise ValueError(
                "bidirectional=True cannot be combined with temporal_pooling='gate', because "
                "the gated state update runs forwards in time only. Set bidirectional=False or "
                "choose another temporal_pooling"
            )
        if self.temporal_model not in TEMPORAL_MODELS:
            raise ValueError(
                f"temporal_model must be one of {TEMPORAL_MODELS}, got {self.temporal_model!r}"
            )
        if self.temporal_model == "none" and (
            self.temporal_pooling != "mean" or self.bidirectional
        ):
            raise ValueError(
                "temporal_model='none' averages per-frame predictions, so it needs "
                f"temporal_pooling='mean' and bidirectional=False, got "
                f"temporal_pooling={self.temporal_pooling!r} and "
                f"bidirectional={self.bidirectional!r}"
            )
        self._check_pretrained_weights()

    def _check_backbone_sizes(self) -> None:
        if self.backbone == "resnet18":
            if self.image_size % RESNET18_DOWNSAMPLING[-1] != 0:
                raise ValueError(
                    f"image_size must be divisible by {RESNET18_DOWNSAMPLING[-1]} for backbone "
                    f"'resnet18', whose blocks downsample by that factor, got {self.image_size}"
                )
        elif self.image_size % 2 ** len(self.channels) != 0:
            raise ValueError(
                f"image_size must be divisible by 2 ** len(channels) = {2 ** len(self.channels)}, "
                f"got {self.image_size}"
            )
        num_blocks = len(self.block_channels)
        if not 1 <= self.attention_after_block <= num_blocks:
            raise ValueError(
                f"attention_after_block must be in 1..{num_blocks} (one per {self.backbone!r} "
                f"backbone block), got {self.attention_after_block}"
            )

    def _check_pretrained_weights(self) -> None:
        if self.pretrained_weights is None:
            return
        if self.backbone != "resnet18":
            raise ValueError(
                f"pretrained_weights is only supported with backbone='resnet18', got "
                f"backbone={self.backbone!r} and pretrained_weights={self.pretrained_weights!r}. "
                "Set backbone='resnet18' or pretrained_weights=None"
            )
        if not isinstance(self.pretrained_weights, str) or not self.pretrained_weights:
            raise ValueError(
                f"pretrained_weights must be a file path or None, got {self.pretrained_weights!r}"
            )
        if self.in_channels != 3:
            raise ValueError(
                f"pretrained_weights needs in_channels=3 (the ResNet-18 weights take RGB "
                f"frames), got in_channels={self.in_channels}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SIAMConfig:
        """Build a config from a mapping such as the ``model`` section of params.yaml.

        Raises:
            ValueError: If a key is not a field of the config, or a value is invalid.
        """
        return config_from_mapping(cls, values)

    @property
    def block_channels(self) -> tuple[int, ...]:
        """Output channels of each backbone block."""
        if self.backbone == "resnet18":
            return RESNET18_CHANNELS
        return self.channels

    @property
    def block_map_sizes(self) -> tuple[int, ...]:
        """Side of each backbone block's output feature map."""
        if self.backbone == "resnet18":
            return tuple(self.image_size // factor for factor in RESNET18_DOWNSAMPLING)
        return tuple(self.image_size // 2**block for block in range(1, len(self.channels) + 1))

    @property
    def frame_feature_size(self) -> int:
        """Length of the per-frame feature vector fed to the LSTM."""
        if self.frame_pooling == "flatten":
            side = self.block_map_sizes[-1]
            return self.block_channels[-1] * side * side
        return self.block_channels[-1]

    @property
    def attention_map_size(self) -> int:
        """Side h = w of the spatial attention map."""
        return self.block_map_sizes[self.attention_after_block - 1]

    @property
    def state_size(self) -> int:
        """D_s, size of a frame's LSTM state and of the pooled state fed to the head.

        With ``temporal_model="none"`` the head reads a frame's features directly, so this is
        :attr:`frame_feature_size`.
        """
        if self.temporal_model == "none":
            return self.frame_feature_size
        return 2 * self.hidden_size if self.bidirectional else self.hidden_size


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


def build_spatial_attention(config: SIAMConfig) -> nn.Module:
    """Build the spatial attention module that ``config`` selects."""
    channels = config.block_channels[config.attention_after_block - 1]
    side = config.attention_map_size
    if config.spatial_attention == "indexed":
        return SpatiallyIndexedAttention(channels, side, side, gate=config.spatial_gate)
    if config.spatial_attention == "shared":
        return SharedSpatialAttention(channels, gate=config.spatial_gate)
    if config.spatial_attention == "positional":
        return PositionalSpatialAttention(side, side, gate=config.spatial_gate)
    return NoSpatialAttention()


def build_backbone_blocks(config: SIAMConfig) -> list[nn.Module]:
    """Build the blocks of the per-frame CNN that ``config`` selects."""
    if config.backbone == "resnet18":
        return build_resnet18_blocks(config.in_channels, config.pretrained_weights)
    return build_small_blocks(config.in_channels, config.channels)


def build_recurrence(config: SIAMConfig) -> nn.Module:
    """Build the LSTM over frames: :class:`torch.nn.LSTM`, or the gated LSTM for "gate"."""
    if config.temporal_pooling == "gate":
        return AttentionGatedLSTM(config.frame_feature_size, config.hidden_size)
    return nn.LSTM(
        config.frame_feature_size,
        config.hidden_size,
        batch_first=True,
        bidirectional=config.bidirectional,
    )


def build_temporal_pooling(config: SIAMConfig) -> nn.Module | None:
    """Build the temporal pooling module that ``config`` selects.

    Returns None for ``"gate"``, whose gated LSTM pools by itself.
    """
    if config.temporal_pooling == "attention":
        return TemporalAttention(config.state_size, config.attention_size)
    if config.temporal_pooling == "mean":
        return TemporalMeanPooling()
    if config.temporal_pooling == "last":
        return TemporalBidirectionalLastPooling() if config.bidirectional else TemporalLastPooling()
    return None


class SIAM(nn.Module):
    """Per-frame CNN with spatial attention, LSTM over frames, temporal attention, age head.

    Modules: ``blocks_before`` and ``blocks_after`` (the backbone blocks around the spatial
    attention), ``spatial_attention``, ``lstm`` (:class:`torch.nn.LSTM`, or
    :class:`AttentionGatedLSTM` for ``temporal_pooling="gate"``; None for
    ``temporal_model="none"``), ``temporal_pooling`` (None for "gate" and for
    ``temporal_model="none"``) and ``head``.

    The head predicts ``age_mean + age_std * linear(state)`` with a zero-initialised linear
    layer, so an untrained model predicts ``age_mean`` and the layer learns ages in units of
    ``age_std``. Both are buffers, saved in the state dict.

    Args:
        config: The architecture.
        age_mean: Mean training age in years, the initial prediction.
        age_std: Scale of the head's output in years, e.g. the training ages' standard deviation.

    Raises:
        ValueError: If ``age_std`` is not positive, or the file ``config.pretrained_weights``
            does not contain a ResNet-18 state dict.
        FileNotFoundError: If ``config.pretrained_weights`` is set but not an existing file.
            Every model built from the config reads the file, even one whose weights a
            checkpoint then replaces.
    """

    def __init__(self, config: SIAMConfig, age_mean: float = 0.0, age_std: float = 1.0) -> None:
        super().__init__()
        if not age_std > 0:
            raise ValueError(f"age_std must be positive, got {age_std!r}")
        self.config = config
        blocks = build_backbone_blocks(config)
        k = config.attention_after_block
        self.blocks_before = nn.Sequential(*blocks[:k])
        self.spatial_attention = build_spatial_attention(config)
        self.blocks_after = nn.Sequential(*blocks[k:])
        if config.temporal_model == "none":
            self.lstm = None
            self.temporal_pooling = None
        else:
            self.lstm = build_recurrence(config)
            self.temporal_pooling = build_temporal_pooling(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.state_size, 1)
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

        if self.lstm is None:
            # temporal_model "none": an age per valid frame, averaged over the clip's frames.
            with torch.autocast(x.device.type, enabled=False):
                frame_age = self._regress(x)  # (N,), years
                ages = frame_age.new_zeros(B, T)  # (B, T)
                ages[mask] = frame_age
                weights = mask.to(ages.dtype) / lengths.unsqueeze(1).to(ages.dtype)  # (B, T)
                age = (ages * weights).sum(dim=1)  # (B,)
            return SIAMOutput(age, spatial_attention, weights)

        # LSTM over frames and temporal attention over the valid frames.
        if self.temporal_pooling is None:
            # "gate": the gates act inside the recurrence, which returns its final state.
            pooled, temporal_attention = self.lstm(features, mask)  # (B, D), (B, T)
        else:
            states = self._lstm_states(features, mask, lengths)  # (B, T, D_s)
            pooled, temporal_attention = self.temporal_pooling(states, mask)  # (B, D_s), (B, T)

        with torch.autocast(pooled.device.type, enabled=False):
            age = self._regress(pooled)  # (B,)
        return SIAMOutput(age, spatial_attention, temporal_attention)

    def _regress(self, features: Tensor) -> Tensor:
        """Map features (n, F) to ages in years (n,) with dropout and the regression head.

        The head runs in float32 even under bfloat16 autocast: bfloat16 keeps 8 bits of
        mantissa, which would round ages near 40 to steps of 0.25 years. Callers disable
        autocast around it.
        """
        age = self.head(self.dropout(features.float())).squeeze(1)
        return self.age_mean + self.age_std * age

    def _lstm_states(self, features: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """Run the LSTM over each clip's valid frames of features (B, T, F) in time order.

        Valid frames move to the front, so packing skips the padding wherever it sits, and the
        states (B, T, D_s) move back afterwards, 0 on padded frames.
        """
        T = features.shape[1]
        order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)  # (B, T)
        compact = features.gather(1, order.unsqueeze(2).expand_as(features))  # (B, T, F)
        packed = pack_padded_sequence(
            compact, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=T)
        inverse = torch.argsort(order, dim=1)  # (B, T)
        return states.gather(1, inverse.unsqueeze(2).expand_as(states))  # (B, T, D_s)
