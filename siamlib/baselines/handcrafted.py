"""Handcrafted age-estimation baseline: smile dynamics and LBP appearance with an RBF SVR.

A reimplementation in the spirit of Dibeklioğlu et al. (ACM Multimedia 2012; IEEE TIP 2015),
not the original code. :func:`extract_features` builds one feature row per video from its
full-rate landmark track (dynamics, see :mod:`siamlib.baselines.dynamics`) and from two
aligned frames of its sampled clip (appearance, see :mod:`siamlib.baselines.appearance`).
:func:`run_cross_validation` trains :class:`~siamlib.baselines.svr.SVRBaseline` per outer
fold on the training subjects and writes the predictions table.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from siamlib.baselines import dynamics
from siamlib.baselines.appearance import appearance_feature_names, appearance_features
from siamlib.baselines.svr import SVRBaseline

logger = logging.getLogger(__name__)

FEATURE_SETS = ("dynamics", "appearance", "both")
METHOD_NAMES = {
    "dynamics": "SVR (dynamics)",
    "appearance": "SVR (appearance)",
    "both": "SVR (dynamics+appearance)",
}
DYNAMICS_OPTIONS = ("smoothing_sigma_s", "min_rise", "min_speed", "register")
SVR_SETTINGS = ("C_grid", "gamma_grid", "epsilon_grid", "inner_folds")
APPEARANCE_PREFIX = "lbp."
INDEX_COLUMNS = ("video", "subject", "age", "gender", "smile_type")
# Feature-table column set to 1 for videos whose track has no usable lip and eyelid points.
DYNAMICS_UNAVAILABLE = "dynamics.unavailable"


def _check_keys(name: str, options: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> dict:
    values = dict(options or {})
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; allowed keys are {list(allowed)}")
    return values


def _load_track(path: str | Path, video: str) -> tuple[np.ndarray, float]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            landmarks = np.asarray(archive["landmarks"], dtype=np.float64)
            fps = float(archive["fps"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{video}: cannot read landmarks and fps from track file {path}: {error}"
        ) from error
    return landmarks, fps


def extract_features(
    index: pd.DataFrame,
    clips: np.ndarray,
    mask: np.ndarray,
    sampled_indices: np.ndarray,
    lbp_grid: tuple[int, int] = (4, 4),
    lbp_points: int = 8,
    lbp_radius: float = 1.0,
    dynamics_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compute the dynamics and appearance features of every video.

    Shapes: N videos, T sampled frames per clip, H x W aligned crops.

    The neutral frame is the first valid sampled frame. The apex frame is the valid sampled
    frame whose original frame index is closest to the peak (maximum) of the smoothed lip
    signal of the full-rate track.

    Args:
        index: One row per video, in the order of ``clips``, with the columns video,
            subject, age, gender, smile_type and track_path. track_path names an ``.npz``
            file holding ``landmarks`` (N_frames, 68, 2) in original frame pixels and
            ``fps``.
        clips: Aligned faces, uint8 of shape (N, T, H, W, 3); a memmap works.
        mask: Valid sampled frames, bool of shape (N, T).
        sampled_indices: Original frame index of every sampled frame, int of shape (N, T),
            -1 for padding.
        lbp_grid: LBP cell rows and columns.
        lbp_points: LBP sampling points P.
        lbp_radius: LBP radius in pixels.
        dynamics_options: Keyword arguments of :func:`dynamics.dynamics_features`
            (smoothing_sigma_s, min_rise, min_speed, register); defaults when None.
        progress: Whether to show a progress bar.

    Returns:
        DataFrame with one row per video in index order: ``video``, ``peak_frame`` (full-rate
        frame of the lip peak), ``neutral_frame`` and ``apex_frame`` (original frame
        indices of the frames used for appearance), ``dynamics.unavailable`` (1 when the
        track has non-finite landmarks, so its dynamics features are zeros), then the dynamics features in
        :func:`dynamics.feature_names` order and the appearance features named
        ``lbp.<frame>.r<row>c<column>.b<bin>``.

    Raises:
        ValueError: If a column is missing, shapes disagree, a video has no valid sampled
            frame, or a track file is unreadable or does not match its sampled indices.
    """
    missing = [column for column in (*INDEX_COLUMNS, "track_path") if column not in index.columns]
    if missing:
        raise ValueError(f"index is missing the columns {missing}")
    options = _check_keys("dynamics_options", dynamics_options, DYNAMICS_OPTIONS)
    num_videos = len(index)
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(
            f"clips must be uint8 of shape (N, T, H, W, 3), got {clips.dtype} {clips.shape}"
        )
    expected = (num_videos, clips.shape[1])
    mask = np.asarray(mask, dtype=bool)
    sampled_indices = np.asarray(sampled_indices)
    for name, array in (("clips", clips), ("mask", mask), ("sampled_indices", sampled_indices)):
        if tuple(array.shape[:2]) != expected:
            raise ValueError(
                f"{name} must have {expected} as its first two axes (videos in index, "
                f"frames in clips), got {array.shape}"
            )

    dynamics_names = dynamics.feature_names()
    appearance_names = appearance_feature_names(lbp_grid, lbp_points)
    rows: list[dict[str, Any]] = []
    for row in tqdm(range(num_videos), desc="handcrafted features", disable=not progress):
        video = str(index["video"].iloc[row])
        valid = np.flatnonzero(mask[row] & (sampled_indices[row] >= 0))  # (valid frames,)
        if valid.size == 0:
            raise ValueError(f"{video}: the clip has no valid sampled frame")
        landmarks, fps = _load_track(index["track_path"].iloc[row], video)
        frame_numbers = sampled_indices[row, valid]  # (valid frames,)
        if landmarks.ndim != 3 or frame_numbers.max() >= landmarks.shape[0]:
            raise ValueError(
                f"{video}: track of shape {landmarks.shape} does not cover sampled frame "
                f"{frame_numbers.max()}"
            )

        if np.isfinite(landmarks).all():
            try:
                smoothing = options.get("smoothing_sigma_s", dynamics.DEFAULT_SMOOTHING_SIGMA_S)
                signals = dynamics.smile_signals(
                    landmarks, fps, smoothing_sigma_s=smoothing,
                    register=options.get("register", True),
                )
                phases = dynamics.detect_phases(
                    signals["lip"],
                    fps,
                    min_rise=options.get("min_rise", dynamics.DEFAULT_MIN_RISE),
                    min_speed=options.get("min_speed", dynamics.DEFAULT_MIN_SPEED),
                )
            except ValueError as error:
                raise ValueError(f"{video}: {error}") from error
            dynamic_values = dynamics.phase_features(signals, phases, fps)
            peak_frame = int(np.argmax(signals["lip"]))
            unavailable = 0
        else:
            # A track without lip and eyelid points (e.g. the Haar-cascade fallback, which
            # stores eye centres only) has no dynamics. Its features are zeros with a flag,
            # and the middle sampled frame replaces the apex frame.
            dynamic_values = dict.fromkeys(dynamics_names, 0.0)
            peak_frame = int(frame_numbers[len(frame_numbers) // 2])
            unavailable = 1

        neutral_position = int(valid[0])
        apex_position = int(valid[np.argmin(np.abs(frame_numbers - peak_frame))])
        appearance_values = appearance_features(
            clips[row, neutral_position],
            clips[row, apex_position],
            grid=lbp_grid,
            points=lbp_points,
            radius=lbp_radius,
        )

        record: dict[str, Any] = {
            "video": video,
            "peak_frame": peak_frame,
            "neutral_frame": int(sampled_indices[row, neutral_position]),
            "apex_frame": int(sampled_indices[row, apex_position]),
            DYNAMICS_UNAVAILABLE: unavailable,
        }
        record.update({name: dynamic_values[name] for name in dynamics_names})
        record.update(zip(appearance_names, appearance_values.tolist()))
        rows.append(record)

    columns = ["video", "peak_frame", "neutral_frame", "apex_frame", DYNAMICS_UNAVAILABLE]
    features = pd.DataFrame(rows, columns=[*columns, *dynamics_names, *appearance_names])
    flat = int(features["phase.flat"].sum())
    no_offset = int(features["phase.no_offset"].sum())
    unavailable_count = int(features[DYNAMICS_UNAVAILABLE].sum())
    if unavailable_count:
        logger.warning(
            "%d of %d videos have no lip and eyelid landmarks (e.g. Haar-cascade tracks), so "
            "their dynamics features are zero; see the %s column",
            unavailable_count, num_videos, DYNAMICS_UNAVAILABLE,
        )
    logger.info(
        "extracted handcrafted features of %d videos: %d dynamics, %d appearance; "
        "%d without a smile onset, %d without an offset",
        num_videos, len(dynamics_names), len(appearance_names), flat, no_offset,
    )
    return features


def feature_columns(features: pd.DataFrame, feature_set: str) -> list[str]:
    """Return the columns of ``features`` that belong to ``feature_set``.

    Args:
        features: Output of :func:`extract_features`.
        feature_set: "dynamics", "appearance" or "both".

    Raises:
        ValueError: If feature_set is unknown or selects no column.
    """
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {feature_set!r}")
    dynamics_columns = [name for name in dynamics.feature_names() if name in features.columns]
    appearance_columns = [
        name for name in features.columns if str(name).startswith(APPEARANCE_PREFIX)
    ]
    columns = {
        "dynamics": dynamics_columns,
        "appearance": appearance_columns,
        "both": dynamics_columns + appearance_columns,
    }[feature_set]
    if not columns:
        raise ValueError(f"features has no {feature_set} columns")
    return columns


def run_cross_validation(
    features: pd.DataFrame,
    index: pd.DataFrame,
    folds: np.ndarray,
    feature_set: str = "both",
    svr_settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Train and test the SVR baseline with subject-independent outer folds.

    For each outer fold, the model (scaler included) is tuned and fitted on the rows of the
    other folds only, with inner GroupKFold over their subjects, and predicts the fold's rows.

    Args:
        features: Output of :func:`extract_features`; matched to ``index`` by ``video``.
        index: Annotation table with video, subject, age, gender and smile_type.
        folds: Outer fold of every index row, int of shape (N,).
        feature_set: "dynamics", "appearance" or "both".
        svr_settings: Keyword arguments of :class:`SVRBaseline` (C_grid, gamma_grid,
            epsilon_grid, inner_folds); its defaults when None.
        seed: Seed of the inner subject shuffling.
        progress: Whether to show a progress bar over folds.

    Returns:
        Predictions table with columns method, video, subject, fold, age, predicted_age,
        gender, smile_type: one row per video, in index order.

    Raises:
        ValueError: If columns are missing, a video has no features, features are not
            finite, folds has the wrong shape, fewer than 2 folds exist, or a subject
            appears in more than one fold.
    """
    missing = [column for column in INDEX_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(f"index is missing the columns {missing}")
    if "video" not in features.columns:
        raise ValueError("features must have a video column")
    settings = _check_keys("svr_settings", svr_settings, SVR_SETTINGS)
    columns = feature_columns(features, feature_set)
    fold_of_row = np.asarray(folds)
    if fold_of_row.shape != (len(index),):
        raise ValueError(f"folds must have shape ({len(index)},), got {fold_of_row.shape}")
    fold_ids = np.unique(fold_of_row)
    if fold_ids.size < 2:
        raise ValueError(f"folds must contain at least 2 folds, got {fold_ids.tolist()}")
    folds_per_subject = pd.Series(fold_of_row).groupby(index["subject"].to_numpy()).nunique()
    if (folds_per_subject > 1).any():
        shared = folds_per_subject.index[folds_per_subject > 1].tolist()
        raise ValueError(f"subjects {shared[:10]} appear in more than one fold")

    by_video = features.drop_duplicates("video").set_index("video")
    absent = sorted(set(index["video"]) - set(by_video.index))
    if absent:
        raise ValueError(f"features are missing for {len(absent)} videos, e.g. {absent[:5]}")
    X = by_video.loc[index["video"], columns].to_numpy(dtype=np.float64)  # (N, D)
    if not np.all(np.isfinite(X)):
        raise ValueError("features contain NaN or infinite values")
    ages = index["age"].to_numpy(dtype=np.float64)  # (N,)
    subjects = index["subject"].to_numpy()  # (N,)

    predicted = np.full(len(index), np.nan)
    method = METHOD_NAMES[feature_set]
    for fold in tqdm(fold_ids, desc=method, disable=not progress):
        test = fold_of_row == fold
        train = ~test
        model = SVRBaseline(**settings, seed=seed)
        model.fit(X[train], ages[train], subjects[train])
        predicted[test] = model.predict(X[test])
        fold_mae = float(np.abs(predicted[test] - ages[test]).mean())
        logger.info(
            "%s fold %s: %d train, %d test videos, MAE %.2f years, parameters %s",
            method, fold, int(train.sum()), int(test.sum()), fold_mae, model.best_params_,
        )

    return pd.DataFrame({
        "method": method,
        "video": index["video"].to_numpy(),
        "subject": subjects.astype(int),
        "fold": fold_of_row.astype(int),
        "age": index["age"].to_numpy().astype(int),
        "predicted_age": predicted,
        "gender": index["gender"].to_numpy(),
        "smile_type": index["smile_type"].to_numpy(),
    })
