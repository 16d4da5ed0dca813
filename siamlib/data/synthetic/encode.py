"""Write frames to an H.264 .mp4 file with PyAV, byte-identical for identical frames.

NOTE: `siamlib.video.decode.write_video` covers the same need for the rest of the project. The
generator keeps this private writer for its determinism settings (one encoder thread, bitexact
muxing); the two may be merged later.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np


def write_h264(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int,
    crf: int = 18,
    preset: str = "veryfast",
) -> int:
    """Encode RGB frames as H.264 (libx264, yuv420p) in an .mp4 container.

    The file is written under a temporary name and renamed when complete, so an interrupted
    run never leaves a truncated video under `path`. One encoder thread and the `bitexact`
    muxer flag make the bytes a function of the frames and settings alone, for a given PyAV
    and FFmpeg build.

    Args:
        path: Output file; its folder must exist.
        frames: Uint8 RGB frames of shape (H, W, 3), all the same size, H and W even.
        fps: Frames per second.
        crf: x264 constant rate factor.
        preset: x264 speed preset.

    Returns:
        Number of frames written.

    Raises:
        ValueError: If a frame has the wrong dtype or shape, or no frame is given.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with av.open(str(partial), mode="w", format="mp4",
                     options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream(
                "libx264", rate=fps,
                options={"crf": str(crf), "preset": preset, "threads": "1"},
            )
            stream.pix_fmt = "yuv420p"
            size: tuple[int, ...] | None = None
            for frame in frames:
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise ValueError(
                        f"frames must be uint8 arrays of shape (H, W, 3), got {frame.dtype} "
                        f"{frame.shape} at frame {count}"
                    )
                if size is None:
                    size = frame.shape
                    if size[0] % 2 or size[1] % 2:
                        raise ValueError(f"frame height and width must be even, got {size[:2]}")
                    stream.height, stream.width = size[0], size[1]
                elif frame.shape != size:
                    raise ValueError(
                        f"frame {count} has shape {frame.shape}, expected {size} like frame 0"
                    )
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                container.mux(stream.encode(video_frame.reformat(format="yuv420p")))
                count += 1
            if count == 0:
                raise ValueError(f"no frames given for {path}")
            container.mux(stream.encode(None))
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return count
