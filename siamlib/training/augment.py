"""Random augmentation of training clips, driven by an explicit ``torch.Generator``.

Every random number comes from the generator passed in, never from PyTorch's global generator.
A seeded run therefore repeats exactly on the CPU, and augmentation leaves the global stream
(initial weights, dropout) as it is. Each function draws its parameters once per clip and
applies them to every frame of the clip.

Shape letters: B clips, T frames per clip, H x W pixels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

# Ranges of the spatial augmentation, mild enough to keep an aligned face aligned.
MAX_ROTATION_DEGREES = 5.0
MAX_TRANSLATION_FRACTION = 0.04  # of the frame's width (x) and height (y)
SCALE_RANGE = (0.95, 1.05)
BRIGHTNESS_RANGE = (0.85, 1.15)  # multiplicative factor
CONTRAST_RANGE = (0.85, 1.15)  # blend factor towards the frame's mean grey level


def temporal_crop_min_length(num_valid: int, min_fraction: float) -> int:
    """Return the fewest frames a temporal crop of ``num_valid`` valid frames keeps.

    This is ``ceil(min_fraction * num_valid)``, and at least 1. The product is rounded to 9
    decimals first, so that a float error such as ``0.7 * 10 = 7.000000000000001`` does not
    raise the count to 8.
    """
    return max(1, math.ceil(round(min_fraction * num_valid, 9)))


def temporal_crop(
    frames: Tensor, mask: Tensor, min_fraction: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Keep a random strided run of a clip's valid frames, moved to the front of the clip.

    With n valid frames and m = ``temporal_crop_min_length(n, min_fraction)``, the stride s is
    1 or 2 with equal probability, where 2 is allowed only if a stride-2 run can reach m
    frames. The length L is uniform in [m, ceil(n / s)] and the start uniform over the
    positions where the run fits. The run takes the valid frames start, start + s, ...,
    start + (L - 1) * s, counted among the valid frames in order. It fills the first L frames
    of the output. The other frames are zero and masked False.

    Args:
        frames: One clip, (T, ...), e.g. (T, 3, H, W).
        mask: (T,) bool, True on valid frames; at least one frame is valid.
        min_fraction: Share of the valid frames kept at least, in (0, 1].
        generator: Source of the random stride, length and start.

    Returns:
        The cropped frames, with the shape and dtype of ``frames``, and their (T,) bool mask.

    Raises:
        ValueError: If the shapes do not match, no frame is valid or ``min_fraction`` is
            outside (0, 1].
    """
    if mask.dtype != torch.bool or mask.ndim != 1 or len(mask) != len(frames):
        raise ValueError(
            f"mask must be a bool tensor of shape ({len(frames)},), "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
    valid = mask.nonzero().flatten()  # indices of the valid frames, in order
    num_valid = len(valid)
    if num_valid == 0:
        raise ValueError("the clip has no valid frame to crop")

    min_length = temporal_crop_min_length(num_valid, min_fraction)
    strides = [1, 2] if math.ceil(num_valid / 2) >= min_length else [1]
    stride = strides[_randint(len(strides), generator)]
    max_length = math.ceil(num_valid / stride)
    length = min_length + _randint(max_length - min_length + 1, generator)
    last_start = num_valid - 1 - (length - 1) * stride
    start = _randint(last_start + 1, generator)
    kept_indices = valid[start : start + (length - 1) * stride + 1 : stride]  # (length,)

    cropped = torch.zeros_like(frames)
    cropped[:length] = frames[kept_indices]
    cropped_mask = torch.zeros_like(mask)
    cropped_mask[:length] = True
    return cropped, cropped_mask


def spatial_jitter(frames: Tensor, generator: torch.Generator) -> Tensor:
    """Apply one random rotation, translation, scaling, brightness and contrast to a clip.

    The parameters are drawn once from the ranges in this module and applied to every frame,
    so the face moves and the lighting changes the same way throughout the clip. The affine
    map uses bilinear interpolation and fills pixels from outside the frame with 0 (black).
    Contrast blends each frame with its own mean grey level, so frames with the same content
    stay the same.

    Args:
        frames: One clip, float (T, 3, H, W) in [0, 1].
        generator: Source of the parameters.

    Returns:
        The augmented clip, float (T, 3, H, W) in [0, 1].

    Raises:
        ValueError: If ``frames`` is not a float (T, 3, H, W) tensor.
    """
    if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
        raise ValueError(
            f"frames must be a float tensor of shape (T, 3, H, W), "
            f"got {frames.dtype} {tuple(frames.shape)}"
        )
    height, width = frames.shape[-2:]
    angle = _uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, generator)
    shift_x = MAX_TRANSLATION_FRACTION * width
    shift_y = MAX_TRANSLATION_FRACTION * height
    translate = [_uniform(-shift_x, shift_x, generator), _uniform(-shift_y, shift_y, generator)]
    scale = _uniform(*SCALE_RANGE, generator)
    brightness = _uniform(*BRIGHTNESS_RANGE, generator)
    contrast = _uniform(*CONTRAST_RANGE, generator)

    frames = TF.affine(
        frames, angle=angle, translate=translate, scale=scale, shear=[0.0, 0.0],
        interpolation=TF.InterpolationMode.BILINEAR, fill=0.0,
    )
    frames = TF.adjust_brightness(frames, brightness)
    return TF.adjust_contrast(frames, contrast)


def augment_batch(
    frames: Tensor,
    mask: Tensor,
    generator: torch.Generator,
    temporal_min_fraction: float | None = None,
    spatial: bool = False,
) -> tuple[Tensor, Tensor]:
    """Augment each clip of a batch on its own: first the temporal crop, then spatial jitter.

    Args:
        frames: float (B, T, 3, H, W) in [0, 1].
        mask: (B, T) bool, True on valid frames.
        generator: Source of all random parameters, drawn clip by clip in batch order.
        temporal_min_fraction: ``min_fraction`` of :func:`temporal_crop`; None skips the crop.
        spatial: Apply :func:`spatial_jitter`.

    Returns:
        New frames and mask of the same shapes; the inputs are unchanged. With no
        augmentation chosen, the inputs themselves, and nothing is drawn from ``generator``.
    """
    if temporal_min_fraction is None and not spatial:
        return frames, mask
    clips, masks = [], []
    for clip, clip_mask in zip(frames, mask):
        if temporal_min_fraction is not None:
            clip, clip_mask = temporal_crop(clip, clip_mask, temporal_min_fraction, generator)
        if spatial:
            clip = spatial_jitter(clip, generator)
        clips.append(clip)
        masks.append(clip_mask)
    return torch.stack(clips), torch.stack(masks)


def _randint(high: int, generator: torch.Generator) -> int:
    """Return an integer drawn uniformly from [0, high)."""
    return int(torch.randint(high, (), generator=generator))


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    """Return a float drawn uniformly from [low, high)."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))
