"""Nuisance factors: variation that carries no age signal.

With ν = `SyntheticConfig.nuisance` scaling every spread below (ν = 0 gives a fixed face,
background and pose, no blinks and no sensor noise):

Per subject (identity), with u uniform in [0, 1] and z standard normal:
    skin tone        position 0.3 + ν (u - 0.3) on a light-to-dark palette
    hair, iris       palette colours mixed by ν u
    shape            face width, eye spacing, eye size, nose length and mouth width each
                     × (1 + 0.04 ν z)
    hairline         + 0.03 ν z face units
    lip corners      lift asymmetry 0.1 ν z

Per clip:
    background       grey-blue + ν × uniform ±40 per channel, smooth blobs of 15 ν grey levels
    lighting         linear gradient of strength 0.25 ν u at a uniform angle
    head placement   offset 0.04 ν z of the frame, scale × (1 + 0.05 ν z), roll 3 ν z degrees
    head motion      sinusoids of 0.1-0.6 Hz: translation 0.02 ν of the frame, roll 3 ν
                     degrees, scale 0.02 ν
    blinks           Poisson process of 0.25 ν per second, each `BLINK_DURATION_S` long
    sensor noise     Gaussian, 2 ν grey levels per pixel and frame
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLINK_DURATION_S = 0.25
LIGHT_SKIN_RGB = np.array([236.0, 200.0, 178.0])
DARK_SKIN_RGB = np.array([112.0, 76.0, 58.0])
BASE_BACKGROUND_RGB = np.array([110.0, 122.0, 134.0])
_HAIR_PALETTE = np.array([[40, 28, 20], [85, 60, 40], [140, 105, 60], [25, 22, 22]], float)
_IRIS_PALETTE = np.array([[70, 45, 30], [60, 80, 95], [85, 75, 45]], float)


@dataclass(frozen=True)
class IdentityNuisance:
    """Per-subject appearance variation that is independent of age.

    Attributes:
        skin_rgb: Skin colour, RGB in [0, 255].
        hair_rgb: Hair and eyebrow colour.
        iris_rgb: Iris colour.
        face_width: Multiplier of the face half width.
        eye_spacing: Multiplier of the distance between the eyes.
        eye_size: Multiplier of the eye width.
        nose_length: Multiplier of the eye-to-nose-tip distance.
        mouth_width: Multiplier of the mouth width.
        hairline_offset: Shift of the hairline in face units (positive is lower).
        corner_asymmetry: Relative lip-corner lift difference, left minus right over two.
        texture_seed: Seed of the subject's skin texture pattern.
    """

    skin_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    iris_rgb: tuple[float, float, float]
    face_width: float
    eye_spacing: float
    eye_size: float
    nose_length: float
    mouth_width: float
    hairline_offset: float
    corner_asymmetry: float
    texture_seed: int


@dataclass(frozen=True)
class ClipNuisance:
    """Per-clip nuisance: scene, lighting, head motion, blinks and sensor noise.

    Attributes:
        background_rgb: Mean background colour.
        background_variation: Amplitude of the background blobs in grey levels.
        scene_seed: Seed of the background blob pattern and the sensor noise bank.
        light_strength: Relative brightness change from the frame centre to its edge.
        light_angle: Direction of the lighting gradient in radians.
        head_offset: Mean head offset (x, y) as fractions of the frame size.
        head_scale: Mean head scale.
        head_roll_deg: Mean head roll in degrees.
        motion_translation: Amplitude of the head translation as a fraction of the frame.
        motion_roll_deg: Amplitude of the head roll in degrees.
        motion_scale: Relative amplitude of the head scale change.
        motion_frequencies_hz: Frequencies of x, y, roll and scale motion.
        motion_phases: Phases of x, y, roll and scale motion in radians.
        blink_times_s: Centre time of every blink.
        sensor_noise: Standard deviation of the per-pixel noise in grey levels.
    """

    background_rgb: tuple[float, float, float]
    background_variation: float
    scene_seed: int
    light_strength: float
    light_angle: float
    head_offset: tuple[float, float]
    head_scale: float
    head_roll_deg: float
    motion_translation: float
    motion_roll_deg: float
    motion_scale: float
    motion_frequencies_hz: tuple[float, float, float, float]
    motion_phases: tuple[float, float, float, float]
    blink_times_s: tuple[float, ...]
    sensor_noise: float


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    clipped = np.clip(values, 0.0, 255.0)
    return (float(clipped[0]), float(clipped[1]), float(clipped[2]))


def _palette_colour(palette: np.ndarray, nuisance: float, rng: np.random.Generator) -> np.ndarray:
    """Mix the first palette colour towards a random one by `nuisance`."""
    other = palette[rng.integers(len(palette))]
    mix = min(nuisance, 1.0) * float(rng.uniform())
    return (1 - mix) * palette[0] + mix * other


def sample_identity(nuisance: float, rng: np.random.Generator) -> IdentityNuisance:
    """Draw the nuisance appearance of one subject.

    Args:
        nuisance: The nuisance scale ν (0 gives a fixed identity).
        rng: Generator of the subject.

    Returns:
        The subject's identity nuisance.
    """
    tone = float(np.clip(0.3 + nuisance * (rng.uniform() - 0.3), 0.0, 1.0))
    skin = (1 - tone) * LIGHT_SKIN_RGB + tone * DARK_SKIN_RGB
    z = rng.standard_normal(7)
    return IdentityNuisance(
        skin_rgb=_rgb(skin),
        hair_rgb=_rgb(_palette_colour(_HAIR_PALETTE, nuisance, rng)),
        iris_rgb=_rgb(_palette_colour(_IRIS_PALETTE, nuisance, rng)),
        face_width=1 + 0.04 * nuisance * float(z[0]),
        eye_spacing=1 + 0.04 * nuisance * float(z[1]),
        eye_size=1 + 0.04 * nuisance * float(z[2]),
        nose_length=1 + 0.04 * nuisance * float(z[3]),
        mouth_width=1 + 0.04 * nuisance * float(z[4]),
        hairline_offset=0.03 * nuisance * float(z[5]),
        corner_asymmetry=0.1 * nuisance * float(z[6]),
        texture_seed=int(rng.integers(2**31)),
    )


def sample_clip_nuisance(
    nuisance: float, duration_s: float, rng: np.random.Generator
) -> ClipNuisance:
    """Draw the nuisance factors of one clip.

    Args:
        nuisance: The nuisance scale ν (0 turns every factor off).
        duration_s: Clip duration in seconds, for placing blinks.
        rng: Generator of the clip.

    Returns:
        The clip's nuisance factors.
    """
    z = rng.standard_normal(5)
    num_blinks = int(rng.poisson(0.25 * nuisance * duration_s))
    blinks = tuple(sorted(float(t) for t in rng.uniform(0.0, duration_s, size=num_blinks)))
    frequencies = rng.uniform(0.1, 0.6, size=4)
    phases = rng.uniform(0.0, 2 * np.pi, size=4)
    return ClipNuisance(
        background_rgb=_rgb(BASE_BACKGROUND_RGB + nuisance * rng.uniform(-40, 40, size=3)),
        background_variation=15.0 * nuisance,
        scene_seed=int(rng.integers(2**31)),
        light_strength=0.25 * nuisance * float(rng.uniform()),
        light_angle=float(rng.uniform(0.0, 2 * np.pi)),
        head_offset=(0.04 * nuisance * float(z[0]), 0.04 * nuisance * float(z[1])),
        head_scale=float(1 + 0.05 * nuisance * z[2]),
        head_roll_deg=3.0 * nuisance * float(z[3]),
        motion_translation=0.02 * nuisance,
        motion_roll_deg=3.0 * nuisance,
        motion_scale=0.02 * nuisance,
        motion_frequencies_hz=tuple(float(f) for f in frequencies),
        motion_phases=tuple(float(p) for p in phases),
        blink_times_s=blinks,
        sensor_noise=2.0 * nuisance,
    )


def head_pose(clip: ClipNuisance, times: np.ndarray, frame_size: int) -> np.ndarray:
    """Compute the head pose of every frame.

    Args:
        clip: The clip's nuisance factors.
        times: Frame times in seconds, shape (N,).
        frame_size: Frame width and height in pixels.

    Returns:
        Float32 array of shape (N, 4): x and y translation in pixels, scale, roll in degrees.
    """
    waves = np.sin(
        2 * np.pi * np.outer(times, clip.motion_frequencies_hz) + np.array(clip.motion_phases)
    )  # (N, 4)
    tx = frame_size * (clip.head_offset[0] + clip.motion_translation * waves[:, 0])
    ty = frame_size * (clip.head_offset[1] + clip.motion_translation * waves[:, 1])
    roll = clip.head_roll_deg + clip.motion_roll_deg * waves[:, 2]
    scale = clip.head_scale * (1 + clip.motion_scale * waves[:, 3])
    return np.stack([tx, ty, scale, roll], axis=1).astype(np.float32)


def blink_closure(blink_times_s: tuple[float, ...], times: np.ndarray) -> np.ndarray:
    """Compute how far the eyes are closed by blinks in every frame.

    Args:
        blink_times_s: Centre time of every blink in seconds.
        times: Frame times in seconds, shape (N,).

    Returns:
        Float32 array of shape (N,) in [0, 1]; 1 is fully closed. Each blink follows
        cos²(π (t - centre) / BLINK_DURATION_S) within half a blink duration of its centre.
    """
    closure = np.zeros(len(times))
    for centre in blink_times_s:
        phase = (times - centre) / BLINK_DURATION_S
        inside = np.abs(phase) < 0.5
        closure[inside] = np.maximum(closure[inside], np.cos(np.pi * phase[inside]) ** 2)
    return closure.astype(np.float32)
