"""Time the preprocessing of a 1080p, 50 fps H.264 clip against decoding it.

UvA-NEMO's videos are 1920x1080 at 50 fps. This script renders such a clip from scikit-image's
bundled `astronaut` photograph (her face about 430 pixels tall, moved by a small rotation and
shift every frame), encodes it as H.264 with PyAV, and times, in one run on this machine:

    decode       every frame decoded, nothing converted (the floor for any reader)
    decode_rgb   every frame decoded and converted to an RGB array (what reading a video means)
    preprocess   `extract_clip` with dlib's tracker: decode, detect and track 68 landmarks,
                 align, decode again and warp the sampled frames; once per `detect_every`
    predict      `siamlib.predict.predict_video`, the latency of one video: its preprocessing
                 (detect_every 5) and the default SIAM of params.yaml (untrained weights; the
                 time does not depend on them), on one core

Each step runs `--repeats` times and the fastest time counts. Ratios to decode_rgb are
printed as a Markdown table; timings drift between machines and runs, ratios less so.

Usage:
    .venv/bin/python benchmarks/preprocess_speed.py [--seconds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data
import torch

from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.predict import predict_video
from siamlib.video.decode import VideoReader, write_video
from siamlib.video.dlib_tracker import TrackerSettings
from siamlib.video.extract import PreprocessSettings, extract_clip

WIDTH, HEIGHT, FPS = 1920, 1080, 50.0
FACE_CENTRE = (220.0, 120.0)
"""Centre of the astronaut's face in the 512 x 512 photograph, (x, y) in pixels."""
SCALE = 3.4


def render_clip(path: Path, seconds: float) -> int:
    """Write a 1080p, 50 fps H.264 clip of the astronaut's face moving slightly."""
    image = skimage.data.astronaut()  # (512, 512, 3)
    num_frames = int(round(seconds * FPS))
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)  # (N, H, W, 3)
    for index in range(num_frames):
        matrix = cv2.getRotationMatrix2D(FACE_CENTRE, 2 * np.sin(index / 10), SCALE)
        matrix[:, 2] += (WIDTH / 2 - FACE_CENTRE[0] + 20 * np.sin(index / 15),
                         HEIGHT / 2 - FACE_CENTRE[1] + 10 * np.cos(index / 12))
        frames[index] = cv2.warpAffine(image, matrix, (WIDTH, HEIGHT),
                                       borderValue=(90, 90, 90))
    write_video(path, frames, FPS)
    return num_frames


def decode_only(path: Path) -> None:
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            pass


def decode_rgb(path: Path) -> None:
    with VideoReader(path) as reader:
        for _ in reader:
            pass


def fastest(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step (default 3)")
    arguments = parser.parse_args()
    cv2.setNumThreads(1)  # one core per video, as in the preprocessing workers
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip_1080p50.mp4"
        num_frames = render_clip(path, arguments.seconds)
        timings = {
            "decode": fastest(lambda: decode_only(path), arguments.repeats),
            "decode_rgb": fastest(lambda: decode_rgb(path), arguments.repeats),
        }
        faces = {}
        for detect_every in (1, 5):
            settings = PreprocessSettings(landmarks="dlib",
                                          tracker=TrackerSettings(detect_every=detect_every))
            extract_clip(path, settings)  # loads dlib's model once, outside the timing
            timings[f"preprocess, detect_every={detect_every}"] = fastest(
                lambda: extract_clip(path, settings), arguments.repeats)
            faces[detect_every] = extract_clip(path, settings).quality["face_fraction"]
        model = SIAM(SIAMConfig(image_size=settings.image_size), age_mean=30.0, age_std=10.0)
        predict_video(path, model.eval(), settings)  # warm-up, outside the timing
        timings["predict (preprocess + SIAM), detect_every=5"] = fastest(
            lambda: predict_video(path, model, settings), arguments.repeats)

    print(f"{num_frames} frames of {WIDTH}x{HEIGHT} at {FPS:g} fps, H.264; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"fastest of {arguments.repeats} runs; face found in "
          + ", ".join(f"{100 * value:.0f}% (detect_every={key})" for key, value in faces.items()))
    print()
    print("| step | seconds | ms per frame | ratio to decode_rgb |")
    print("|---|---:|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} | {1000 * seconds / num_frames:.1f} | "
              f"{seconds / timings['decode_rgb']:.2f} |")


if __name__ == "__main__":
    main()
