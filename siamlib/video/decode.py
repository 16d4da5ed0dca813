"""Read and write videos as uint8 RGB frame arrays with PyAV.

Shapes: N frames, H height, W width. Frames are uint8 arrays of shape (N, H, W, 3) in RGB order.

Reading counts the frames that actually decode and never trusts the container header's frame count,
because headers of truncated or re-muxed files are often wrong. A rotation stored in the container's
display matrix (phones record portrait video as landscape frames plus a rotation) is applied to
every frame, so frames come out the way a player shows them. Each frame's presentation time is
recorded, so variable frame rate videos can be resampled in time (`siamlib.video.sampling`). Writing produces H.264 (libx264,
yuv420p) with a single-threaded encoder, so the same frames, frame rate and CRF give the same
bytes with the same PyAV/FFmpeg build.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Container, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

logger = logging.getLogger(__name__)

LIMITED_RANGE_TO_FULL = np.clip(
    np.round((np.arange(256) - 16) * 255 / 219), 0, 255
).astype(np.uint8)
"""Lookup table from limited-range luma (16-235, as in most H.264 video) to full-range gray."""

_LUMA_FIRST_FORMATS = frozenset({
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
    "yuv411p", "yuvj411p", "yuv410p", "nv12", "nv21", "nv16", "gray",
})
"""8-bit pixel formats whose first plane is the luma (or gray) image at full resolution."""

_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p",
                                 "gray"})
_COLOR_RANGE_JPEG = 2
"""FFmpeg's AVCOL_RANGE_JPEG: full-range (0-255) samples."""

DEFAULT_CRF = 18
"""libx264 constant rate factor used by `write_video`: 0 is lossless, 51 is the worst quality."""


class VideoReadError(RuntimeError):
    """A video file is missing, empty or cannot be decoded into at least one frame.

    Attributes:
        path: The video file.
        reason: What failed, in a short phrase such as "file is empty".
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")


class VideoReader:
    """Stream the RGB frames of one video file.

    Opening the reader checks the file and reads the frame rate. Iterating decodes the frames one
    at a time, so a long high-resolution video never has to fit in memory at once. Iterate only
    once per reader.

    Example:
        >>> with VideoReader("clip.mp4") as reader:
        ...     for frame in reader:  # (H, W, 3) uint8
        ...         ...

    Attributes:
        path: The video file.
        fps: Frames per second from the stream's average (or guessed) rate.
        num_decoded: Frames decoded so far; after a full iteration, the video's frame count.
        timestamps: Presentation time in seconds of every frame decoded so far, from the
            frame's timestamp, or index / fps for a frame without one.
        rotation: Counter-clockwise rotation in degrees (0, 90, 180 or 270) applied to the
            frames, from the display matrix of the first decoded frame; 0 before decoding.

    Raises:
        VideoReadError: On opening, if the file is missing, not a regular file, empty, not a
            container FFmpeg can open, a still image, has no video stream or has no valid
            frame rate.
            While iterating, if decoding fails or yields no frame at all.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.num_decoded = 0
        self.timestamps: list[float] = []
        self.kept: dict[int, av.VideoFrame] = {}
        self.rotation = 0
        self._rotation_warned = False
        if not self.path.exists():
            raise VideoReadError(self.path, "file not found")
        if not self.path.is_file():
            raise VideoReadError(self.path, "not a regular file")
        if self.path.stat().st_size == 0:
            raise VideoReadError(self.path, "file is empty")

        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as error:
            raise VideoReadError(self.path, f"FFmpeg failed to open it ({_describe(error)})") from error

        # FFmpeg probes the content, not the extension, and reads a single image (for example
        # PNG bytes in a .mp4 file) as a one-frame video through an image demuxer.
        format_name = self._container.format.name
        if format_name == "image2" or format_name.endswith("_pipe"):
            self.close()
            raise VideoReadError(self.path, f"file is a still image, not a video "
                                            f"(FFmpeg format {format_name})")

        if not self._container.streams.video:
            self.close()
            raise VideoReadError(self.path, "no video stream")
        self._stream = self._container.streams.video[0]

        rate = self._stream.average_rate or self._stream.guessed_rate
        if rate is None or not rate > 0:
            self.close()
            raise VideoReadError(self.path, f"no valid frame rate in the stream (got {rate})")
        self.fps = float(rate)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode frames in presentation order.

        Yields:
            One frame of shape (H, W, 3), uint8 RGB.

        Raises:
            VideoReadError: If decoding fails part-way (the message gives the number of frames
                decoded before the failure) or the stream contains no decodable frame.
        """
        for _, frame in self.iter_selected(None):
            yield frame

    def iter_selected(
        self,
        selected: Container[int] | None,
        color: str = "rgb",
        keep: Container[int] = (),
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Decode every frame but convert only the selected ones to arrays.

        All frames are decoded so that num_decoded ends as the video's frame count and
        timestamps holds every frame's time. Skipping the conversion of unselected frames saves
        time on long high-resolution videos.

        Args:
            selected: 0-based indices of the frames to yield, or None for every frame.
            color: "rgb" for (H, W, 3) RGB frames, or "gray" for (H, W) grayscale frames. Gray
                frames of the usual YUV formats are the luma plane itself (expanded to 0-255
                when the video is limited range), which costs almost nothing.
            keep: Indices of frames to hold in `kept` as decoded frames (compact YUV), so that
                `kept_rgb` can convert them after the pass without decoding again.

        Yields:
            (index, frame), frame uint8 and upright (the display rotation applied), in
            presentation order.

        Raises:
            ValueError: If color is not "rgb" or "gray".
            VideoReadError: If decoding fails part-way (the message gives the number of frames
                decoded before the failure) or the stream contains no decodable frame.
        """
        if color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', got {color!r}")
        try:
            for frame in self._container.decode(self._stream):
                index = self.num_decoded
                self.num_decoded += 1
                self.timestamps.append(
                    float(frame.time) if frame.time is not None else index / self.fps
                )
                if index == 0:
                    self.rotation = self._read_rotation(frame)
                if index in keep:
                    self.kept[index] = frame
                if selected is None or index in selected:
                    if color == "gray":
                        yield index, self._upright(_gray(frame))  # (H, W)
                    else:
                        yield index, self._upright(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as error:
            raise VideoReadError(
                self.path,
                f"decoding failed after {self.num_decoded} frames ({_describe(error)})",
            ) from error

        if self.num_decoded == 0:
            raise VideoReadError(self.path, "no frame could be decoded")
        header_count = self._stream.frames
        if header_count and header_count != self.num_decoded:
            logger.warning(
                "%s: decoded %d frames but the container header reports %d; "
                "using the decoded count",
                self.path.name,
                self.num_decoded,
                header_count,
            )

    def kept_rgb(self, index: int) -> np.ndarray:
        """Convert a frame held by `iter_selected(..., keep=...)` to an upright RGB array.

        Raises:
            KeyError: If the frame was not kept.
        """
        return self._upright(self.kept[index].to_ndarray(format="rgb24"))  # (H, W, 3)

    def expected_frames(self) -> int | None:
        """The frame count the container header claims, or None when it gives none.

        Headers of truncated or re-muxed files are often wrong, so use this only as a guess
        that the decoded count confirms.
        """
        count = self._stream.frames
        return int(count) if count and count > 0 else None

    def _upright(self, array: np.ndarray) -> np.ndarray:
        if not self.rotation:
            return array
        return np.ascontiguousarray(np.rot90(array, k=self.rotation // 90))

    def _read_rotation(self, frame: av.VideoFrame) -> int:
        """Return the frame's display rotation rounded to a multiple of 90 degrees, in [0, 360)."""
        try:
            degrees = float(frame.rotation or 0)
        except (AttributeError, ValueError):
            return 0
        if not math.isfinite(degrees):
            return 0
        quarter_turns = round(degrees / 90)
        if abs(degrees - 90 * quarter_turns) > 1 and not self._rotation_warned:
            self._rotation_warned = True
            logger.warning("%s: display rotation %.1f degrees is not a multiple of 90; "
                           "rotating by %d instead", self.path.name, degrees, 90 * quarter_turns)
        return (90 * quarter_turns) % 360

    def close(self) -> None:
        """Close the underlying container. Calling it again does nothing."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _gray(frame: av.VideoFrame) -> np.ndarray:
    """Return a decoded frame as a uint8 (H, W) grayscale image, from its luma plane if it has one."""
    if frame.format.name not in _LUMA_FIRST_FORMATS:
        return frame.to_ndarray(format="gray")  # (H, W)
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    luma = rows[:, :plane.width]  # (H, W), a view into the frame's buffer
    full_range = (frame.format.name in _FULL_RANGE_FORMATS
                  or getattr(frame, "color_range", 0) == _COLOR_RANGE_JPEG)
    if full_range:
        return np.ascontiguousarray(luma)
    return cv2.LUT(luma, LIMITED_RANGE_TO_FULL)  # (H, W), a new contiguous array


def _describe(error: av.error.FFmpegError) -> str:
    """Return FFmpeg's message without the errno prefix and repeated file name."""
    return error.strerror or str(error)


def read_video(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file into memory.

    Args:
        path: Video file in any container and codec that the installed FFmpeg decodes.

    Returns:
        frames: uint8 array of shape (N, H, W, 3), RGB, with N the number of frames that decoded.
        fps: Frames per second from the stream.

    Raises:
        VideoReadError: If the file is missing, empty, not a video, truncated so that decoding
            fails, or yields no frame. The message names the file and the reason.
    """
    with VideoReader(path) as reader:
        frames = list(reader)
        fps = reader.fps
    return np.stack(frames), fps  # (N, H, W, 3)


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    crf: int = DEFAULT_CRF,
) -> None:
    """Encode frames as H.264 (libx264, yuv420p) into a video file, replacing any existing file.

    The container follows the file extension (".mp4" for MP4). The encoder runs on one thread so
    the output bytes depend only on the inputs and the PyAV/FFmpeg build.

    Args:
        path: Output file. Its folder must exist.
        frames: uint8 array of shape (N, H, W, 3), RGB, with N >= 1 and H and W even, because
            yuv420p stores colour at half resolution in both directions.
        fps: Frames per second, positive. Rates are stored as fractions with denominators up to
            1001, which represents 25, 30000/1001 (29.97) and similar rates exactly.
        crf: libx264 constant rate factor in [0, 51]; lower means higher quality and bigger files.

    Raises:
        ValueError: If frames, fps or crf are invalid (the message names the argument).
        av.error.FFmpegError: If FFmpeg fails to write the file, for example a missing folder.
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 numpy array, got {type(frames).__name__} "
                         f"of dtype {getattr(frames, 'dtype', None)}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must have shape (N, H, W, 3) with N >= 1, got {frames.shape}")
    height, width = frames.shape[1:3]
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise ValueError(f"frames height and width must be even and >= 2 for yuv420p, "
                         f"got H={height}, W={width}")
    if not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
