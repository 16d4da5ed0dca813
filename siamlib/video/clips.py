"""Build and load the on-disk cache of aligned, fixed-length clips for a set of videos.

Shapes: M annotation rows, K videos kept (status "ok"), T frames per clip, S crop side, N frames
of one video.

Cache layout in out_dir:

    clips.npy         uint8 (K, T, S, S, 3) aligned RGB clips, zeros at padding positions.
                      Written with np.lib.format.open_memmap, so np.load(..., mmap_mode="r")
                      reads it without loading it into memory.
    mask.npy          bool (K, T), False at padding positions of videos shorter than T.
    index.csv         One row per annotation row (all M, kept or skipped). The columns are
                      the annotation columns, then row (position in clips.npy, -1 when
                      skipped), num_decoded, fps, status ("ok" or "skipped") and reason
                      (empty when ok). A video that was not decoded has num_decoded 0 and
                      an empty fps.
    tracks/<stem>.npz Full-rate tracks of each kept video, see `siamlib.video.extract.save_track`.

Kept videos appear in clips.npy in annotation order. A build first deletes index.csv, writes
every file under a temporary name and renames it into place, and renames index.csv last, so a
cache with index.csv is complete. For the same inputs and library versions, every cache file is
byte-identical between runs whatever the number of workers (numpy 2 writes `.npz` archives with a
fixed timestamp).
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import numbers
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from siamlib.video.align import (
    DEFAULT_EYE_DISTANCE,
    DEFAULT_EYE_Y,
    DEFAULT_SMOOTHING_WINDOW,
    check_alignment_arguments,
)
from siamlib.video.decode import VideoReadError
from siamlib.video.extract import ClipExtractionError, extract_clip, save_track
from siamlib.video.sampling import sample_indices

__all__ = ["build_clip_cache", "load_clip_cache", "load_sampled_indices", "sample_indices"]

logger = logging.getLogger(__name__)

CLIPS_FILE = "clips.npy"
MASK_FILE = "mask.npy"
INDEX_FILE = "index.csv"
TRACKS_DIR = "tracks"
PARTS_DIR = ".parts"
"""Temporary folder for per-video clips while workers run, removed when the cache is complete."""

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
INDEX_COLUMNS = ("row", "num_decoded", "fps", "status", "reason")


def _process_video(task: dict[str, Any]) -> dict[str, Any]:
    """Extract one video's clip into the parts folder and its tracks into the tracks folder.

    Runs in a worker process. Failures that belong to the video (decoding, landmarks, no face)
    become status "skipped" with their reason, and any other exception propagates.
    """
    result: dict[str, Any] = {
        "position": task["position"],
        "num_decoded": 0,
        "fps": float("nan"),
        "status": STATUS_SKIPPED,
        "reason": "",
        "mask": None,
    }
    try:
        extracted = extract_clip(
            task["video_path"],
            task["landmarks_path"],
            task["num_frames"],
            task["image_size"],
            task["eye_distance"],
            task["eye_y"],
            task["smoothing_window"],
        )
    except VideoReadError as error:
        result["reason"] = error.reason
        return result
    except ClipExtractionError as error:
        result.update(reason=error.reason, num_decoded=error.num_decoded, fps=error.fps)
        return result

    np.save(task["part_path"], extracted.clip, allow_pickle=False)
    save_track(task["track_path"], extracted)
    result.update(
        num_decoded=extracted.num_decoded,
        fps=extracted.fps,
        status=STATUS_OK,
        mask=extracted.mask,
    )
    return result


def _init_worker() -> None:
    # One OpenCV thread per worker process, because the pool already uses the cores.
    cv2.setNumThreads(1)


def _run_tasks(
    tasks: list[dict[str, Any]], workers: int, progress: bool
) -> list[dict[str, Any]]:
    """Run `_process_video` over the tasks and return the results in task order."""
    results: dict[int, dict[str, Any]] = {}
    bar = tqdm(total=len(tasks), desc="clip cache", unit="video", disable=not progress)
    with bar:
        if workers == 1:
            for task in tasks:
                results[task["position"]] = _process_video(task)
                bar.update(1)
        else:
            # A forked child inherits locks held by the parent's threads (OpenCV, PyTorch) and
            # can deadlock, so workers are spawned instead.
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_worker
            ) as pool:
                futures = [pool.submit(_process_video, task) for task in tasks]
                for future in concurrent.futures.as_completed(futures):
                    result = future.result()
                    results[result["position"]] = result
                    bar.update(1)
    return [results[position] for position in range(len(tasks))]


def _check_annotations(annotations: pd.DataFrame) -> None:
    if not isinstance(annotations, pd.DataFrame):
        raise ValueError(f"annotations must be a pandas DataFrame, "
                         f"got {type(annotations).__name__}")
    missing = [column for column in ("video", "path") if column not in annotations.columns]
    if missing:
        raise ValueError(f"annotations must have columns 'video' and 'path', missing {missing}")
    if len(annotations) == 0:
        raise ValueError("annotations has no rows, so there is no video to cache")
    clashing = [column for column in INDEX_COLUMNS if column in annotations.columns]
    if clashing:
        raise ValueError(f"annotations must not have the columns that the index adds, "
                         f"got {clashing}")
    stems = annotations["video"].map(lambda name: Path(str(name)).stem)
    duplicates = sorted(stems[stems.duplicated()].unique())
    if duplicates:
        raise ValueError(f"annotations 'video' must have unique file stems because tracks are "
                         f"named by stem, got duplicates {duplicates[:5]}")


def _resolve_workers(workers: int | None, num_videos: int) -> int:
    if workers is None:
        return max(1, min(os.cpu_count() or 1, num_videos))
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return min(int(workers), num_videos)


def _write_atomic_npy(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        np.save(file, array, allow_pickle=False)
    os.replace(temporary, path)


def _assemble_clips(
    path: Path,
    part_paths: list[Path],
    num_frames: int,
    image_size: int,
) -> None:
    """Copy the per-video parts into one memory-mappable clips file, in the given order."""
    shape = (len(part_paths), num_frames, image_size, image_size, 3)  # (K, T, S, S, 3)
    temporary = path.with_name(f".{path.name}.tmp")
    if not part_paths:
        # np.memmap cannot map a zero-byte array, so an empty cache is saved directly.
        _write_atomic_npy(path, np.zeros(shape, dtype=np.uint8))
        return
    clips = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
    for row, part_path in enumerate(part_paths):
        clips[row] = np.load(part_path, allow_pickle=False)  # (T, S, S, 3)
    clips.flush()
    del clips
    os.replace(temporary, path)


def build_clip_cache(
    annotations: pd.DataFrame,
    landmarks_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    num_frames: int,
    image_size: int,
    progress: bool = True,
    workers: int | None = None,
    eye_distance: float = DEFAULT_EYE_DISTANCE,
    eye_y: float = DEFAULT_EYE_Y,
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
) -> pd.DataFrame:
    """Align, sample and cache a fixed-length clip for every video in an annotation table.

    Each video is decoded, aligned by its smoothed eye track (`siamlib.video.align`) and sampled
    to num_frames frames spread uniformly over the video (`sample_indices`). A video is
    skipped when it is missing or does not decode, or when its landmark file is missing,
    unreadable or has a frame count different from the decoded video. With the fallback, a
    video is also skipped when no face is found. Skipped videos are logged by file name and
    recorded as "skipped" with the reason. The cache layout is in the module docstring.

    NOTE: with landmarks_dir None, eye centres come from OpenCV's Haar frontal-face cascade at
    fixed positions in the face box (`siamlib.video.haar`), a coarse stand-in until a real
    68-point landmark tracker exists. Tracks from it carry NaN for every point but the eyes.

    Args:
        annotations: Table with at least the columns video (file name) and path (video file),
            one row per video; every column is copied into index.csv.
        landmarks_dir: Folder with `<video stem>.npy` landmark tracks, float (N, 68, 2) in
            frame pixels, or None for the Haar-cascade fallback.
        out_dir: Folder for the cache, created if missing. Existing cache files are replaced.
        num_frames: Frames per clip T, >= 1.
        image_size: Side S of the aligned square crop in pixels.
        progress: Whether to show a tqdm progress bar over videos.
        workers: Number of worker processes. None uses one per CPU core, and 1 runs every video
            in this process. Workers are started with "spawn", which imports the caller's main
            module again, so a script that calls this with more than one worker must guard its
            entry point with `if __name__ == "__main__":`. Notebooks need no guard.
        eye_distance: Canonical eye distance as a fraction of S.
        eye_y: Canonical eye height as a fraction of S from the top.
        smoothing_window: Odd number of frames in the moving average over the eye track.

    Returns:
        The index table as written to index.csv, one row per annotation row.

    Raises:
        ValueError: If an argument is invalid (the message names it).
    """
    _check_annotations(annotations)
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral):
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    check_alignment_arguments(image_size, eye_distance, eye_y, smoothing_window)
    workers = _resolve_workers(workers, len(annotations))

    out_dir = Path(out_dir)
    tracks_dir = out_dir / TRACKS_DIR
    parts_dir = out_dir / PARTS_DIR
    tracks_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX_FILE).unlink(missing_ok=True)
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir()

    tasks = []
    for position, (video, video_path) in enumerate(
        zip(annotations["video"], annotations["path"])
    ):
        stem = Path(str(video)).stem
        landmarks_path = None if landmarks_dir is None else Path(landmarks_dir) / f"{stem}.npy"
        tasks.append({
            "position": position,
            "video": str(video),
            "video_path": str(video_path),
            "landmarks_path": None if landmarks_path is None else str(landmarks_path),
            "num_frames": int(num_frames),
            "image_size": int(image_size),
            "eye_distance": float(eye_distance),
            "eye_y": float(eye_y),
            "smoothing_window": int(smoothing_window),
            "part_path": str(parts_dir / f"{position}.npy"),
            "track_path": str(tracks_dir / f"{stem}.npz"),
        })

    # The worker count goes to DEBUG: it depends on the machine, and INFO lines end up in the
    # executed notebooks, which must be the same on every machine.
    logger.info("Building the clip cache in %s from %d videos", out_dir, len(tasks))
    logger.debug("Using %d worker processes", workers)
    results = _run_tasks(tasks, workers, progress)

    kept_parts: list[Path] = []
    masks: list[np.ndarray] = []
    rows: list[int] = []
    for task, result in zip(tasks, results):
        if result["status"] == STATUS_OK:
            rows.append(len(kept_parts))
            kept_parts.append(Path(task["part_path"]))
            masks.append(result["mask"])
        else:
            rows.append(-1)
            Path(task["track_path"]).unlink(missing_ok=True)
            logger.warning("Skipped video %s: %s", task["video"], result["reason"])

    _assemble_clips(out_dir / CLIPS_FILE, kept_parts, int(num_frames), int(image_size))
    mask = np.stack(masks) if masks else np.zeros((0, num_frames), dtype=bool)  # (K, T)
    _write_atomic_npy(out_dir / MASK_FILE, mask)

    index = annotations.reset_index(drop=True).copy()
    index["row"] = rows
    index["num_decoded"] = [result["num_decoded"] for result in results]
    index["fps"] = [result["fps"] for result in results]
    index["status"] = [result["status"] for result in results]
    index["reason"] = [result["reason"] for result in results]
    temporary_index = out_dir / f".{INDEX_FILE}.tmp"
    index.to_csv(temporary_index, index=False)
    os.replace(temporary_index, out_dir / INDEX_FILE)
    shutil.rmtree(parts_dir, ignore_errors=True)

    logger.info("%d of %d videos used for the clip cache (%d skipped)",
                len(kept_parts), len(tasks), len(tasks) - len(kept_parts))
    return index


def load_clip_cache(
    out_dir: str | os.PathLike[str],
) -> tuple[np.memmap | np.ndarray, np.ndarray, pd.DataFrame]:
    """Open a cache written by `build_clip_cache`, keeping only the videos with status "ok".

    Args:
        out_dir: The cache folder.

    Returns:
        clips: uint8 array of shape (K, T, S, S, 3), memory-mapped read-only (a plain array when
            K = 0, because an empty file cannot be mapped).
        mask: bool array of shape (K, T).
        index: The "ok" rows of index.csv in clips order, with a fresh RangeIndex, so
            index.iloc[i] describes clips[i] and index["row"] equals range(K). An added
            track_path column (not stored in index.csv) gives each video's track file under
            out_dir.

    Raises:
        FileNotFoundError: If a cache file is missing.
        ValueError: If the files disagree on the number of videos or clip length.
    """
    out_dir = Path(out_dir)
    for name in (INDEX_FILE, CLIPS_FILE, MASK_FILE):
        if not (out_dir / name).is_file():
            raise FileNotFoundError(
                f"clip cache file {out_dir / name} not found; build the cache with "
                f"siamlib.video.clips.build_clip_cache"
            )

    index = pd.read_csv(out_dir / INDEX_FILE)
    index = index[index["status"] == STATUS_OK].reset_index(drop=True)
    index["reason"] = ""
    index["track_path"] = [
        str(out_dir / TRACKS_DIR / f"{Path(str(video)).stem}.npz") for video in index["video"]
    ]
    clips = np.load(out_dir / CLIPS_FILE, mmap_mode="r")
    mask = np.load(out_dir / MASK_FILE)

    if len(clips) != len(index) or len(mask) != len(index):
        raise ValueError(
            f"clip cache {out_dir} is inconsistent: {len(index)} ok rows in {INDEX_FILE}, "
            f"{len(clips)} clips and {len(mask)} masks; rebuild it"
        )
    if not np.array_equal(index["row"].to_numpy(), np.arange(len(index))):
        raise ValueError(f"clip cache {out_dir} is inconsistent: the row column of "
                         f"{INDEX_FILE} is not 0..{len(index) - 1}; rebuild it")
    if clips.ndim != 5 or mask.shape != clips.shape[:2]:
        raise ValueError(f"clip cache {out_dir} is inconsistent: clips {clips.shape} and "
                         f"mask {mask.shape} must be (K, T, S, S, 3) and (K, T); rebuild it")
    return clips, mask, index


def load_sampled_indices(index: pd.DataFrame) -> np.ndarray:
    """Read the decoded-frame index of every clip frame from the track files.

    Args:
        index: Table from `load_clip_cache`, with its track_path column.

    Returns:
        int64 array of shape (K, T): the decoded-frame index of clips[k, t], or -1 at padding
        positions (where the cache mask is False).

    Raises:
        ValueError: If track_path is missing, or the tracks disagree on the clip length.
        FileNotFoundError: If a track file is missing.
    """
    if "track_path" not in index.columns:
        raise ValueError("index must have a track_path column. Use the table from "
                         "load_clip_cache.")
    rows = []
    for track_path in index["track_path"]:
        with np.load(track_path, allow_pickle=False) as track:
            rows.append(np.where(track["mask"], track["indices"], -1))  # (T,)
    if not rows:
        return np.zeros((0, 0), dtype=np.int64)
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        raise ValueError(f"track files disagree on the clip length, got lengths {lengths}. "
                         f"Rebuild the cache.")
    return np.stack(rows).astype(np.int64)  # (K, T)
