"""Tests of the smile dynamics features on hand-made landmark tracks with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from siamlib.baselines import dynamics

MOUTH_WIDTH = 24.0
EYE_WIDTH = 20.0

# Planted smile, in seconds and mouth widths: neutral until ONSET_START, linear rise to
# AMPLITUDE over ONSET, hold for APEX, linear fall over OFFSET, neutral until TOTAL.
ONSET_START, ONSET, APEX, OFFSET, TOTAL = 0.5, 0.6, 0.8, 0.8, 3.2
AMPLITUDE = 0.15


def neutral_face() -> np.ndarray:
    """Return a plausible 68-point face (68, 2) with a 24 px mouth and 20 px wide eyes."""
    face = np.zeros((68, 2))
    jaw_angle = np.linspace(np.pi, 2 * np.pi, 17)
    face[0:17] = np.c_[50 + 40 * np.cos(jaw_angle), 50 - 45 * np.sin(jaw_angle)]
    face[17:22] = np.c_[np.linspace(20, 42, 5), np.full(5, 30.0)]
    face[22:27] = np.c_[np.linspace(58, 80, 5), np.full(5, 30.0)]
    face[27:31] = np.c_[np.full(4, 50.0), np.linspace(38, 60, 4)]
    face[31:36] = np.c_[np.linspace(42, 58, 5), np.full(5, 64.0)]
    for first, centre in ((36, 35.0), (42, 65.0)):
        face[first:first + 6] = np.c_[
            [centre - 10, centre - 4, centre + 4, centre + 10, centre + 4, centre - 4],
            [40, 36, 36, 40, 44, 44],
        ]
    lip_angle = np.linspace(np.pi, -np.pi, 13)[:-1]
    face[48:60] = np.c_[50 + 12 * np.cos(lip_angle), 80 - 5 * np.sin(lip_angle)]
    face[60:68] = np.c_[50 + 8 * np.cos(lip_angle[:8]), 80 - 2 * np.sin(lip_angle[:8])]
    return face


def smile_curve(fps: float, knots_s: list[float], values: list[float]) -> np.ndarray:
    """Sample a piecewise-linear curve at fps from time 0 to the last knot."""
    times = np.arange(int(round(knots_s[-1] * fps))) / fps
    return np.interp(times, knots_s, values)


def planted_curve(fps: float) -> np.ndarray:
    knots = [0, ONSET_START, ONSET_START + ONSET, ONSET_START + ONSET + APEX,
             ONSET_START + ONSET + APEX + OFFSET, TOTAL]
    return smile_curve(fps, knots, [0, 0, AMPLITUDE, AMPLITUDE, 0, 0])


def smile_track(
    lip: np.ndarray, right_share: float = 1.0, eyelid: np.ndarray | None = None
) -> np.ndarray:
    """Return a smiling track (N, 68, 2) built from the neutral face.

    The left lip corner moves outward by ``lip`` mouth widths and the right one by
    ``right_share`` of that. Each eye closes by ``eyelid`` eye widths.
    """
    track = np.repeat(neutral_face()[None], lip.size, axis=0)  # (N, 68, 2)
    track[:, 48, 0] -= right_share * lip * MOUTH_WIDTH
    track[:, 54, 0] += lip * MOUTH_WIDTH
    if eyelid is not None:
        half_closing = eyelid * EYE_WIDTH / 2
        for upper in (37, 38, 43, 44):
            track[:, upper, 1] += half_closing
        for lower in (40, 41, 46, 47):
            track[:, lower, 1] -= half_closing
    return track


@pytest.mark.parametrize("fps", [25.0, 50.0])
def test_phases_ramp_boundaries(fps):
    lip = dynamics.smile_signals(smile_track(planted_curve(fps)), fps)["lip"]
    phases = dynamics.detect_phases(lip, fps)
    planted = np.array([ONSET_START, ONSET_START + ONSET, ONSET_START + ONSET + APEX,
                        ONSET_START + ONSET + APEX + OFFSET]) * fps
    found = np.array([phases.onset_start, phases.onset_end, phases.offset_start, phases.offset_end])
    # Smoothing moves each boundary outward by about 1.4 sigma = 0.07 s, under 2 frames at
    # 25 fps; at 50 fps the same time is under 4 frames.
    assert np.all(np.abs(found - planted) <= 2 * fps / 25), (found, planted)
    assert not phases.flat
    assert not phases.no_offset


def test_phases_exact_signal():
    # Unsmoothed: 3 flat steps, 4 rising, 2 flat, 5 falling, 1 flat.
    lip = np.array([0, 0, 0, 0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.32, 0.24, 0.16, 0.08, 0, 0])
    phases = dynamics.detect_phases(lip, fps=10.0)
    spans = [phases.span(phase) for phase in dynamics.PHASES]
    assert spans == [(3, 7), (7, 9), (9, 14)]


def test_phases_min_rise_threshold():
    lip = np.array([0, 0, 0.002, 0.004, 0.006, 0.008, 0.008, 0.008])
    assert dynamics.detect_phases(lip, fps=25.0, min_rise=0.01).flat
    assert not dynamics.detect_phases(lip, fps=25.0, min_rise=0.005).flat


def test_features_ramp_values():
    fps = 25.0
    features = dynamics.dynamics_features(smile_track(planted_curve(fps)), fps)
    frame = 1 / fps
    assert features["onset.duration"] == pytest.approx(ONSET, abs=4 * frame)
    assert features["apex.duration"] == pytest.approx(APEX, abs=4 * frame)
    assert features["offset.duration"] == pytest.approx(OFFSET, abs=4 * frame)
    assert features["apex.lip.max_amplitude"] == pytest.approx(AMPLITUDE, abs=1e-6)
    assert features["onset.lip.max_amplitude"] == pytest.approx(AMPLITUDE, abs=0.005)
    assert features["onset.lip.max_rise_speed"] == pytest.approx(AMPLITUDE / ONSET, rel=0.01)
    assert features["offset.lip.max_fall_speed"] == pytest.approx(AMPLITUDE / OFFSET, rel=0.01)
    assert features["onset.lip.net_amplitude"] == pytest.approx(AMPLITUDE, abs=0.005)
    assert features["offset.lip.net_amplitude"] == pytest.approx(-AMPLITUDE, abs=0.005)
    assert features["onset.lip.rise_amplitude_ratio"] == pytest.approx(1.0)
    assert features["onset.lip.rise_duration_ratio"] == pytest.approx(1.0)
    assert features["onset.lip.net_amplitude_per_duration"] == pytest.approx(
        features["onset.lip.net_amplitude"] / features["onset.duration"]
    )
    assert features["phase.flat"] == 0.0


def test_features_fps_invariance():
    slow = dynamics.dynamics_features(smile_track(planted_curve(25.0)), 25.0)
    fast = dynamics.dynamics_features(smile_track(planted_curve(50.0)), 50.0)
    for phase in dynamics.PHASES:
        assert fast[f"{phase}.duration"] == pytest.approx(slow[f"{phase}.duration"], abs=0.05)
    for name in ("onset.lip.max_rise_speed", "offset.lip.max_fall_speed",
                 "onset.lip.mean_rise_speed", "apex.lip.max_amplitude"):
        assert fast[name] == pytest.approx(slow[name], rel=0.03), name


def test_eyelid_planted_narrowing():
    fps = 25.0
    curve = planted_curve(fps)
    features = dynamics.dynamics_features(smile_track(curve, eyelid=curve / 3), fps)
    assert features["apex.eyelid.max_amplitude"] == pytest.approx(AMPLITUDE / 3, abs=1e-6)
    assert features["onset.eyelid.max_rise_speed"] == pytest.approx(AMPLITUDE / 3 / ONSET, rel=0.01)
    assert features["apex.eyelid.asymmetry"] == pytest.approx(0.0, abs=1e-9)


def test_still_jitter_small_speeds():
    fps = 25.0
    rng = np.random.default_rng(3)
    track = smile_track(np.zeros(80)) + rng.normal(0.0, 0.2, size=(80, 68, 2))  # (N, 68, 2)
    raw_lip = dynamics.smile_signals(track, fps, smoothing_sigma_s=0.0)["lip"]
    raw_max_speed = np.abs(np.diff(raw_lip)).max() * fps
    smoothed_lip = dynamics.smile_signals(track, fps)["lip"]
    smoothed_max_speed = np.abs(np.diff(smoothed_lip)).max() * fps
    assert smoothed_max_speed < 0.35 * raw_max_speed
    assert smoothed_max_speed < 0.5 * AMPLITUDE / ONSET
    features = dynamics.dynamics_features(track, fps)
    assert all(np.isfinite(value) for value in features.values())


def test_flat_signal_flagged():
    features = dynamics.dynamics_features(smile_track(np.zeros(40)), 25.0)
    assert features["phase.flat"] == 1.0
    assert list(features) == dynamics.feature_names()
    assert all(np.isfinite(value) for value in features.values())
    phase_values = [value for name, value in features.items() if not name.startswith("phase.")]
    assert all(value == 0.0 for value in phase_values)


def test_no_offset_flagged():
    fps = 25.0
    curve = smile_curve(fps, [0, 0.4, 1.0, 2.0], [0, 0, AMPLITUDE, AMPLITUDE])
    features = dynamics.dynamics_features(smile_track(curve), fps)
    assert features["phase.no_offset"] == 1.0
    assert features["phase.offset_before_onset"] == 0.0
    assert features["offset.duration"] == 0.0
    assert features["offset.lip.max_amplitude"] == 0.0
    assert features["apex.duration"] > 0.8
    assert all(np.isfinite(value) for value in features.values())


def test_offset_before_onset_flagged():
    fps = 25.0
    curve = smile_curve(fps, [0, 0.3, 0.9, 1.2, 2.2, 3.0], [0, 0, -0.1, -0.1, 0.1, 0.1])
    phases = dynamics.detect_phases(dynamics.smile_signals(smile_track(curve), fps)["lip"], fps)
    assert phases.no_offset
    assert phases.offset_before_onset
    assert abs(phases.onset_start - 1.2 * fps) <= 2
    features = dynamics.dynamics_features(smile_track(curve), fps)
    assert features["phase.offset_before_onset"] == 1.0
    assert all(np.isfinite(value) for value in features.values())


def test_asymmetry_zero_and_positive():
    fps = 25.0
    curve = planted_curve(fps)
    symmetric = dynamics.dynamics_features(smile_track(curve), fps)
    lopsided = dynamics.dynamics_features(smile_track(curve, right_share=0.5), fps)
    assert symmetric["apex.lip.asymmetry"] == pytest.approx(0.0, abs=1e-9)
    assert symmetric["onset.lip.asymmetry"] == pytest.approx(0.0, abs=1e-9)
    # At the apex the left corner is out by AMPLITUDE and the right one by half of it.
    assert lopsided["apex.lip.asymmetry"] == pytest.approx(AMPLITUDE / 2, abs=0.005)
    assert lopsided["onset.lip.asymmetry"] > 0.01


def test_registration_removes_head_motion():
    fps = 25.0
    track = smile_track(planted_curve(fps))
    times = np.arange(track.shape[0]) / fps
    angle = 0.05 * np.sin(2 * np.pi * times)
    scale = 1 + 0.1 * times / times[-1]
    rotation = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                         np.stack([np.sin(angle), np.cos(angle)], -1)], -2)  # (N, 2, 2)
    moved = scale[:, None, None] * np.einsum("nij,npj->npi", rotation, track)
    moved += np.stack([5 * times, -3 * times], axis=-1)[:, None, :]
    still = dynamics.dynamics_features(track, fps)
    registered = dynamics.dynamics_features(moved, fps)
    for name in ("onset.duration", "apex.lip.max_amplitude", "onset.lip.max_rise_speed"):
        assert registered[name] == pytest.approx(still[name], rel=1e-6, abs=1e-9), name


def test_safe_divide_zero_denominator():
    assert dynamics.safe_divide(1.0, 0.0) == 0.0
    assert dynamics.safe_divide(1.0, 1e-15) == 0.0
    assert dynamics.safe_divide(3.0, 2.0) == 1.5


def test_invalid_inputs_rejected():
    track = smile_track(np.zeros(10))
    with pytest.raises(ValueError, match="fps"):
        dynamics.dynamics_features(track, 0.0)
    with pytest.raises(ValueError, match="shape"):
        dynamics.dynamics_features(track[:, :60], 25.0)
    with pytest.raises(ValueError, match="at least 3 frames"):
        dynamics.dynamics_features(track[:2], 25.0)
    broken = track.copy()
    broken[4, 10, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dynamics.dynamics_features(broken, 25.0)
