"""Smile intensity over a clip: neutral, onset, apex, offset, neutral.

The intensity s(t) in [0, 1] drives every expression change of the face: lip corners, mouth
opening, eyelid narrowing, crow's feet and nasolabial folds. It is 0 for at least
`MIN_NEUTRAL_S` at both ends of a clip. It rises as a raised cosine over the onset and stays
near the amplitude A over the apex, with a small wobble of whole cycles. Then it falls as a
raised cosine over the offset:
    onset   s = A (1 - cos(π u)) / 2,  u = fraction of the onset elapsed
    apex    s = A (1 + wobble × sign × sin(2π n u)),  n = max(1, round(1.5 × apex seconds))
    offset  s = A (1 + cos(π u)) / 2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from siamlib.data.synthetic.cues import DynamicsCues

MIN_NEUTRAL_S = 0.3
MIN_APEX_S = 0.2


@dataclass(frozen=True)
class SmileTimeline:
    """Placement of the smile phases in a clip, after fitting them into its duration.

    Attributes:
        duration_s: Clip duration, num_frames / fps.
        num_frames: Number of frames N.
        onset_start_s: Time the onset begins.
        onset_duration_s: Realised onset duration.
        apex_duration_s: Realised apex duration.
        offset_duration_s: Realised offset duration.
        compression: Factor the onset and offset were scaled by to fit the clip (1 when they
            fitted as drawn).
    """

    duration_s: float
    num_frames: int
    onset_start_s: float
    onset_duration_s: float
    apex_duration_s: float
    offset_duration_s: float
    compression: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a dictionary."""
        return asdict(self)


def fit_timeline(
    dynamics: DynamicsCues,
    min_duration_s: float,
    max_duration_s: float,
    fps: int,
    rng: np.random.Generator,
) -> SmileTimeline:
    """Choose the clip duration and place the smile phases in it.

    The duration is drawn uniformly from [min_duration_s, max_duration_s] and lengthened (up to
    the maximum) when the phases and the neutral margins need more. When they still do not
    fit, the apex shrinks first (to `MIN_APEX_S`), then onset and offset shrink by one common
    factor. The remaining neutral time is split at random between start and end.

    Args:
        dynamics: The clip's drawn phase durations.
        min_duration_s: Minimum clip duration in seconds.
        max_duration_s: Maximum clip duration in seconds.
        fps: Frames per second.
        rng: Generator of the clip.

    Returns:
        The realised timeline.

    Raises:
        ValueError: If the durations or fps are invalid.
    """
    if not 2 * MIN_NEUTRAL_S + MIN_APEX_S < min_duration_s <= max_duration_s:
        raise ValueError(
            f"durations must satisfy {2 * MIN_NEUTRAL_S + MIN_APEX_S} < min_duration_s <= "
            f"max_duration_s, got {min_duration_s}, {max_duration_s}"
        )
    if fps < 1:
        raise ValueError(f"fps must be >= 1, got {fps}")

    onset = dynamics.onset_duration_s
    apex = dynamics.apex_duration_s
    offset = dynamics.offset_duration_s

    duration = float(rng.uniform(min_duration_s, max_duration_s))
    needed = onset + apex + offset + 2 * MIN_NEUTRAL_S
    duration = min(max(duration, needed), max_duration_s)
    num_frames = max(int(round(duration * fps)), 1)
    duration = num_frames / fps

    available = duration - 2 * MIN_NEUTRAL_S
    compression = 1.0
    if onset + apex + offset > available:
        apex = max(MIN_APEX_S, available - onset - offset)
    if onset + apex + offset > available:
        compression = (available - apex) / (onset + offset)
        onset *= compression
        offset *= compression

    slack = max(available - onset - apex - offset, 0.0)
    start = MIN_NEUTRAL_S + slack * float(rng.uniform(0.25, 0.75))
    return SmileTimeline(
        duration_s=duration,
        num_frames=num_frames,
        onset_start_s=start,
        onset_duration_s=onset,
        apex_duration_s=apex,
        offset_duration_s=offset,
        compression=compression,
    )


def smile_intensity(
    timeline: SmileTimeline,
    amplitude: float,
    wobble: float,
    fps: int,
    wobble_sign: float = 1.0,
) -> np.ndarray:
    """Compute the smile intensity of every frame.

    Args:
        timeline: Phase placement from `fit_timeline`.
        amplitude: Apex intensity A in (0, 1].
        wobble: Relative apex wobble (0 for a flat apex).
        fps: Frames per second; frame i is at time i / fps.
        wobble_sign: +1 or -1, the direction of the first wobble half-cycle.

    Returns:
        Float32 array of shape (N,), values in [0, 1], N = timeline.num_frames.
    """
    times = np.arange(timeline.num_frames) / fps
    apex_start = timeline.onset_start_s + timeline.onset_duration_s
    offset_start = apex_start + timeline.apex_duration_s
    offset_end = offset_start + timeline.offset_duration_s

    intensity = np.zeros(timeline.num_frames)
    onset = (times >= timeline.onset_start_s) & (times < apex_start)
    u = (times[onset] - timeline.onset_start_s) / timeline.onset_duration_s
    intensity[onset] = amplitude * (1 - np.cos(np.pi * u)) / 2

    apex = (times >= apex_start) & (times < offset_start)
    u = (times[apex] - apex_start) / timeline.apex_duration_s
    cycles = max(1, round(1.5 * timeline.apex_duration_s))
    intensity[apex] = amplitude * (1 + wobble * wobble_sign * np.sin(2 * np.pi * cycles * u))

    offset = (times >= offset_start) & (times < offset_end)
    u = (times[offset] - offset_start) / timeline.offset_duration_s
    intensity[offset] = amplitude * (1 + np.cos(np.pi * u)) / 2

    return np.clip(intensity, 0.0, 1.0).astype(np.float32)


PHASE_CODES = {"neutral_before": 0, "onset": 1, "apex": 2, "offset": 3, "neutral_after": 4}
"""Codes of `smile_phase`, in time order."""


def smile_phase(timeline: SmileTimeline, fps: int) -> np.ndarray:
    """Label every frame with its smile phase, using the boundaries of `smile_intensity`.

    Args:
        timeline: Phase placement from `fit_timeline`.
        fps: Frames per second; frame i is at time i / fps.

    Returns:
        Int8 array of shape (N,) with the codes of `PHASE_CODES`: 0 neutral before the onset,
        1 onset, 2 apex, 3 offset, 4 neutral after the offset.
    """
    times = np.arange(timeline.num_frames) / fps
    apex_start = timeline.onset_start_s + timeline.onset_duration_s
    offset_start = apex_start + timeline.apex_duration_s
    offset_end = offset_start + timeline.offset_duration_s
    boundaries = [timeline.onset_start_s, apex_start, offset_start, offset_end]
    # side="right" puts a frame exactly on a boundary into the later phase, as the
    # half-open intervals of smile_intensity do.
    return np.searchsorted(boundaries, times, side="right").astype(np.int8)
