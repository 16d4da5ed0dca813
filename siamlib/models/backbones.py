"""Per-frame CNN backbones of SIAM, each split into blocks so the spatial attention can sit
between any two of them.

Shape letters: N frames folded into one batch, C channels, H x W a frame or feature map.

``"small"`` stacks :class:`ConvBlock` layers (conv 3x3 with stride 2, BatchNorm, ReLU), one per
entry of ``channels``, and each block halves the resolution.

``"resnet18"`` is torchvision's ResNet-18 trunk (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016) without its pooling and classifier, in four blocks:

====== ======================================== ======== =============
block  torchvision modules                      channels downsampling
====== ======================================== ======== =============
1      conv1, bn1, relu, maxpool, layer1        64       4
2      layer2                                   128      8
3      layer3                                   256      16
4      layer4                                   512      32
====== ======================================== ======== =============

"downsampling" is the input side divided by the block's output side. The trunk is built with
``torchvision.models.resnet18(weights=None)``, so nothing is ever downloaded. Pretrained weights
come only from a local file that contains a ResNet-18 state dict.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

BACKBONES: tuple[str, ...] = ("small", "resnet18")
RESNET18_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)
RESNET18_DOWNSAMPLING: tuple[int, ...] = (4, 8, 16, 32)


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


def build_small_blocks(in_channels: int, channels: tuple[int, ...]) -> list[nn.Module]:
    """Build one :class:`ConvBlock` per entry of ``channels``."""
    block_inputs = (in_channels, *channels[:-1])
    return [ConvBlock(c_in, c_out) for c_in, c_out in zip(block_inputs, channels)]


def build_resnet18_blocks(in_channels: int, weights_path: str | None = None) -> list[nn.Module]:
    """Build the four blocks of a ResNet-18 trunk, optionally with weights from a local file.

    Args:
        in_channels: Channels of the input frames. With a value other than 3, ``conv1`` is
            replaced by a randomly initialised convolution with ``in_channels`` inputs and
            otherwise the same shape. Pretrained weights take 3 channels, so ``weights_path``
            must then be None.
        weights_path: Path of a file written by ``torch.save(model.state_dict(), path)`` for a
            torchvision ResNet-18, or None for torchvision's random initialisation. The file's
            ``fc.*`` keys (the ImageNet classifier) are ignored.

    Returns:
        Four modules, mapping (N, in_channels, H, W) to (N, 64, H/4, W/4), then to
        (N, 128, H/8, W/8), (N, 256, H/16, W/16) and (N, 512, H/32, W/32).

    Raises:
        FileNotFoundError: If ``weights_path`` is not an existing file.
        ValueError: If ``in_channels`` is not 3 while ``weights_path`` is set, or the file is
            not a ResNet-18 state dict.

    NOTE: torchvision's ImageNet weights expect frames normalised with the ImageNet channel
    means and standard deviations. These blocks apply no normalisation, and SIAM's training
    feeds frames in [0, 1], so pretrained filters see shifted inputs until fine-tuning adapts
    them.
    """
    # torchvision is imported here because its import adds about 2 s (measured with
    # torchvision 0.29 on 2 CPU cores), which the default "small" backbone does not need.
    import torchvision

    trunk = torchvision.models.resnet18(weights=None)
    if weights_path is not None:
        if in_channels != 3:
            raise ValueError(
                f"pretrained ResNet-18 weights need in_channels=3, got in_channels={in_channels}"
            )
        load_resnet18_weights(trunk, weights_path)
    elif in_channels != 3:
        trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(trunk.conv1.weight, mode="fan_out", nonlinearity="relu")

    stem_and_layer1 = nn.Sequential(
        OrderedDict(
            conv1=trunk.conv1,
            bn1=trunk.bn1,
            relu=trunk.relu,
            maxpool=trunk.maxpool,
            layer1=trunk.layer1,
        )
    )
    return [stem_and_layer1, trunk.layer2, trunk.layer3, trunk.layer4]


def load_resnet18_weights(trunk: nn.Module, weights_path: str) -> None:
    """Load a torchvision ResNet-18 state dict from ``weights_path`` into ``trunk``.

    Every key except ``fc.*`` must be present in the file with the trunk's shape.

    Raises:
        FileNotFoundError: If ``weights_path`` is not an existing file.
        ValueError: If the file cannot be read as a state dict or does not match the trunk.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained_weights file not found: {weights_path!r}. Weights are never downloaded. "
            "To make the file, run on a machine with internet access: "
            "torch.save(torchvision.models.resnet18(weights='IMAGENET1K_V1').state_dict(), "
            f"{weights_path!r}) or save it elsewhere and copy it to this path."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ValueError(
            f"pretrained_weights file {weights_path!r} could not be read as a torch state dict: "
            f"{error}"
        ) from error
    if not isinstance(state, Mapping):
        raise ValueError(
            f"pretrained_weights file {weights_path!r} must contain a ResNet-18 state dict "
            f"(a mapping of names to tensors), got {type(state).__name__}"
        )

    trunk_state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    try:
        result = trunk.load_state_dict(trunk_state, strict=False)
    except RuntimeError as error:  # raised on tensors whose shape does not match
        raise ValueError(
            f"pretrained_weights file {weights_path!r} does not match torchvision's ResNet-18: "
            f"{error}"
        ) from error
    missing = [key for key in result.missing_keys if not key.startswith("fc.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"pretrained_weights file {weights_path!r} does not match torchvision's ResNet-18: "
            f"missing keys {missing[:5]} ({len(missing)} in all), unexpected keys "
            f"{result.unexpected_keys[:5]} ({len(result.unexpected_keys)} in all)"
        )
