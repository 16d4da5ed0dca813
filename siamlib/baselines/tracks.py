"""Sources of the landmark tracks behind the dynamics features.

Two sources, chosen by ``baseline.landmarks`` in params.yaml:

- ``dataset``: the track each video has in the clip cache (``track_path``), made from the
  landmark files the dataset ships. The synthetic benchmark ships its exact tracks; a dataset
  without them gets Haar-cascade tracks that hold eye centres only, so no dynamics.
- ``dlib``: dlib's HOG face detector and 68-point shape predictor run on every frame of every
  video (:mod:`siamlib.video.dlib_tracker`), with per-frame detection success recorded, short
  gaps interpolated and long ones marking the video's dynamics invalid with a reason.

``auto`` picks ``dataset`` when every video's cached track came from a landmark file, else
``dlib``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

LANDMARK_SOURCES: tuple[str, ...] = ("auto", "dataset", "dlib")
# The cache's landmark_source of tracks made from a dataset's landmark files.
FILE_SOURCE = "file"


def cached_track_sources(index: pd.DataFrame) -> np.ndarray:
    """Return the ``landmark_source`` ("file" or "haar") of every video's cached track, (N,)."""
    sources = []
    for path in index["track_path"]:
        with np.load(path, allow_pickle=False) as track:
            sources.append(str(track["landmark_source"]))
    return np.asarray(sources, dtype=object)


def resolve_landmark_source(setting: str, index: pd.DataFrame) -> str:
    """Turn ``baseline.landmarks`` into "dataset" or "dlib" for these videos.

    Args:
        setting: "auto", "dataset" or "dlib".
        index: The clip cache's table (``load_clip_cache``), with its track_path column.

    Raises:
        ValueError: If the setting is unknown.
    """
    if setting not in LANDMARK_SOURCES:
        raise ValueError(f"baseline.landmarks must be one of {LANDMARK_SOURCES}, got {setting!r}")
    if setting != "auto":
        return setting
    if len(index) and (cached_track_sources(index) == FILE_SOURCE).all():
        return "dataset"
    return "dlib"


def dynamics_track_paths(
    index: pd.DataFrame,
    source: str,
    tracks_dir: str | os.PathLike[str],
    tracker: Mapping[str, Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[list[str], pd.DataFrame | None]:
    """Return the track file of every video for the dynamics features, tracking if needed.

    Args:
        index: The clip cache's table, with the columns video, path and track_path.
        source: "dataset" or "dlib" (see :func:`resolve_landmark_source`).
        tracks_dir: Folder for the dlib track files; finished tracks made with the same
            settings are reused, so an interrupted run resumes.
        tracker: Keyword arguments of :func:`siamlib.video.dlib_tracker.track_videos`
            (detection_size, upsample, max_gap_s).
        workers: Worker processes for tracking; None uses one per CPU core.
        progress: Whether to show a progress bar.

    Returns:
        The track paths in index order, and the tracker's summary (one row per video with
        detected_fraction, longest_gap_s, valid and reason), or None for "dataset".

    Raises:
        ValueError: If source is unknown, or the tracker could not decode a video.
    """
    if source == "dataset":
        return index["track_path"].astype(str).tolist(), None
    if source != "dlib":
        raise ValueError(f"source must be 'dataset' or 'dlib', got {source!r}")
    # Imported here: dlib loads a native library that the "dataset" source never needs.
    from siamlib.video.dlib_tracker import track_videos

    summary = track_videos(index[["video", "path"]], Path(tracks_dir), **dict(tracker or {}),
                           workers=workers, progress=progress)
    skipped = summary[summary["status"] != "ok"]
    if len(skipped):
        raise ValueError(
            f"the landmark tracker could not read {len(skipped)} videos that the clip cache "
            f"decoded, e.g. {skipped['video'].tolist()[:5]}: {skipped['reason'].iloc[0]}. "
            f"See {Path(tracks_dir) / 'tracks.csv'}"
        )
    invalid = summary[~summary["valid"].astype(bool)]
    logger.info("dlib tracks of %d videos: face found in %.1f%% of a video's frames on average, "
                "%d videos with a gap too long for dynamics", len(summary),
                100 * float(summary["detected_fraction"].mean()), len(invalid))
    return summary["track_path"].astype(str).tolist(), summary
