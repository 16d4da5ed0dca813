"""Measure how often OpenCV's frontal-face Haar cascade finds the face in synthetic videos.

The detector is `siamlib.video.haar.detect_face`, the same one the real-video fallback uses: the
cascade `haarcascade_frontalface_default.xml` bundled with opencv-python (in
`cv2.data.haarcascades`), run on the grey frame shrunk so that its longer side is at most
`siamlib.video.haar.DETECTION_SIDE` pixels, with scaleFactor=1.1, minNeighbors=5 and a smallest
face side of `siamlib.video.haar.MIN_FACE_FRACTION` of the shorter image side. It keeps the
biggest box in each frame.

For each video in ROOT/videos (sorted by file name) every `frame_step`-th frame, starting with
frame 0, is checked. A frame counts as detected when the cascade returns a box. It counts as
detected on the face when that box also contains the two eye centres (the mean of each eye's six
landmarks) and the mouth centre (the mean of the 20 mouth landmarks) from
ROOT/landmarks/<stem>.npy. So a box on the background, or one that covers only part of the face,
does not count. A frame with non-finite landmarks never counts as detected on the face.

Shapes: N frames. Landmark files contain float32 (N, 68, 2) arrays of (x, y) in frame pixels.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from siamlib.landmarks import LEFT_EYE, MOUTH, NUM_LANDMARKS, RIGHT_EYE
from siamlib.video.decode import VideoReader
from siamlib.video.haar import detect_face

logger = logging.getLogger(__name__)

COLUMNS = ("video", "frames_checked", "detected", "detected_on_face")
"""Columns of the table returned by `detection_rate`, one row per video."""


def _key_points(landmarks: np.ndarray) -> np.ndarray:
    """Return the right eye, left eye and mouth centres of one frame.

    Args:
        landmarks: Array of shape (68, 2).

    Returns:
        float64 array of shape (3, 2), each row (x, y).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    return np.stack([
        points[list(RIGHT_EYE)].mean(axis=0),
        points[list(LEFT_EYE)].mean(axis=0),
        points[list(MOUTH)].mean(axis=0),
    ])  # (3, 2)


def box_contains(box: np.ndarray, points: np.ndarray) -> bool:
    """Tell whether a box contains all the given points, edges included.

    Args:
        box: [x, y, width, height] in frame pixels.
        points: Array of shape (P, 2), each row (x, y) in frame pixels.

    Returns:
        True when every point is finite and lies inside the box.
    """
    x, y, width, height = np.asarray(box, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    inside = (
        (points[:, 0] >= x)
        & (points[:, 0] <= x + width)
        & (points[:, 1] >= y)
        & (points[:, 1] <= y + height)
    )  # (P,); False for NaN coordinates
    return bool(inside.all())


def _load_landmarks(path: Path) -> np.ndarray:
    """Load and check one landmark file.

    Args:
        path: A .npy file.

    Returns:
        Array of shape (N, 68, 2).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the array does not have shape (N, 68, 2).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"landmark file {path} not found. Regenerate the dataset or add the file."
        )
    landmarks = np.load(path)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(
            f"invalid landmark file {path}: expected an array of shape (N, {NUM_LANDMARKS}, 2), "
            f"got {landmarks.shape}"
        )
    return landmarks


def _check_video(video: Path, landmarks: np.ndarray, frame_step: int) -> dict[str, object]:
    """Run the cascade on every `frame_step`-th frame of one video.

    Args:
        video: The video file.
        landmarks: Its landmarks, shape (N, 68, 2).
        frame_step: Check frames 0, frame_step, 2 * frame_step, ...

    Returns:
        One row of the `detection_rate` table.

    Raises:
        ValueError: If a checked frame has no landmarks.
    """
    selected = range(0, sys.maxsize, frame_step)
    checked = detected = on_face = 0
    with VideoReader(video) as reader:
        for index, frame in reader.iter_selected(selected):
            if index >= landmarks.shape[0]:
                raise ValueError(
                    f"{video.name}: frame {index} has no landmarks because the landmark file "
                    f"contains only {landmarks.shape[0]} frames. Regenerate the dataset."
                )
            checked += 1
            box = detect_face(frame)
            if box is None:
                continue
            detected += 1
            if box_contains(box, _key_points(landmarks[index])):
                on_face += 1
        num_frames = reader.num_decoded
    if num_frames != landmarks.shape[0]:
        logger.warning(
            "%s: decoded %d frames but the landmark file contains %d",
            video.name,
            num_frames,
            landmarks.shape[0],
        )
    return {
        "video": video.name,
        "frames_checked": checked,
        "detected": detected,
        "detected_on_face": on_face,
    }


def detection_rate(
    root: str | os.PathLike[str],
    frame_step: int = 5,
    max_videos: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Count the frames in which the Haar cascade finds a face, per video.

    Args:
        root: Dataset folder with videos/*.mp4 and landmarks/<stem>.npy.
        frame_step: Check every `frame_step`-th frame, starting with frame 0.
        max_videos: Check only the first this many videos in file-name order; None checks all.
        progress: Show a progress bar over the videos.

    Returns:
        One row per video, in file-name order, with columns video (file name), frames_checked,
        detected (frames with a box) and detected_on_face (frames whose box contains both eye
        centres and the mouth centre of the landmarks).

    Raises:
        ValueError: If frame_step or max_videos is not a positive integer, a landmark file has
            the wrong shape or fewer frames than its video.
        FileNotFoundError: If root/videos contains no .mp4 file or a landmark file is missing.
        siamlib.video.decode.VideoReadError: If a video cannot be decoded.
    """
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise ValueError(f"frame_step must be a positive integer, got {frame_step!r}")
    if max_videos is not None and (
        isinstance(max_videos, bool) or not isinstance(max_videos, int) or max_videos < 1
    ):
        raise ValueError(f"max_videos must be a positive integer or None, got {max_videos!r}")
    root = Path(root)
    videos = sorted((root / "videos").glob("*.mp4"))
    if not videos:
        raise FileNotFoundError(
            f"no .mp4 videos found in {root / 'videos'} (dataset root {root}). "
            "Pass the folder that generate_dataset wrote."
        )
    if max_videos is not None:
        videos = videos[:max_videos]
    logger.info(
        "Checking face detection in %d videos of %s, every %d frames", len(videos), root, frame_step
    )

    rows = []
    for video in tqdm(videos, desc="face detection", unit="video", disable=not progress):
        landmarks = _load_landmarks(root / "landmarks" / f"{video.stem}.npy")
        rows.append(_check_video(video, landmarks, frame_step))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summarise_detection(table: pd.DataFrame) -> dict[str, float | int]:
    """Sum a `detection_rate` table into overall figures.

    Args:
        table: The table returned by `detection_rate`.

    Returns:
        videos, frames_checked, detected, detected_on_face (counts), detection_rate (detected
        divided by frames_checked) and on_face_rate (detected_on_face divided by
        frames_checked). The rates are NaN when no frame was checked.

    Raises:
        ValueError: If a column of the table is missing.
    """
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"table is missing the columns {missing}. Pass the table from detection_rate."
        )
    checked = int(table["frames_checked"].sum())
    detected = int(table["detected"].sum())
    on_face = int(table["detected_on_face"].sum())
    return {
        "videos": len(table),
        "frames_checked": checked,
        "detected": detected,
        "detected_on_face": on_face,
        "detection_rate": detected / checked if checked else float("nan"),
        "on_face_rate": on_face / checked if checked else float("nan"),
    }
