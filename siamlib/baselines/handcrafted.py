"""Handcrafted age-estimation baseline: smile dynamics and LBP appearance with an RBF SVR.

A reimplementation in the spirit of Dibeklioğlu et al. (ACM Multimedia 2012; IEEE TIP 2015),
not the original code. :func:`extract_features` builds one feature row per video from its
full-rate landmark track (dynamics, see :mod:`siamlib.baselines.dynamics`) and from two
aligned frames of its sampled clip (appearance, see :mod:`siamlib.baselines.appearance`).
:class:`HandcraftedSVR` is the registered baseline (:mod:`siamlib.baselines.base`): an
:class:`~siamlib.baselines.svr.SVRBaseline` per outer fold, tuned on the training subjects,
with the smile type (spontaneous or posed) optionally known at test time, and a fallback for
videos whose landmark track gave no dynamics.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from siamlib.baselines import dynamics
from siamlib.baselines.appearance import appearance_feature_names, appearance_features
from siamlib.baselines.base import Baseline, FitContext, VideoSet
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
APPEARANCE_PREFIXES = ("lbp.", "gabor.")
SMILE_TYPE_MODES = ("ignore", "separate", "feature")
INDEX_COLUMNS = ("video", "subject", "age", "gender", "smile_type")
# Feature-table column set to 1 for videos whose track has no usable lip and eyelid points.
DYNAMICS_UNAVAILABLE = "dynamics.unavailable"
DYNAMICS_REASON = "dynamics.reason"


def _check_keys(name: str, options: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> dict:
    values = dict(options or {})
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; allowed keys are {list(allowed)}")
    return values


def _load_track(path: str | Path, video: str) -> tuple[np.ndarray, float, str]:
    """Read a track file: landmarks (N, 68, 2), fps, and why it has no dynamics ("" if usable).

    Tracks from :mod:`siamlib.video.dlib_tracker` carry ``valid`` and ``reason``; a track
    with non-finite landmarks (the Haar-cascade fallback stores eye centres only) has no
    lip and eyelid points.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            landmarks = np.asarray(archive["landmarks"], dtype=np.float64)
            fps = float(archive["fps"])
            valid = bool(archive["valid"]) if "valid" in archive.files else True
            reason = str(archive["reason"]) if "reason" in archive.files else ""
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{video}: cannot read landmarks and fps from track file {path}: {error}"
        ) from error
    if not valid:
        return landmarks, fps, reason or "the tracker marked the track invalid"
    if not np.isfinite(landmarks).all():
        return landmarks, fps, "the track has no lip and eyelid landmarks (e.g. Haar-cascade eyes)"
    return landmarks, fps, ""


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
    lbp_method: str = "uniform",
    gabor_frequencies: Sequence[float] = (),
    gabor_orientations: int = 0,
    dynamics_tracks: Sequence[str | Path] | None = None,
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
        lbp_method: LBP variant (see :mod:`siamlib.baselines.appearance`).
        gabor_frequencies: Gabor filter frequencies in cycles per pixel; empty for no Gabor
            features.
        gabor_orientations: Number of Gabor orientations.
        dynamics_tracks: Track file of every video for the dynamics features, in index
            order, e.g. from :mod:`siamlib.video.dlib_tracker`; None uses track_path. A track
            marked invalid, or with non-finite landmarks, gives zero dynamics features with
            ``dynamics.unavailable`` 1 and the reason in ``dynamics.reason``.

    Returns:
        DataFrame with one row per video in index order: ``video``, ``peak_frame`` (full-rate
        frame of the lip peak), ``neutral_frame`` and ``apex_frame`` (original frame
        indices of the frames used for appearance), ``dynamics.unavailable`` (1 when the
        track gives no dynamics, whose features are then zeros), ``dynamics.reason`` (why;
        empty otherwise), then the dynamics features in :func:`dynamics.feature_names` order
        and the appearance features in :func:`appearance_feature_names` order
        (``lbp.<frame>.r<row>c<column>.b<bin>``, then any ``gabor.`` features).

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

    if dynamics_tracks is None:
        dynamics_tracks = index["track_path"].tolist()
    elif len(dynamics_tracks) != num_videos:
        raise ValueError(f"dynamics_tracks has {len(dynamics_tracks)} paths for {num_videos} "
                         "videos")
    appearance_options = {
        "method": lbp_method,
        "gabor_frequencies": tuple(gabor_frequencies),
        "gabor_orientations": int(gabor_orientations),
    }
    dynamics_names = dynamics.feature_names()
    appearance_names = appearance_feature_names(lbp_grid, lbp_points, **appearance_options)
    rows: list[dict[str, Any]] = []
    for row in tqdm(range(num_videos), desc="handcrafted features", disable=not progress):
        video = str(index["video"].iloc[row])
        valid = np.flatnonzero(mask[row] & (sampled_indices[row] >= 0))  # (valid frames,)
        if valid.size == 0:
            raise ValueError(f"{video}: the clip has no valid sampled frame")
        landmarks, fps, reason = _load_track(dynamics_tracks[row], video)
        frame_numbers = sampled_indices[row, valid]  # (valid frames,)
        if landmarks.ndim != 3 or frame_numbers.max() >= landmarks.shape[0]:
            raise ValueError(
                f"{video}: track of shape {landmarks.shape} does not cover sampled frame "
                f"{frame_numbers.max()}"
            )

        signals = None
        if not reason:
            try:
                signals = dynamics.smile_signals(
                    landmarks, fps,
                    smoothing_sigma_s=options.get(
                        "smoothing_sigma_s", dynamics.DEFAULT_SMOOTHING_SIGMA_S),
                    register=options.get("register", True),
                )
            except ValueError as error:
                # A degenerate track (e.g. a zero mouth width in the first frame) is skipped
                # and reported, like a lost face.
                reason = f"unusable landmark track: {error}"
        if signals is not None:
            try:
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
            # A track without usable lip and eyelid points has no dynamics: the Haar-cascade
            # fallback stores eye centres only, and a tracker can lose the face for too long.
            # Its features are zeros with a flag and a reason, and the middle sampled frame
            # replaces the apex frame.
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
            **appearance_options,
        )

        record: dict[str, Any] = {
            "video": video,
            "peak_frame": peak_frame,
            "neutral_frame": int(sampled_indices[row, neutral_position]),
            "apex_frame": int(sampled_indices[row, apex_position]),
            DYNAMICS_UNAVAILABLE: unavailable,
            DYNAMICS_REASON: reason,
        }
        record.update({name: dynamic_values[name] for name in dynamics_names})
        record.update(zip(appearance_names, appearance_values.tolist()))
        rows.append(record)

    columns = ["video", "peak_frame", "neutral_frame", "apex_frame", DYNAMICS_UNAVAILABLE,
               DYNAMICS_REASON]
    features = pd.DataFrame(rows, columns=[*columns, *dynamics_names, *appearance_names])
    flat = int(features["phase.flat"].sum())
    no_offset = int(features["phase.no_offset"].sum())
    unavailable_count = int(features[DYNAMICS_UNAVAILABLE].sum())
    if unavailable_count:
        logger.warning(
            "%d of %d videos have no usable lip and eyelid landmarks, so their dynamics "
            "features are zero; see the %s and %s columns",
            unavailable_count, num_videos, DYNAMICS_UNAVAILABLE, DYNAMICS_REASON,
        )
    logger.info(
        "extracted handcrafted features of %d videos: %d dynamics, %d appearance; "
        "%d without a smile onset, %d without an offset",
        num_videos, len(dynamics_names), len(appearance_names), flat, no_offset,
    )
    return features


def load_features(path: str | Path, index: pd.DataFrame) -> pd.DataFrame:
    """Read a features table written by :func:`extract_features`, in the order of ``index``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If a video of ``index`` has no row; rerun the features stage.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"features table {path} not found; run the features stage "
                                "(dvc repro features)")
    features = pd.read_csv(path, dtype={DYNAMICS_REASON: str})
    if DYNAMICS_REASON in features.columns:
        # An empty reason reads back as missing.
        features[DYNAMICS_REASON] = features[DYNAMICS_REASON].fillna("")
    by_video = features.drop_duplicates("video").set_index("video")
    absent = sorted(set(index["video"]) - set(by_video.index))
    if absent:
        raise ValueError(f"{path} has no features for {len(absent)} videos of the clip cache, "
                         f"e.g. {absent[:5]}; rerun the features stage")
    # copy() consolidates the columns, so that reset_index does not warn about fragmentation.
    return by_video.loc[index["video"]].copy().reset_index()


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
        name for name in features.columns if str(name).startswith(APPEARANCE_PREFIXES)
    ]
    columns = {
        "dynamics": dynamics_columns,
        "appearance": appearance_columns,
        "both": dynamics_columns + appearance_columns,
    }[feature_set]
    if not columns:
        raise ValueError(f"features has no {feature_set} columns")
    return columns


class HandcraftedSVR(Baseline):
    """RBF SVR on handcrafted features, tuned on the training subjects of each fold.

    Args:
        features: "dynamics", "appearance" or "both" (see :func:`feature_columns`).
        smile_type: Use of the smile type (spontaneous or posed), which is known for test
            videos too. "ignore" leaves it out. "separate" fits one SVR per smile type on the
            training videos of that type, as when the type is known before estimating age
            (Dibeklioğlu et al., IEEE TIP 2015). "feature" adds a 0/1 column (1 for posed).
        svr: Overrides of the SVR grid; the rest comes from ``context.settings["svr"]`` (the
            ``baseline.svr`` section of params.yaml), then from :class:`SVRBaseline`'s
            defaults. Keys C_grid, gamma_grid, epsilon_grid and inner_folds.

    Videos whose track has no usable landmarks (``dynamics.unavailable`` is 1, with the reason
    in ``dynamics.reason``) are left out of fitting a model with dynamics features. Such a
    test video is predicted by a fallback fitted on the fold's training videos: an SVR on
    the appearance features when ``features`` is "both", else the mean training age. When no
    training video has dynamics, "both" falls back to appearance for every video and
    "dynamics" raises an error. With "separate", a smile type with fewer than 2 training
    subjects gets no model of its own, and its test videos go to one SVR fitted on all types.
    ``fallback_count_`` counts the test videos that did not get their own model, after
    :meth:`predict`.
    """

    def __init__(
        self,
        features: str = "both",
        smile_type: str = "ignore",
        svr: Mapping[str, Any] | None = None,
    ) -> None:
        if features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {features!r}")
        if smile_type not in SMILE_TYPE_MODES:
            raise ValueError(f"smile_type must be one of {SMILE_TYPE_MODES}, got {smile_type!r}")
        self.features = features
        self.smile_type = smile_type
        self.svr = _check_keys("svr", svr, SVR_SETTINGS)
        self.models_: dict[str, SVRBaseline] = {}
        self.mean_age_: float | None = None
        self.fallback_count_ = 0
        self._train: dict[str, Any] | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        """The method name, e.g. "SVR (dynamics+appearance, smile type known)"."""
        if self.smile_type == "ignore":
            return METHOD_NAMES[self.features]
        return f"{METHOD_NAMES[self.features][:-1]}, smile type known)"

    def _matrix(self, data: VideoSet, feature_set: str) -> np.ndarray:
        columns = feature_columns(data.features, feature_set)
        X = data.features[columns].to_numpy(dtype=np.float64)  # (N, D)
        if self.smile_type == "feature":
            posed = (data.index["smile_type"].to_numpy() == "posed").astype(np.float64)
            X = np.column_stack([X, posed])  # (N, D + 1)
        if not np.all(np.isfinite(X)):
            rows, cols = np.nonzero(~np.isfinite(X))
            raise ValueError(f"features contain NaN or infinite values, e.g. video "
                             f"{data.index['video'].iloc[rows[0]]!r}, column {cols[0]}")
        return X

    def _types(self, data: VideoSet) -> np.ndarray:
        return data.index["smile_type"].astype(str).to_numpy()

    def _has_dynamics(self, data: VideoSet) -> np.ndarray:
        if self.features == "appearance" or DYNAMICS_UNAVAILABLE not in data.features.columns:
            return np.ones(len(data), dtype=bool)
        return data.features[DYNAMICS_UNAVAILABLE].to_numpy() == 0

    def _fit_svr(self, X: np.ndarray, rows: np.ndarray) -> SVRBaseline:
        train = self._train
        model = SVRBaseline(**train["settings"], seed=train["seed"])
        model.fit(X[rows], train["ages"][rows], train["subjects"][rows])
        return model

    def _model(self, key: str) -> SVRBaseline:
        """Return a fallback model ("all types" or "appearance"), fitting it on first use."""
        if key not in self.models_:
            train = self._train
            if key == "all types":
                self.models_[key] = self._fit_svr(train["X"], np.flatnonzero(train["usable"]))
            else:
                self.models_[key] = self._fit_svr(train["X_appearance"],
                                                  np.arange(len(train["ages"])))
        return self.models_[key]

    def fit(self, train: VideoSet, context: FitContext) -> None:
        """Tune and fit one SVR per group on the training videos with dynamics.

        Raises:
            ValueError: If ``train`` has no features, or ``features`` is "dynamics" and no
                training video has dynamics.
        """
        if train.features.empty:
            raise ValueError("HandcraftedSVR needs handcrafted features; build the VideoSet "
                             "with the output of extract_features")
        settings = {**dict(context.settings.get("svr") or {}), **self.svr}
        usable = self._has_dynamics(train)
        self._train = {
            "settings": _check_keys("svr settings", settings, SVR_SETTINGS),
            "seed": context.seed,
            "ages": train.ages,
            "subjects": train.subjects,
            "usable": usable,
            "X": self._matrix(train, self.features),
            "X_appearance": (self._matrix(train, "appearance") if self.features == "both"
                             else None),
        }
        self.mean_age_ = float(train.ages.mean())
        self.models_ = {}
        if not usable.any():
            if self.features == "dynamics":
                raise ValueError(
                    f"no training video has dynamics features ({DYNAMICS_UNAVAILABLE} is 1 "
                    "for all), so the dynamics SVR cannot be fitted. Use landmark tracks with "
                    "lip and eyelid points (features.landmarks: dlib) or drop this entry"
                )
            logger.warning("%s: no training video has dynamics features, so every video is "
                           "predicted from appearance alone", self.name)
            self._model("appearance")
            return
        if self.smile_type != "separate":
            self.models_["all"] = self._fit_svr(self._train["X"], np.flatnonzero(usable))
            return
        types = self._types(train)
        for kind in sorted(set(types)):
            rows = np.flatnonzero((types == kind) & usable)
            if np.unique(train.subjects[rows]).size < 2:
                logger.warning("%s: smile type %r has %d training subjects with dynamics, too "
                               "few for a model of its own; its videos use the model of all "
                               "types", self.name, kind, np.unique(train.subjects[rows]).size)
                continue
            self.models_[kind] = self._fit_svr(self._train["X"], rows)

    def predict(self, test: VideoSet) -> np.ndarray:
        """Predict every test video's age; videos without a model of their own use a fallback."""
        if self._train is None:
            raise RuntimeError("HandcraftedSVR.predict was called before fit")
        predicted = np.full(len(test), np.nan)
        usable = self._has_dynamics(test) & self._train["usable"].any()
        X = self._matrix(test, self.features)
        if self.smile_type == "separate":
            keys = self._types(test)
        else:
            keys = np.full(len(test), "all", dtype=object)
        own = usable & np.isin(keys, list(self.models_))
        for key in sorted(set(keys[own])):
            rows = np.flatnonzero(own & (keys == key))
            predicted[rows] = self.models_[key].predict(X[rows])
        other_type = np.flatnonzero(usable & ~own)
        if other_type.size:
            predicted[other_type] = self._model("all types").predict(X[other_type])
        missing = np.flatnonzero(~usable)
        if missing.size:
            if self.features == "both":
                appearance = self._matrix(test, "appearance")
                predicted[missing] = self._model("appearance").predict(appearance[missing])
            else:
                predicted[missing] = self.mean_age_
            logger.warning("%s: %d test videos have no dynamics features and were predicted "
                           "by the fallback (%s)", self.name, missing.size,
                           "appearance SVR" if self.features == "both" else "mean training age")
        self.fallback_count_ = int(other_type.size + missing.size)
        return predicted
