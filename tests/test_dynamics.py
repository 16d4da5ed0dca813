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


# Mirror pairs (right, left) of the points that the symmetric smile moves. The neutral face
# is mirror-symmetric about the vertical line x = 50.
MIRROR_PAIRS = ((48, 54), (37, 44), (38, 43), (40, 47), (41, 46), (31, 35), (2, 14))
RIGHT_CHEEK = (41, 31, 48, 2)
# Width of the neutral face's jaw contour (points 0 to 16) in pixels.
FACE_WIDTH = 80.0


def head_motion(track: np.ndarray, fps: float) -> np.ndarray:
    """Rotate, scale and translate every frame of a track (N, 68, 2) by a changing amount."""
    times = np.arange(track.shape[0]) / fps
    angle = 0.05 * np.sin(2 * np.pi * times)
    scale = 1 + 0.1 * times / times[-1]
    rotation = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                         np.stack([np.sin(angle), np.cos(angle)], -1)], -2)  # (N, 2, 2)
    moved = scale[:, None, None] * np.einsum("nij,npj->npi", rotation, track)  # (N, 68, 2)
    return moved + np.stack([5 * times, -3 * times], axis=-1)[:, None, :]


def cheek_raise_track(rise: np.ndarray) -> np.ndarray:
    """Return a track (N, 68, 2) whose right cheek points move up by ``rise`` mouth widths."""
    track = np.repeat(neutral_face()[None], rise.size, axis=0)  # (N, 68, 2)
    for point in RIGHT_CHEEK:
        track[:, point, 1] -= rise * MOUTH_WIDTH  # image y points down
    return track


def hand_phases(first: int, last: int) -> dynamics.Phases:
    """Return phases whose onset covers frames first..last and whose apex and offset are empty."""
    return dynamics.Phases(first, last, last, last, flat=False, no_offset=True,
                           offset_before_onset=False)


def test_feature_names_count_and_cheek():
    names = dynamics.feature_names()
    per_phase = 1 + len(dynamics.SIGNALS) * len(dynamics.SIGNAL_FEATURES)
    assert len(names) == len(dynamics.PHASES) * per_phase + len(dynamics.FLAGS)
    assert len(names) == len(set(names))
    assert dynamics.SIGNALS == ("lip", "eyelid", "cheek")
    for name in ("apex.cheek.max_amplitude", "onset.lip.total_amplitude",
                 "offset.eyelid.net_amplitude_ratio", "onset.cheek.max_rise_acceleration",
                 "offset.lip.mean_fall_acceleration"):
        assert name in names


def test_ramp_speed_and_zero_acceleration():
    # Flat for 10 frames, a ramp of 0.2 units/s for 20 frames, flat again for 10 frames.
    fps, slope = 25.0, 0.2
    ramp = np.concatenate(
        [np.zeros(10), slope * np.arange(21) / fps, np.full(10, 20 * slope / fps)]
    )
    signals = {}
    for signal in dynamics.SIGNALS:
        signals.update({signal: ramp, f"{signal}_right": ramp, f"{signal}_left": ramp})
    # Frames 12..28 lie inside the ramp (frames 10..30) with a ramp step on either side.
    features = dynamics.phase_features(signals, hand_phases(12, 28), fps)
    for signal in dynamics.SIGNALS:
        prefix = f"onset.{signal}."
        assert features[prefix + "max_rise_speed"] == pytest.approx(slope, rel=1e-9)
        assert features[prefix + "mean_rise_speed"] == pytest.approx(slope, rel=1e-9)
        assert features[prefix + "max_rise_acceleration"] == pytest.approx(0.0, abs=1e-9)
        assert features[prefix + "mean_rise_acceleration"] == pytest.approx(0.0, abs=1e-9)
        assert features[prefix + "max_fall_speed"] == 0.0
        assert features[prefix + "net_amplitude"] == pytest.approx(slope * 16 / fps, rel=1e-9)
    assert features["onset.duration"] == pytest.approx(16 / fps)


def test_ramp_speed_through_pipeline():
    # Unsmoothed, the lip signal equals the planted corner motion, so its speed is exact.
    fps, slope = 50.0, 0.3
    lip = np.concatenate([np.zeros(20), slope * np.arange(31) / fps, np.full(20, 30 * slope / fps)])
    features = dynamics.dynamics_features(smile_track(lip), fps, smoothing_sigma_s=0.0)
    assert features["onset.duration"] == pytest.approx(30 / fps)
    assert features["onset.lip.max_rise_speed"] == pytest.approx(slope, rel=1e-9)
    assert features["onset.lip.mean_rise_speed"] == pytest.approx(slope, rel=1e-9)


def test_total_and_net_amplitude_ratio():
    fps = 25.0
    features = dynamics.dynamics_features(smile_track(planted_curve(fps)), fps)
    assert features["onset.lip.total_amplitude"] == pytest.approx(AMPLITUDE, abs=0.005)
    assert features["onset.lip.total_amplitude"] == pytest.approx(
        features["onset.lip.rise_amplitude"] + features["onset.lip.fall_amplitude"]
    )
    assert features["onset.lip.net_amplitude_ratio"] == pytest.approx(1.0)
    assert features["offset.lip.net_amplitude_ratio"] == pytest.approx(-1.0)
    # The eyes and cheeks do not move, so their totals are 0 and the ratio falls back to 0.
    assert features["onset.eyelid.total_amplitude"] == pytest.approx(0.0, abs=1e-12)
    assert features["onset.eyelid.net_amplitude_ratio"] == 0.0


def test_symmetric_smile_zero_asymmetry():
    fps = 25.0
    curve = planted_curve(fps)  # (N,)
    track = np.repeat(neutral_face()[None], curve.size, axis=0)  # (N, 68, 2)
    np.testing.assert_allclose(track[0, [left for _, left in MIRROR_PAIRS], 0],
                               100 - track[0, [right for right, _ in MIRROR_PAIRS], 0])
    # Right-side displacements (x, y) in mouth widths. The left side gets (-x, y).
    moves = {48: (-1.0, -0.6), 41: (0.0, -0.3), 40: (0.0, -0.3), 37: (0.0, 0.3),
             38: (0.0, 0.3), 31: (0.0, -0.1), 2: (-0.1, -0.2)}
    pairs = dict(MIRROR_PAIRS)
    for right, (dx, dy) in moves.items():
        track[:, right] += np.outer(curve, [dx, dy]) * MOUTH_WIDTH
        track[:, pairs[right]] += np.outer(curve, [-dx, dy]) * MOUTH_WIDTH
    # A tilted head keeps the mirror symmetry about a tilted axis.
    tilt = 0.2
    rotation = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    track = track @ rotation.T

    features = dynamics.dynamics_features(track, fps)
    assert features["phase.flat"] == 0.0
    for signal in dynamics.SIGNALS:
        assert features[f"apex.{signal}.max_amplitude"] > 0.01, signal
        for phase in dynamics.PHASES:
            name = f"{phase}.{signal}.asymmetry"
            assert features[name] == pytest.approx(0.0, abs=1e-9), name


@pytest.mark.parametrize("seed", range(20))
def test_still_jitter_speeds_near_zero(seed):
    # 0.5 px jitter on a face 100 px wide (mouth 30 px) at the database's 50 fps.
    fps, jitter = 50.0, 0.5
    scale = 100.0 / FACE_WIDTH
    rng = np.random.default_rng(seed)
    still = smile_track(np.zeros(160)) * scale  # (N, 68, 2)
    track = still + rng.normal(0.0, jitter, size=still.shape)
    raw = dynamics.smile_signals(track, fps, smoothing_sigma_s=0.0)
    smoothed = dynamics.smile_signals(track, fps)
    smile = dynamics.smile_signals(smile_track(planted_curve(fps)) * scale, fps)
    smile_speed = np.abs(np.diff(smile["lip"])).max() * fps
    assert smile_speed == pytest.approx(AMPLITUDE / ONSET, rel=0.01)
    for signal in dynamics.SIGNALS:
        raw_speed = np.diff(raw[signal]) * fps  # (N-1,)
        smoothed_speed = np.diff(smoothed[signal]) * fps  # (N-1,)
        raw_rms = np.sqrt(np.mean(raw_speed**2))
        smoothed_rms = np.sqrt(np.mean(smoothed_speed**2))
        assert smoothed_rms < 0.15 * raw_rms, signal
        assert np.abs(smoothed_speed).max() < 0.3 * np.abs(raw_speed).max(), signal
        assert smoothed_rms < 0.4 * smile_speed, signal
        # NOTE: the maximum is not bounded below a smile's speed: with the default smoothing
        # it reaches 0.6 to 1.3 times the smile's onset speed over 20 jitter draws, so only the
        # RMS speed has a tight bound (see DEFAULT_SMOOTHING_SIGMA_S).


def test_cheek_planted_raise():
    fps = 25.0
    signals = dynamics.smile_signals(cheek_raise_track(planted_curve(fps)), fps)
    assert signals["cheek_right"].max() == pytest.approx(AMPLITUDE, abs=1e-6)
    assert signals["cheek_right"].min() > -1e-9
    assert np.abs(signals["cheek_left"]).max() == pytest.approx(0.0, abs=1e-9)
    assert signals["cheek"].max() == pytest.approx(AMPLITUDE / 2, abs=1e-6)


def test_cheek_ignores_head_motion():
    fps = 25.0
    still = smile_track(np.zeros(80))
    signals = dynamics.smile_signals(head_motion(still, fps), fps)
    for name in ("cheek_right", "cheek_left", "cheek"):
        assert np.abs(signals[name]).max() == pytest.approx(0.0, abs=1e-9), name

    raised = cheek_raise_track(planted_curve(fps))
    expected = dynamics.smile_signals(raised, fps)["cheek_right"]
    moved = dynamics.smile_signals(head_motion(raised, fps), fps)["cheek_right"]
    np.testing.assert_allclose(moved, expected, atol=1e-9)


@pytest.mark.parametrize("case", ["flat", "no_offset", "offset_before_onset"])
def test_degenerate_tracks_no_nan(case):
    fps = 25.0
    if case == "flat":
        curve = np.zeros(40)
    elif case == "no_offset":
        curve = smile_curve(fps, [0, 0.4, 1.0, 2.0], [0, 0, AMPLITUDE, AMPLITUDE])
    else:
        curve = smile_curve(fps, [0, 0.3, 0.9, 1.2, 2.2, 3.0], [0, 0, -0.1, -0.1, 0.1, 0.1])
    track = smile_track(curve, eyelid=curve / 3)
    track[:, list(RIGHT_CHEEK), 1] -= curve[:, None] * MOUTH_WIDTH / 2
    features = dynamics.dynamics_features(track, fps)
    assert list(features) == dynamics.feature_names()
    bad = [name for name, value in features.items() if not np.isfinite(value)]
    assert bad == []
    assert features[f"phase.{case}"] == 1.0
