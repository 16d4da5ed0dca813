"""Smile dynamics features from a 68-point landmark track.

A reimplementation of the dynamics descriptors of Dibeklioğlu et al. (ACM Multimedia 2012,
IEEE TMM 2015), not the original code. The pipeline has four steps:

1. Registration. Each frame is mapped onto the first frame by a least-squares similarity
   transform fitted on points that barely move when a person smiles: the nose bridge, the
   nose tip and the four eye corners. Head translation, scale and in-plane rotation then
   do not show up as lip, eyelid or cheek motion.
2. Signals, all in units of a first-frame distance and zero at the first frame before smoothing:

   - ``lip_right`` / ``lip_left``: distance of the lip corner (48 / 54) from the first
     frame's mouth centre (midpoint of 48 and 54), divided by the first frame's mouth width
     (distance 48 to 54), minus its first-frame value of 0.5. Positive when the corner
     moves away from the mouth centre. ``lip`` is their mean.
   - ``eyelid_right`` / ``eyelid_left``: decrease of the eyelid aperture from the first
     frame, divided by the first frame's eye width (outer to inner corner). The aperture is
     the mean distance of the upper-lid points from the lower-lid points (37-41 and 38-40
     on the right eye, 43-47 and 44-46 on the left). The signal rises when the eye narrows
     in a smile. ``eyelid`` is their mean.
   - ``cheek_right`` / ``cheek_left``: rise of a cheek point, divided by the first frame's
     mouth width. The cheek point is the centroid of four points on that side: the outer
     lower-eyelid point (41 / 46), the nose-base side point (31 / 35), the lip corner
     (48 / 54) and the jaw contour point at cheek height (2 / 14). Its rise is its
     displacement from its first-frame position projected on the face's upward direction,
     the unit vector from the first frame's mouth centre towards the midpoint of the first
     frame's eye centres, so the signal is positive when the cheek moves up. ``cheek`` is
     their mean.

   NOTE: the cheek signal is a proxy, not a tracked skin point. The 68-point scheme has no
   point on the cheek surface, so the signal mixes the upward motion of the lip corner,
   the lower eyelid, the nose base and the jaw contour. A lip corner that rises by d mouth
   widths raises the cheek signal by d / 4 even when the cheek itself stays still.
3. Smoothing. Every signal is smoothed with a Gaussian filter before any difference is
   taken. Its standard deviation is set in seconds and converted to frames with the
   track's fps (default 0.05 s, a full width at half maximum of about 0.12 s). Speeds are
   first differences times fps (units per second) and accelerations are the central
   differences of speed times fps (units per second squared).
4. Phases from the smoothed ``lip`` signal (see :func:`detect_phases`) and features per
   phase and signal (see :func:`phase_features`).

Feature names are ``"<phase>.<signal>.<feature>"`` for phase in onset, apex, offset,
signal in lip, eyelid, cheek and feature in :data:`SIGNAL_FEATURES`, plus
``"<phase>.duration"`` and the flags ``"phase.flat"``, ``"phase.no_offset"`` and
``"phase.offset_before_onset"`` (1.0 when set, else 0.0).
:func:`feature_names` lists them in the order :func:`dynamics_features` returns them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from siamlib import landmarks as lm

PHASES = ("onset", "apex", "offset")
SIGNALS = ("lip", "eyelid", "cheek")
FLAGS = ("phase.flat", "phase.no_offset", "phase.offset_before_onset")

# Points used to register every frame onto the first one: nose bridge, nose tip and the
# four eye corners. Eyelids, brows, lips and the jaw move with expressions and are left out.
STABLE_POINTS = lm.NOSE_BRIDGE + (33,) + lm.EYE_CORNERS

# Points whose centroid is each side's cheek point: outer lower-eyelid point, nose-base side
# point, lip corner and jaw contour point at cheek height.
RIGHT_CHEEK_POINTS = (41, 31, lm.RIGHT_LIP_CORNER, 2)
LEFT_CHEEK_POINTS = (46, 35, lm.LEFT_LIP_CORNER, 14)

# Per-signal features of one phase, in output order.
SIGNAL_FEATURES = (
    "rise_duration",
    "fall_duration",
    "rise_duration_ratio",
    "fall_duration_ratio",
    "max_amplitude",
    "mean_amplitude",
    "sd_amplitude",
    "rise_amplitude",
    "fall_amplitude",
    "total_amplitude",
    "net_amplitude",
    "rise_amplitude_ratio",
    "fall_amplitude_ratio",
    "net_amplitude_ratio",
    "max_rise_speed",
    "mean_rise_speed",
    "max_fall_speed",
    "mean_fall_speed",
    "max_rise_acceleration",
    "mean_rise_acceleration",
    "max_fall_acceleration",
    "mean_fall_acceleration",
    "net_amplitude_per_duration",
    "asymmetry",
)

# NOTE: this default does not push jitter far below smile speeds on small faces. A still face
# 100 px wide at 50 fps with 0.5 px landmark jitter reached lip, eyelid and cheek speeds of
# 0.14 to 0.32 units per second at most, depending on the draw (20 draws). A smile of 0.15
# mouth widths in 0.6 s has an onset speed of 0.25 (see test_still_jitter_speeds_near_zero in
# tests/test_dynamics.py). Larger faces, as in full-HD video, jitter less in these units.
DEFAULT_SMOOTHING_SIGMA_S = 0.05
DEFAULT_MIN_RISE = 0.01
DEFAULT_MIN_SPEED = 0.02

_EPSILON = 1e-12


@dataclass(frozen=True)
class Phases:
    """Frame boundaries of the smile phases in one track.

    The onset covers frames ``onset_start..onset_end``, the apex ``onset_end..offset_start``
    and the offset ``offset_start..offset_end`` (inclusive frame indices, so a phase of k
    frame steps lasts k / fps seconds). A phase that was not found has equal start and end,
    so its duration is zero.

    Attributes:
        onset_start: First frame of the onset.
        onset_end: Last frame of the onset and first frame of the apex.
        offset_start: Last frame of the apex and first frame of the offset.
        offset_end: Last frame of the offset.
        flat: True when no rising run reaches the minimum rise, so no phase was found.
        no_offset: True when no falling run after the onset reaches the minimum rise.
        offset_before_onset: True when ``no_offset`` is set and the longest qualifying
            falling run of the whole track lies before the onset.
    """

    onset_start: int
    onset_end: int
    offset_start: int
    offset_end: int
    flat: bool
    no_offset: bool
    offset_before_onset: bool

    def span(self, phase: str) -> tuple[int, int]:
        """Return the inclusive (first, last) frame of ``phase`` (onset, apex or offset)."""
        if phase == "onset":
            return self.onset_start, self.onset_end
        if phase == "apex":
            return self.onset_end, self.offset_start
        if phase == "offset":
            return self.offset_start, self.offset_end
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


def safe_divide(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator``, or 0.0 when ``|denominator|`` is below 1e-12."""
    if abs(denominator) < _EPSILON:
        return 0.0
    return float(numerator / denominator)


def feature_names() -> list[str]:
    """Return the dynamics feature names in the order :func:`dynamics_features` uses."""
    names: list[str] = []
    for phase in PHASES:
        names.append(f"{phase}.duration")
        for signal in SIGNALS:
            names.extend(f"{phase}.{signal}.{feature}" for feature in SIGNAL_FEATURES)
    names.extend(FLAGS)
    return names


def _check_track(landmarks: np.ndarray, fps: float) -> np.ndarray:
    track = np.asarray(landmarks, dtype=np.float64)
    if track.ndim != 3 or track.shape[1:] != (lm.NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape (N_frames, 68, 2), got {track.shape}")
    if track.shape[0] < 3:
        raise ValueError(f"landmarks must have at least 3 frames, got {track.shape[0]}")
    if not np.all(np.isfinite(track)):
        raise ValueError("landmarks contain NaN or infinite values")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return track


def register_to_first_frame(landmarks: np.ndarray) -> np.ndarray:
    """Map every frame onto the first one with a least-squares similarity transform.

    The transform (rotation, uniform scale, translation) is fitted per frame on
    :data:`STABLE_POINTS` and applied to all 68 points.

    Args:
        landmarks: Track of shape (N, 68, 2), N frames.

    Returns:
        Registered track of shape (N, 68, 2), float64; frame 0 is unchanged.
    """
    track = np.asarray(landmarks, dtype=np.float64)
    # Complex numbers x + iy turn a 2-D similarity into z -> a z + b with complex a, b.
    points = track[..., 0] + 1j * track[..., 1]  # (N, 68)
    source = points[:, STABLE_POINTS]  # (N, S)
    target = source[0]  # (S,)
    source_mean = source.mean(axis=1, keepdims=True)  # (N, 1)
    target_mean = target.mean()
    source_centred = source - source_mean  # (N, S)
    target_centred = target - target_mean  # (S,)
    numerator = (np.conj(source_centred) * target_centred).sum(axis=1)  # (N,)
    denominator = (np.abs(source_centred) ** 2).sum(axis=1)  # (N,)
    # A frame whose stable points all coincide keeps its pose (factor 1).
    safe_denominator = np.maximum(denominator, _EPSILON)
    scale_rotation = np.where(denominator > _EPSILON, numerator / safe_denominator, 1.0)  # (N,)
    registered = scale_rotation[:, None] * (points - source_mean) + target_mean  # (N, 68)
    return np.stack([registered.real, registered.imag], axis=-1)  # (N, 68, 2)


def smooth(
    signal: np.ndarray, fps: float, sigma_s: float = DEFAULT_SMOOTHING_SIGMA_S
) -> np.ndarray:
    """Smooth a 1-D signal with a Gaussian filter of standard deviation ``sigma_s`` seconds.

    The edges are padded by repeating the end values, and ``sigma_s = 0`` returns a copy.

    Args:
        signal: Array of shape (N,).
        fps: Frames per second of the signal.
        sigma_s: Standard deviation of the Gaussian in seconds.

    Returns:
        Smoothed float64 array of shape (N,).
    """
    if sigma_s < 0:
        raise ValueError(f"sigma_s must be >= 0, got {sigma_s!r}")
    values = np.asarray(signal, dtype=np.float64)
    if sigma_s == 0:
        return values.copy()
    return gaussian_filter1d(values, sigma=sigma_s * fps, mode="nearest", truncate=4.0)


def _cheek_signals(
    track: np.ndarray, mouth_centre: np.ndarray, mouth_width: float
) -> dict[str, np.ndarray]:
    """Compute the unsmoothed cheek_right and cheek_left signals of a registered track.

    Args:
        track: Registered track of shape (N, 68, 2).
        mouth_centre: First frame's mouth centre, shape (2,).
        mouth_width: First frame's mouth width in pixels, positive.

    Returns:
        Dict with keys cheek_right and cheek_left, arrays of shape (N,) in first-frame mouth
        widths, as the module docstring defines them.

    Raises:
        ValueError: If the first frame's eye midpoint coincides with its mouth centre.
    """
    eye_midpoint = lm.eye_centres(track[0]).mean(axis=0)  # (2,)
    upward = eye_midpoint - mouth_centre  # (2,)
    upward_length = float(np.linalg.norm(upward))
    if upward_length < _EPSILON:
        raise ValueError(
            "first frame's eye centres and mouth centre coincide, so the face's upward "
            "direction for the cheek signal is undefined; check the landmark order"
        )
    upward /= upward_length

    signals = {}
    for side, points in (("right", RIGHT_CHEEK_POINTS), ("left", LEFT_CHEEK_POINTS)):
        cheek = track[:, list(points)].mean(axis=1)  # (N, 2)
        signals[f"cheek_{side}"] = (cheek - cheek[0]) @ upward / mouth_width  # (N,)
    return signals


def smile_signals(
    landmarks: np.ndarray,
    fps: float,
    smoothing_sigma_s: float = DEFAULT_SMOOTHING_SIGMA_S,
    register: bool = True,
) -> dict[str, np.ndarray]:
    """Compute the smoothed lip-corner, eyelid and cheek signals of a track.

    Args:
        landmarks: Track of shape (N, 68, 2), N >= 3 frames, pixel coordinates.
        fps: Frames per second of the track.
        smoothing_sigma_s: Standard deviation of the Gaussian smoothing, in seconds.
        register: Whether to register every frame onto the first one first.

    Returns:
        Dict with keys lip_right, lip_left, lip, eyelid_right, eyelid_left, eyelid,
        cheek_right, cheek_left and cheek. Each value is an array of shape (N,). Lip and
        cheek signals are in first-frame mouth widths and eyelid signals in first-frame eye
        widths, as the module docstring defines them.

    Raises:
        ValueError: If the track shape, values or fps are invalid, the first frame's mouth
            or eye width is zero, or its eye midpoint coincides with its mouth centre.
    """
    track = _check_track(landmarks, fps)
    if register:
        track = register_to_first_frame(track)

    right_corner = track[:, lm.RIGHT_LIP_CORNER]  # (N, 2)
    left_corner = track[:, lm.LEFT_LIP_CORNER]  # (N, 2)
    mouth_centre = (right_corner[0] + left_corner[0]) / 2  # (2,)
    mouth_width = float(np.linalg.norm(left_corner[0] - right_corner[0]))
    if mouth_width < _EPSILON:
        raise ValueError("first frame's mouth width (landmarks 48 to 54) is zero")
    raw = {
        "lip_right": np.linalg.norm(right_corner - mouth_centre, axis=1) / mouth_width - 0.5,
        "lip_left": np.linalg.norm(left_corner - mouth_centre, axis=1) / mouth_width - 0.5,
    }

    eyes = {
        "right": (lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_INNER, lm.RIGHT_UPPER_LID, lm.RIGHT_LOWER_LID),
        "left": (lm.LEFT_EYE_OUTER, lm.LEFT_EYE_INNER, lm.LEFT_UPPER_LID, lm.LEFT_LOWER_LID),
    }
    for side, (outer, inner, upper, lower) in eyes.items():
        eye_width = float(np.linalg.norm(track[0, outer] - track[0, inner]))
        if eye_width < _EPSILON:
            raise ValueError(
                f"first frame's {side} eye width (landmarks {outer} to {inner}) is zero"
            )
        lid_gaps = track[:, list(upper)] - track[:, list(lower)]  # (N, 2, 2)
        aperture = np.linalg.norm(lid_gaps, axis=2).mean(axis=1)  # (N,)
        raw[f"eyelid_{side}"] = (aperture[0] - aperture) / eye_width

    raw.update(_cheek_signals(track, mouth_centre, mouth_width))

    smoothed = {name: smooth(values, fps, smoothing_sigma_s) for name, values in raw.items()}
    signals: dict[str, np.ndarray] = {}
    for signal in SIGNALS:
        right = smoothed[f"{signal}_right"]
        left = smoothed[f"{signal}_left"]
        signals[f"{signal}_right"] = right
        signals[f"{signal}_left"] = left
        signals[signal] = (right + left) / 2
    return signals


def _runs(step_signs: np.ndarray, sign: int) -> list[tuple[int, int]]:
    """Return maximal runs of steps equal to ``sign`` as (first step, last step + 1)."""
    hits = np.concatenate([[False], step_signs == sign, [False]])
    edges = np.flatnonzero(np.diff(hits.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _longest_run(runs: list[tuple[int, int]], steps: np.ndarray) -> tuple[int, int] | None:
    """Pick the run with the most steps; ties go to the larger absolute change."""
    if not runs:
        return None
    return max(runs, key=lambda run: (run[1] - run[0], abs(steps[run[0]:run[1]].sum())))


def detect_phases(
    lip: np.ndarray,
    fps: float,
    min_rise: float = DEFAULT_MIN_RISE,
    min_speed: float = DEFAULT_MIN_SPEED,
) -> Phases:
    """Find onset, apex and offset in a smoothed lip-corner signal.

    Rule: a frame step is rising when the signal grows faster than ``min_speed`` units per
    second, falling when it shrinks faster than that, and flat otherwise. Rising runs are
    maximal runs of consecutive rising steps, and falling runs likewise. A run qualifies
    when its total change is at least ``min_rise``. The onset is the qualifying rising run
    with the most steps (ties: larger rise). The offset is the qualifying falling run with
    the most steps that starts at or after the onset's last frame. The apex is everything
    between them.

    The speed threshold keeps the slow tails of the smoothing kernel out of the runs, but a
    phase boundary on a sharp corner of the signal still lands outside the true corner,
    where the smoothed speed falls to ``min_speed``. For a linear ramp r times faster than
    ``min_speed`` that is where the Gaussian tail equals 1 / r: 0.8 smoothing standard
    deviations for r = 5 and 1.8 for r = 25, rounded to whole frames.

    Degenerate cases: with no qualifying rising run, ``flat`` is set and all phases are
    empty at frame 0. With no qualifying falling run after the onset, ``no_offset`` is set,
    the apex runs from the onset's end to the last frame and the offset is empty there.
    In that case ``offset_before_onset`` is set as well when the longest qualifying falling
    run of the whole track lies before the onset.

    Args:
        lip: Smoothed lip signal of shape (N,).
        fps: Frames per second.
        min_rise: Minimum total change of a run, in signal units.
        min_speed: Speed below which a step counts as flat, in signal units per second.

    Returns:
        The phase boundaries and flags.

    Raises:
        ValueError: If lip is not 1-D with at least 2 frames, or a setting is negative.
    """
    values = np.asarray(lip, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(
            f"lip must be a 1-D signal with at least 2 frames, got shape {values.shape}"
        )
    for name, setting in (("min_rise", min_rise), ("min_speed", min_speed)):
        if not setting >= 0:
            raise ValueError(f"{name} must be >= 0, got {setting!r}")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    last = values.size - 1
    steps = np.diff(values)  # (N-1,)
    threshold = min_speed / fps
    step_signs = np.where(steps > threshold, 1, np.where(steps < -threshold, -1, 0))

    rising = [run for run in _runs(step_signs, 1) if steps[run[0]:run[1]].sum() >= min_rise]
    falling = [run for run in _runs(step_signs, -1) if -steps[run[0]:run[1]].sum() >= min_rise]

    onset = _longest_run(rising, steps)
    if onset is None:
        return Phases(0, 0, 0, 0, flat=True, no_offset=True, offset_before_onset=False)
    onset_start, onset_end = onset

    offset = _longest_run([run for run in falling if run[0] >= onset_end], steps)
    if offset is None:
        longest_fall = _longest_run(falling, steps)
        before = longest_fall is not None and longest_fall[1] <= onset_start
        return Phases(onset_start, onset_end, last, last, flat=False, no_offset=True,
                      offset_before_onset=before)
    return Phases(onset_start, onset_end, offset[0], offset[1], flat=False, no_offset=False,
                  offset_before_onset=False)


def _segment_features(
    values: np.ndarray,
    right: np.ndarray,
    left: np.ndarray,
    first: int,
    last: int,
    fps: float,
) -> dict[str, float]:
    """Compute :data:`SIGNAL_FEATURES` of one signal over frames first..last (inclusive)."""
    if last <= first:
        return dict.fromkeys(SIGNAL_FEATURES, 0.0)

    window = values[first:last + 1]  # (K+1,)
    speed_all = np.diff(values) * fps  # (N-1,)
    if speed_all.size > 1:
        acceleration_all = np.gradient(speed_all) * fps  # (N-1,)
    else:
        acceleration_all = np.zeros_like(speed_all)
    speed = speed_all[first:last]  # (K,)
    acceleration = np.abs(acceleration_all[first:last])  # (K,)
    rise = speed > 0  # (K,)
    fall = speed < 0  # (K,)

    duration = (last - first) / fps
    rise_duration = rise.sum() / fps
    fall_duration = fall.sum() / fps
    rise_amplitude = float(speed[rise].sum() / fps)
    fall_amplitude = float(-speed[fall].sum() / fps)
    net_amplitude = rise_amplitude - fall_amplitude
    total_amplitude = rise_amplitude + fall_amplitude

    return {
        "rise_duration": float(rise_duration),
        "fall_duration": float(fall_duration),
        "rise_duration_ratio": safe_divide(rise_duration, duration),
        "fall_duration_ratio": safe_divide(fall_duration, duration),
        "max_amplitude": float(window.max()),
        "mean_amplitude": float(window.mean()),
        "sd_amplitude": float(window.std()),
        "rise_amplitude": rise_amplitude,
        "fall_amplitude": fall_amplitude,
        "total_amplitude": total_amplitude,
        "net_amplitude": net_amplitude,
        "rise_amplitude_ratio": safe_divide(rise_amplitude, total_amplitude),
        "fall_amplitude_ratio": safe_divide(fall_amplitude, total_amplitude),
        "net_amplitude_ratio": safe_divide(net_amplitude, total_amplitude),
        "max_rise_speed": float(speed[rise].max()) if rise.any() else 0.0,
        "mean_rise_speed": float(speed[rise].mean()) if rise.any() else 0.0,
        "max_fall_speed": float(-speed[fall].min()) if fall.any() else 0.0,
        "mean_fall_speed": float(-speed[fall].mean()) if fall.any() else 0.0,
        "max_rise_acceleration": float(acceleration[rise].max()) if rise.any() else 0.0,
        "mean_rise_acceleration": float(acceleration[rise].mean()) if rise.any() else 0.0,
        "max_fall_acceleration": float(acceleration[fall].max()) if fall.any() else 0.0,
        "mean_fall_acceleration": float(acceleration[fall].mean()) if fall.any() else 0.0,
        "net_amplitude_per_duration": safe_divide(net_amplitude, duration),
        "asymmetry": float(np.abs(left[first:last + 1] - right[first:last + 1]).mean()),
    }


def phase_features(signals: dict[str, np.ndarray], phases: Phases, fps: float) -> dict[str, float]:
    """Compute the per-phase, per-signal features and the phase flags.

    Within a phase of frames first..last, a step is rising when the signal grows and
    falling when it shrinks. Definitions, with d the first differences of the signal:

    - ``rise_duration`` and ``fall_duration`` are the counts of rising and falling steps
      over fps (seconds), and their ratios divide them by the phase duration.
    - ``max_amplitude``, ``mean_amplitude`` and ``sd_amplitude`` are the maximum, mean and
      population standard deviation of the signal values over frames first..last.
    - ``rise_amplitude`` is the sum of positive d and ``fall_amplitude`` the sum of
      |negative d|. ``total_amplitude`` is their sum and ``net_amplitude`` their difference
      (rise minus fall). ``rise_amplitude_ratio``, ``fall_amplitude_ratio`` and
      ``net_amplitude_ratio`` divide the rise, fall and net amplitude by the total.
    - Speeds are d * fps (units per second) over the rising or the falling steps, reported
      as positive magnitudes: ``max_rise_speed``, ``mean_rise_speed``, ``max_fall_speed``
      and ``mean_fall_speed``.
    - Accelerations are |central difference of speed| * fps (units per second squared) at
      each step, one-sided at the track's ends, so the acceleration at a phase's first and
      last step also uses one step outside the phase. The maximum and mean acceleration
      over the rising and over the falling steps give ``max_rise_acceleration``,
      ``mean_rise_acceleration``, ``max_fall_acceleration`` and ``mean_fall_acceleration``.
    - ``net_amplitude_per_duration`` is the net amplitude over the phase duration.
    - ``asymmetry`` is the mean absolute difference of the left and right signals over
      frames first..last.

    A phase with no steps gets zeros, a statistic over no rising or no falling step is 0,
    and every ratio with a near-zero denominator is 0.

    Args:
        signals: Output of :func:`smile_signals`.
        phases: Output of :func:`detect_phases`.
        fps: Frames per second.

    Returns:
        Dict in the order of :func:`feature_names`, every value finite.
    """
    features: dict[str, float] = {}
    for phase in PHASES:
        first, last = phases.span(phase)
        features[f"{phase}.duration"] = max(last - first, 0) / fps
        for signal in SIGNALS:
            right = signals[f"{signal}_right"]
            left = signals[f"{signal}_left"]
            values = _segment_features(signals[signal], right, left, first, last, fps)
            features.update({f"{phase}.{signal}.{name}": value for name, value in values.items()})
    features["phase.flat"] = float(phases.flat)
    features["phase.no_offset"] = float(phases.no_offset)
    features["phase.offset_before_onset"] = float(phases.offset_before_onset)
    return features


def dynamics_features(
    landmarks: np.ndarray,
    fps: float,
    smoothing_sigma_s: float = DEFAULT_SMOOTHING_SIGMA_S,
    min_rise: float = DEFAULT_MIN_RISE,
    min_speed: float = DEFAULT_MIN_SPEED,
    register: bool = True,
) -> dict[str, float]:
    """Compute the smile dynamics features of one landmark track.

    Args:
        landmarks: Track of shape (N, 68, 2), N >= 3 frames, pixel coordinates.
        fps: Frames per second of the track.
        smoothing_sigma_s: Standard deviation of the Gaussian smoothing, in seconds.
        min_rise: Minimum total change of the onset and offset runs, in mouth widths.
        min_speed: Lip speed below which a frame step counts as flat when finding the
            phases, in mouth widths per second.
        register: Whether to register every frame onto the first one first.

    Returns:
        Dict from feature name to value, keys in the order of :func:`feature_names`, every
        value finite.

    Raises:
        ValueError: If the track shape, values or fps are invalid.
    """
    signals = smile_signals(landmarks, fps, smoothing_sigma_s=smoothing_sigma_s, register=register)
    phases = detect_phases(signals["lip"], fps, min_rise=min_rise, min_speed=min_speed)
    return phase_features(signals, phases, fps)
