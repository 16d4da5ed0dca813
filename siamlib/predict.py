"""Estimate the age in one video with a trained SIAM checkpoint and draw its attention.

Shape letters: T clip frames, S side of the square aligned crop, h x w positions of the
spatial attention map, V valid clip frames.

A video goes through the preprocessing of training (:func:`siamlib.video.extract.extract_clip`
with the ``preprocess`` settings of params.yaml), and its clip through the uint8 to float
conversion of training and evaluation (:func:`siamlib.training.fold.predict`, which feeds the
model through :class:`siamlib.training.dataset.ClipDataset`). The attention maps are the
model's weights over positions and frames. They show where the weights were large, not why
the model predicted an age.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch.nn import functional as F

from siamlib.evaluation.style import save_figure, set_style
from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.training.checkpoint import load_checkpoint
from siamlib.training.fold import predict as predict_clips
from siamlib.video.decode import write_video
from siamlib.video.extract import (
    ClipExtractionError,
    ExtractedClip,
    PreprocessSettings,
    extract_clip,
)

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS: tuple[str, ...] = ("model_state", "model_config", "age_mean", "age_std")
"""Checkpoint entries that :func:`load_model` needs to rebuild a model."""

OVERLAY_COLORMAP = "inferno"
OVERLAY_ALPHA = 0.45
"""Opacity of the spatial attention drawn over a frame, in [0, 1]."""

VIDEO_SCALE = 4
"""Factor by which :func:`write_attention_video` enlarges each aligned frame."""

VIDEO_FPS = 2.0
"""Frame rate of the attention video, so that each clip frame shows for half a second."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or does not contain a SIAM model.

    Attributes:
        path: The checkpoint file.
        reason: What failed, in a short phrase.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot load checkpoint {self.path}: {reason}")


class ImageSizeMismatchError(ValueError):
    """The model takes crops of another size than the preprocessing settings produce.

    Attributes:
        model_size: Side of the model's square input in pixels (``SIAMConfig.image_size``).
        settings_size: Side of the aligned crop in pixels (``PreprocessSettings.image_size``).
    """

    def __init__(self, model_size: int, settings_size: int) -> None:
        self.model_size = model_size
        self.settings_size = settings_size
        super().__init__(
            f"the model takes {model_size}x{model_size} pixel crops but the preprocessing "
            f"settings give image_size {settings_size}"
        )


@dataclass
class VideoPrediction:
    """The estimated age of one video with the model's attention over its clip.

    Attributes:
        video_path: The video file.
        age: Estimated age in years.
        extracted: The aligned clip (T, S, S, 3) with its mask, frame indices and tracks.
        spatial_attention: float32 (T, h, w), the spatial attention map of every clip frame;
            0 on padded frames.
        temporal_attention: float32 (T,), the weight of every clip frame; 0 on padded frames.
    """

    video_path: Path
    age: float
    extracted: ExtractedClip
    spatial_attention: np.ndarray
    temporal_attention: np.ndarray

    @property
    def times(self) -> np.ndarray:
        """float64 (T,), time in seconds of each clip frame since the video's first frame.

        Frame timestamps are used, so that variable frame rate videos get their real times.
        At a constant frame rate this equals index / fps.
        """
        timestamps = self.extracted.timestamps  # (N,)
        return timestamps[self.extracted.indices] - timestamps[0]

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one, at the video's fps."""
        timestamps = self.extracted.timestamps  # (N,)
        return float(timestamps[-1] - timestamps[0]) + 1.0 / self.extracted.fps

    @property
    def valid_positions(self) -> np.ndarray:
        """int64 (V,), the clip positions that hold a real frame, in time order."""
        return np.flatnonzero(self.extracted.mask)


def load_model(checkpoint_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> SIAM:
    """Rebuild a trained SIAM from a checkpoint written by training.

    The model is built as training built it (``SIAM(config, age_mean, age_std)`` and the stored
    state dict), except that ``pretrained_weights`` is cleared. The checkpoint's state replaces
    those weights anyway, so the file they came from need not exist on this machine.

    Args:
        checkpoint_path: A fold checkpoint (see :mod:`siamlib.training.checkpoint`).
        device: Device to put the model on.

    Returns:
        The model in eval mode on ``device``.

    NOTE: only the CPU path has been run; CUDA goes through the same ``.to(device)`` and
    :func:`siamlib.training.fold.predict` as evaluation.

    Raises:
        CheckpointError: If the file is missing, empty, not a PyTorch checkpoint, lacks one of
            :data:`CHECKPOINT_KEYS`, or its config or state dict is invalid.
    """
    path = Path(checkpoint_path)
    checkpoint = _read_checkpoint(path)

    config_values = checkpoint["model_config"]
    if not isinstance(config_values, dict):
        raise CheckpointError(path, f"model_config is a {type(config_values).__name__}, not a dict")
    try:
        config = SIAMConfig.from_dict({**config_values, "pretrained_weights": None})
        model = SIAM(config, float(checkpoint["age_mean"]), float(checkpoint["age_std"]))
        model.load_state_dict(checkpoint["model_state"])
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            path, f"it does not contain a valid SIAM model ({_summarize(error)})"
        ) from error

    if not checkpoint.get("complete", True):
        logger.warning(
            "checkpoint %s is from an unfinished training run (best epoch so far: %s)",
            path, checkpoint.get("epoch", "unknown"),
        )
    logger.info(
        "loaded SIAM from %s: %dx%d input, %s spatial attention, %s temporal pooling",
        path, config.image_size, config.image_size, config.spatial_attention,
        config.temporal_pooling,
    )
    return model.to(device).eval()


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint dict and check that it has :data:`CHECKPOINT_KEYS`."""
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if not path.is_file():
        raise CheckpointError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "file is empty")
    try:
        checkpoint = load_checkpoint(path)
    # torch.load raises UnpicklingError for foreign data, EOFError or OSError for a truncated
    # file, and RuntimeError for a damaged zip archive (PyTorch 2.14).
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError) as error:
        raise CheckpointError(
            path,
            f"not a readable PyTorch checkpoint ({type(error).__name__}), so it is damaged or "
            "another kind of file",
        ) from error

    if not isinstance(checkpoint, dict):
        raise CheckpointError(path, f"it contains a {type(checkpoint).__name__}, not a dict")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(path, f"keys {missing} are missing, so it is not a SIAM checkpoint")
    return checkpoint


def _summarize(error: Exception, max_length: int = 200) -> str:
    """Return the first two lines of an error message as one line of at most ``max_length``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ".join(lines[:2]) or type(error).__name__
    return text if len(text) <= max_length else text[: max_length - 3] + "..."


def check_image_size(model: SIAM, settings: PreprocessSettings) -> None:
    """Check that ``settings`` make crops of the size the model takes.

    Raises:
        ImageSizeMismatchError: If ``settings.image_size`` differs from the model's.
    """
    if model.config.image_size != settings.image_size:
        raise ImageSizeMismatchError(model.config.image_size, settings.image_size)


def settings_for_video(settings: PreprocessSettings) -> PreprocessSettings:
    """Return ``settings`` with a landmark source that works on any video file.

    ``landmarks="dataset"`` reads the tracks a dataset ships, which an arbitrary video does not
    have, so dlib's tracker replaces it. Other sources are kept.
    """
    if settings.landmarks == "dataset":
        logger.info('preprocess.landmarks is "dataset", which needs a dataset track; using "dlib"')
        return dataclasses.replace(settings, landmarks="dlib")
    return settings


def predict_video(
    video_path: str | os.PathLike[str], model: SIAM, settings: PreprocessSettings
) -> VideoPrediction:
    """Extract the aligned clip of a video and predict its age and attention in eval mode.

    Args:
        video_path: The video file.
        model: A trained SIAM; it runs on its own device, and its train/eval mode is restored.
        settings: The preprocessing settings the model was trained with. A ``"dataset"``
            landmark source is replaced by ``"dlib"`` (see :func:`settings_for_video`).

    Returns:
        The age, the extracted clip and the attention maps.

    Raises:
        ImageSizeMismatchError: If ``settings.image_size`` differs from the model's; checked
            before the video is read.
        VideoReadError: If the video cannot be decoded.
        ClipExtractionError: If no usable face is found, or the clip has no valid frame.
    """
    video_path = Path(video_path)
    check_image_size(model, settings)
    settings = settings_for_video(settings)

    extracted = extract_clip(video_path, settings)
    if not extracted.mask.any():
        raise ClipExtractionError(video_path, "the clip has no frame with an aligned face")
    logger.info(
        "%s: %d of %d clip frames valid, from %d decoded frames at %.2f fps",
        video_path.name, int(extracted.mask.sum()), len(extracted.mask),
        extracted.num_decoded, extracted.fps,
    )

    ages, spatial, temporal = predict_clips(
        model, extracted.clip[None], extracted.mask[None], np.array([0]), batch_size=1
    )
    return VideoPrediction(
        video_path=video_path,
        age=float(ages[0]),
        extracted=extracted,
        spatial_attention=spatial[0],  # (T, h, w)
        temporal_attention=temporal[0],  # (T,)
    )


def upsample_attention(spatial_attention: np.ndarray, size: int) -> np.ndarray:
    """Resize spatial attention maps (T, h, w) to (T, size, size) by bilinear interpolation.

    Each map position covers a block of crop pixels, so the map is stretched over the whole
    crop (``align_corners=False``).
    """
    maps = torch.from_numpy(np.asarray(spatial_attention, dtype=np.float32))
    maps = maps[:, None]  # (T, 1, h, w)
    resized = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)
    return resized[:, 0].numpy()  # (T, size, size)


def attention_scale(prediction: VideoPrediction) -> float:
    """Return the largest spatial attention value over the valid frames, or 1 if it is 0.

    All frames share this colour scale, so their overlays compare.
    """
    valid = prediction.spatial_attention[prediction.valid_positions]  # (V, h, w)
    largest = float(valid.max()) if valid.size else 0.0
    return largest if largest > 0 else 1.0


def overlay_attention(frames: np.ndarray, maps: np.ndarray, scale: float) -> np.ndarray:
    """Blend attention maps over frames as a heat map.

    Args:
        frames: uint8 (V, S, S, 3) RGB frames.
        maps: (V, S, S) attention maps, drawn from 0 (dark) to ``scale`` (bright).
        scale: The map value drawn brightest; positive.

    Returns:
        uint8 (V, S, S, 3) RGB frames with the heat map at opacity :data:`OVERLAY_ALPHA`.
    """
    heat = colormaps[OVERLAY_COLORMAP](np.clip(maps / scale, 0.0, 1.0))[..., :3]  # (V, S, S, 3)
    blended = (1.0 - OVERLAY_ALPHA) * frames.astype(np.float64) + OVERLAY_ALPHA * 255.0 * heat
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def attention_figure(prediction: VideoPrediction) -> Figure:
    """Draw the spatial attention over each valid frame and the temporal attention over time.

    The top row shows the V valid aligned frames with the spatial attention upsampled to the
    crop, on one colour scale, each titled with its time in the video. The bottom panel shows
    each frame's temporal attention weight against time, with the uniform weight 1/V dashed.
    """
    set_style()
    positions = prediction.valid_positions  # (V,)
    num_valid = len(positions)
    extracted = prediction.extracted
    times = prediction.times  # (T,)
    size = extracted.clip.shape[1]
    maps = upsample_attention(prediction.spatial_attention[positions], size)  # (V, S, S)
    scale = attention_scale(prediction)

    figure = Figure(figsize=(max(6.0, 1.1 * num_valid + 1.0), 3.8), layout="constrained")
    grid = figure.add_gridspec(2, num_valid, height_ratios=(1.0, 1.3))
    frame_axes = [figure.add_subplot(grid[0, column]) for column in range(num_valid)]
    heat_image = None
    for axes, position, heat in zip(frame_axes, positions, maps):
        axes.imshow(extracted.clip[position])
        heat_image = axes.imshow(
            heat, cmap=OVERLAY_COLORMAP, alpha=OVERLAY_ALPHA, vmin=0.0, vmax=scale
        )
        axes.set_title(f"{times[position]:.2f} s", fontsize="x-small")
        axes.set_axis_off()
    colorbar = figure.colorbar(heat_image, ax=frame_axes, fraction=0.02, pad=0.01)
    colorbar.set_label("spatial attention", fontsize="x-small")
    colorbar.ax.tick_params(labelsize="xx-small")

    weights_axes = figure.add_subplot(grid[1, :])
    valid_times = times[positions]  # (V,)
    spacing = np.diff(valid_times)
    width = 0.8 * float(spacing[spacing > 0].min()) if (spacing > 0).any() else 0.1
    weights_axes.bar(valid_times, prediction.temporal_attention[positions], width=width)
    weights_axes.axhline(1.0 / num_valid, color="0.3", linestyle="--", linewidth=1,
                         label=f"uniform weight 1/{num_valid}")
    weights_axes.set_xlim(-width, prediction.duration + width)
    weights_axes.set_xlabel("time in the video (s)")
    weights_axes.set_ylabel("temporal attention weight")
    weights_axes.legend(fontsize="small", loc="upper right")

    figure.suptitle(
        f"Estimated age {prediction.age:.1f} years — {prediction.video_path.name}"
    )
    return figure


def plot_attention(prediction: VideoPrediction, path: str | os.PathLike[str]) -> Path:
    """Draw :func:`attention_figure` and save it as a PNG file, creating its folder.

    Returns:
        The path written.
    """
    path = Path(path)
    save_figure(attention_figure(prediction), path)
    logger.info("wrote the attention figure %s", path)
    return path


def attention_video_frames(prediction: VideoPrediction, scale: int = VIDEO_SCALE) -> np.ndarray:
    """Draw the spatial attention over each valid aligned frame, enlarged ``scale`` times.

    Args:
        prediction: The prediction to draw.
        scale: Positive integer factor; pixels are repeated (nearest neighbour).

    Returns:
        uint8 (V, scale * S', scale * S', 3) RGB frames, where S' is S rounded up to an even
        number by repeating the last row and column, so that H.264 in yuv420p can store them.

    Raises:
        ValueError: If ``scale`` is not a positive integer.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    positions = prediction.valid_positions  # (V,)
    frames = prediction.extracted.clip[positions]  # (V, S, S, 3)
    size = frames.shape[1]
    maps = upsample_attention(prediction.spatial_attention[positions], size)  # (V, S, S)
    overlaid = overlay_attention(frames, maps, attention_scale(prediction))  # (V, S, S, 3)
    if (size * scale) % 2:
        overlaid = np.pad(overlaid, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    return overlaid.repeat(scale, axis=1).repeat(scale, axis=2)


def write_attention_video(
    prediction: VideoPrediction,
    path: str | os.PathLike[str],
    scale: int = VIDEO_SCALE,
    fps: float = VIDEO_FPS,
) -> Path:
    """Write the valid aligned frames with their spatial attention as an H.264 video.

    Args:
        prediction: The prediction to draw.
        path: Output file, e.g. ``attention.mp4``; its folder is created.
        scale: Positive integer enlargement of each aligned frame.
        fps: Frames per second of the output; the default shows each clip frame for 0.5 s.

    Returns:
        The path written.

    Raises:
        ValueError: If ``scale`` or ``fps`` is invalid.
        av.error.FFmpegError: If FFmpeg fails to write the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = attention_video_frames(prediction, scale)  # (V, H, W, 3)
    write_video(path, frames, fps)
    logger.info("wrote the attention video %s (%d frames at %g fps)", path, len(frames), fps)
    return path
