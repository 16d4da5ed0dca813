"""Planted age, gender and smile-type cues of the synthetic faces, with their formulas.

Notation: a is the subject's true age in years and σ is `SyntheticConfig.cue_noise`. Every z
is an independent standard normal draw, per subject for appearance cues and per clip for
dynamics.

Appearance cues are per subject and driven by the apparent age
    a_app = clip(a + 5 σ z, 5, 90)
so a subject can look a few years older or younger than they are, coherently over all
appearance cues. Dynamics cues are per clip and driven by the true age through
    r = clip((a - 8) / 68, 0, 1)        (0 at 8 years, 1 at 76),
so appearance and dynamics carry partly independent evidence of age.

Age curves of the appearance cues:
    wrinkle level   w(a) = clip((a - 15) / 55, 0, 1)
    forehead level  f(a) = clip((a - 25) / 45, 0, 1)
    maturity        m(a) = smoothstep(clip((a - 8) / 10, 0, 1)),  smoothstep(x) = 3x² - 2x³

`CUE_SPECS` lists every cue with its formula, face region, region mask and noise; the dataset
card is generated from it, so edit the list together with the formulas below.

Calibration. The noise scales (`APPARENT_AGE_SD` and the `*_NOISE` constants) were chosen so
that, on the default 150-subject dataset, the oracle regressor of
`siamlib.data.synthetic.oracle` (RBF SVR on the latent cues, 5 subject-disjoint folds) has an
MAE of 3.41 years from all cues, while appearance cues alone and dynamics cues alone give
4.20 and 4.26 years, against 14.14 for the mean training age (on the 400-subject `full`
profile: 2.92, 3.58 and 4.06 years). So neither family suffices
and a model gains from combining them. With the earlier scales (4 years for the apparent age,
0.2 for the onset), appearance alone was as good as all cues together (3.4 years). The
synthetic stage measures the oracle again for every generated dataset and writes it into the
dataset card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

AGE_MIN = 8
AGE_SPAN = 68
SMILE_TYPES = ("spontaneous", "posed")
GENDERS = ("female", "male")

# Dynamics bases per smile type, in seconds or intensity units.
ONSET_BASE_S = {"spontaneous": 0.65, "posed": 0.40}
APEX_BASE_S = {"spontaneous": 0.70, "posed": 0.90}
OFFSET_BASE_S = {"spontaneous": 0.75, "posed": 0.45}
EYE_INVOLVEMENT_BASE = {"spontaneous": 0.90, "posed": 0.35}

# Noise scales at cue_noise σ = 1, chosen by the calibration in the module docstring.
APPARENT_AGE_SD = 5.0           # years
ONSET_NOISE = 0.09              # SD of the log-normal factors
APEX_NOISE = 0.11
OFFSET_NOISE = 0.09
AMPLITUDE_NOISE = 0.045


@dataclass(frozen=True)
class CueSpec:
    """Documentation of one planted cue: what it is, where it shows, how it is computed."""

    name: str
    kind: str
    region: str
    formula: str
    noise: str


CUE_SPECS: tuple[CueSpec, ...] = (
    CueSpec("apparent_age", "appearance (age)", "all appearance cues",
            f"a_app = clip(a + {APPARENT_AGE_SD:g} σ z, 5, 90)", f"{APPARENT_AGE_SD:g} σ years, per subject"),
    CueSpec("crows_feet_strength", "appearance (age)", "outer eye corners, 3 lines per eye",
            "0.6 w(a_app) exp(0.2 σ z); frame contrast = strength × (0.15 + 0.85 × "
            "eye_involvement × s(t)), so the lines show mostly while smiling",
            "log-normal 0.2 σ, per subject"),
    CueSpec("forehead_line_contrast", "appearance (age)", "forehead, 3 horizontal lines",
            "0.35 f(a_app) exp(0.2 σ z), constant over the clip", "log-normal 0.2 σ, per subject"),
    CueSpec("nasolabial_strength", "appearance (age)", "nose wing to lip corner, both sides",
            "(0.05 + 0.30 w(a_app)) exp(0.2 σ z); frame contrast = strength × (0.4 + 0.6 s(t))",
            "log-normal 0.2 σ, per subject"),
    CueSpec("skin_texture", "appearance (age)", "whole face",
            "relative amplitude of blurred pixel noise on the skin, (0.015 + 0.05 w(a_app)) "
            "exp(0.2 σ z)", "log-normal 0.2 σ, per subject; the noise pattern is per subject"),
    CueSpec("lip_thickness", "appearance (age)", "lips",
            "lip heights × (1 - 0.35 w(a_app))", "through a_app only"),
    CueSpec("eye_line_ratio", "appearance (age)", "face proportions",
            "eye line y = -0.04 - 0.08 m(a_app), chin y = 0.62 + 0.10 m(a_app) + 0.02 [male], "
            "head top y = -0.78 (face units, half face width = 0.5); ratio = (eye y - top y) / "
            "(chin y - top y): children have eyes lower in the head", "through a_app and the "
            "identity jitter"),
    CueSpec("eye_width", "appearance (age)", "eyes",
            "0.20 - 0.03 m(a_app) face units: children have larger eyes", "identity jitter"),
    CueSpec("lower_face_ratio", "appearance (age)", "mouth and chin",
            "mouth y = eye y + 0.43 + 0.06 m(a_app); ratio = (chin y - mouth y) / (chin y - top y): "
            "adults have a longer lower face", "through a_app and the identity jitter"),
    CueSpec("jaw_taper", "appearance (gender)", "jaw contour",
            "0.24 female, 0.12 male, + 0.03 σ z; jaw x = -half width × cos φ × "
            "(1 - taper × sin φ): females have a narrower jaw", "normal 0.03 σ, per subject"),
    CueSpec("brow_thickness", "appearance (gender)", "eyebrows",
            "0.022 female, 0.036 male face units, × exp(0.15 σ z)",
            "log-normal 0.15 σ, per subject"),
    CueSpec("onset_duration_s", "dynamics (age, smile type)", "lip corners, eyelids, cheeks",
            f"base × (1 + 0.9 r) × exp({ONSET_NOISE:g} σ z); base 0.65 s spontaneous, 0.40 s posed",
            f"log-normal {ONSET_NOISE:g} σ, per clip"),
    CueSpec("apex_duration_s", "dynamics (age, smile type)", "lip corners",
            f"base × (1 + 0.5 r) × exp({APEX_NOISE:g} σ z); base 0.70 s spontaneous, 0.90 s posed",
            f"log-normal {APEX_NOISE:g} σ, per clip"),
    CueSpec("offset_duration_s", "dynamics (age, smile type)", "lip corners, eyelids",
            f"base × (1 + 0.7 r) × exp({OFFSET_NOISE:g} σ z); base 0.75 s spontaneous, 0.45 s posed",
            f"log-normal {OFFSET_NOISE:g} σ, per clip"),
    CueSpec("amplitude", "dynamics (age, gender, smile type)", "lip corners, mouth opening",
            f"clip((0.92 - 0.30 r + 0.04 [female] + 0.03 [posed]) exp({AMPLITUDE_NOISE:g} σ z), 0.2, 1)",
            f"log-normal {AMPLITUDE_NOISE:g} σ, per clip"),
    CueSpec("eye_involvement", "dynamics (smile type)", "eyelids, crow's feet",
            "clip(base + 0.1 σ z, 0, 1); base 0.90 spontaneous, 0.35 posed; eyelid aperture "
            "narrows by 0.4 × eye_involvement × s(t)", "normal 0.1 σ, per clip"),
    CueSpec("apex_wobble", "dynamics", "lip corners",
            "intensity at apex = amplitude × (1 + wobble × sign × sin(2π n u)), u the "
            "fraction of the apex elapsed, n = max(1, round(1.5 × apex seconds)), "
            "wobble = 0.04 σ", "random sign per clip"),
)

# The region mask (`siamlib.data.synthetic.regions.REGION_NAMES`) where each cue shows; "" for
# apparent_age, which acts through all appearance cues.
CUE_REGION_MASKS = {
    "apparent_age": "",
    "crows_feet_strength": "crows_feet",
    "forehead_line_contrast": "forehead_lines",
    "nasolabial_strength": "nasolabial_folds",
    "skin_texture": "face",
    "lip_thickness": "mouth",
    "eye_line_ratio": "face",
    "eye_width": "eyes",
    "lower_face_ratio": "face",
    "jaw_taper": "face",
    "brow_thickness": "brows",
    "onset_duration_s": "mouth",
    "apex_duration_s": "mouth",
    "offset_duration_s": "mouth",
    "amplitude": "mouth",
    "eye_involvement": "eyes",
    "apex_wobble": "mouth",
}


def maturity(age: float) -> float:
    """Return the child-to-adult proportion weight: 0 at 8 years, 1 from 18 years on."""
    x = float(np.clip((age - 8.0) / 10.0, 0.0, 1.0))
    return 3.0 * x**2 - 2.0 * x**3


def wrinkle_level(age: float) -> float:
    """Return the wrinkle weight: 0 up to 15 years, rising linearly to 1 at 70."""
    return float(np.clip((age - 15.0) / 55.0, 0.0, 1.0))


def forehead_level(age: float) -> float:
    """Return the forehead-line weight: 0 up to 25 years, rising linearly to 1 at 70."""
    return float(np.clip((age - 25.0) / 45.0, 0.0, 1.0))


def age_ratio(age: float) -> float:
    """Return r = (age - 8) / 68 clipped to [0, 1], the age input of the dynamics cues."""
    return float(np.clip((age - AGE_MIN) / AGE_SPAN, 0.0, 1.0))


@dataclass(frozen=True)
class AppearanceCues:
    """Per-subject appearance cue values (see `CUE_SPECS` for the formulas)."""

    apparent_age: float
    maturity: float
    wrinkle_level: float
    crows_feet_strength: float
    forehead_line_contrast: float
    nasolabial_strength: float
    skin_texture: float
    lip_thickness: float
    jaw_taper: float
    brow_thickness: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class DynamicsCues:
    """Per-clip smile dynamics before fitting into the clip (see `CUE_SPECS`)."""

    onset_duration_s: float
    apex_duration_s: float
    offset_duration_s: float
    amplitude: float
    eye_involvement: float
    apex_wobble: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a dictionary."""
        return asdict(self)


def _check_category(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def sample_appearance(
    age: int, gender: str, cue_noise: float, rng: np.random.Generator
) -> AppearanceCues:
    """Draw the appearance cues of one subject.

    Args:
        age: True age in years.
        gender: "female" or "male".
        cue_noise: The noise scale σ (0 gives the noise-free values).
        rng: Generator of the subject.

    Returns:
        The subject's appearance cues.

    Raises:
        ValueError: If `gender` is invalid.
    """
    _check_category(gender, GENDERS, "gender")
    z = rng.standard_normal(7)
    sigma = cue_noise
    male = gender == "male"

    apparent = float(np.clip(age + APPARENT_AGE_SD * sigma * z[0], 5.0, 90.0))
    w = wrinkle_level(apparent)
    return AppearanceCues(
        apparent_age=apparent,
        maturity=maturity(apparent),
        wrinkle_level=w,
        crows_feet_strength=0.6 * w * float(np.exp(0.2 * sigma * z[1])),
        forehead_line_contrast=0.35 * forehead_level(apparent) * float(np.exp(0.2 * sigma * z[2])),
        nasolabial_strength=(0.05 + 0.30 * w) * float(np.exp(0.2 * sigma * z[3])),
        skin_texture=(0.015 + 0.05 * w) * float(np.exp(0.2 * sigma * z[4])),
        lip_thickness=1.0 - 0.35 * w,
        jaw_taper=(0.12 if male else 0.24) + 0.03 * sigma * float(z[5]),
        brow_thickness=(0.036 if male else 0.022) * float(np.exp(0.15 * sigma * z[6])),
    )


def sample_dynamics(
    age: int, gender: str, smile_type: str, cue_noise: float, rng: np.random.Generator
) -> DynamicsCues:
    """Draw the smile dynamics of one clip.

    Args:
        age: True age in years.
        gender: "female" or "male".
        smile_type: "spontaneous" or "posed".
        cue_noise: The noise scale σ (0 gives the noise-free values).
        rng: Generator of the clip.

    Returns:
        The clip's dynamics cues.

    Raises:
        ValueError: If `gender` or `smile_type` is invalid.
    """
    _check_category(gender, GENDERS, "gender")
    _check_category(smile_type, SMILE_TYPES, "smile_type")
    z = rng.standard_normal(5)
    sigma = cue_noise
    r = age_ratio(age)
    female = 1.0 if gender == "female" else 0.0
    posed = 1.0 if smile_type == "posed" else 0.0

    amplitude = (0.92 - 0.30 * r + 0.04 * female + 0.03 * posed) * np.exp(AMPLITUDE_NOISE * sigma * z[3])
    return DynamicsCues(
        onset_duration_s=ONSET_BASE_S[smile_type] * (1 + 0.9 * r) * float(np.exp(ONSET_NOISE * sigma * z[0])),
        apex_duration_s=APEX_BASE_S[smile_type] * (1 + 0.5 * r) * float(np.exp(APEX_NOISE * sigma * z[1])),
        offset_duration_s=OFFSET_BASE_S[smile_type] * (1 + 0.7 * r)
        * float(np.exp(OFFSET_NOISE * sigma * z[2])),
        amplitude=float(np.clip(amplitude, 0.2, 1.0)),
        eye_involvement=float(np.clip(EYE_INVOLVEMENT_BASE[smile_type] + 0.1 * sigma * z[4], 0, 1)),
        apex_wobble=0.04 * sigma,
    )


def crows_feet_contrast(
    strength: float, eye_involvement: float, smile: np.ndarray
) -> np.ndarray:
    """Compute the per-frame crow's-feet contrast, strength × (0.15 + 0.85 × e × s(t)).

    Args:
        strength: The subject's `crows_feet_strength`.
        eye_involvement: The clip's eye involvement e in [0, 1].
        smile: Smile intensity per frame, shape (N,), in [0, 1].

    Returns:
        Contrast per frame, shape (N,), as a fraction of the skin brightness.
    """
    return (strength * (0.15 + 0.85 * eye_involvement * smile)).astype(np.float32)


def nasolabial_contrast(strength: float, smile: np.ndarray) -> np.ndarray:
    """Compute the per-frame nasolabial fold contrast, strength × (0.4 + 0.6 s(t)).

    Args:
        strength: The subject's `nasolabial_strength`.
        smile: Smile intensity per frame, shape (N,), in [0, 1].

    Returns:
        Contrast per frame, shape (N,), as a fraction of the skin brightness.
    """
    return (strength * (0.4 + 0.6 * smile)).astype(np.float32)


def frame_informativeness(eye_involvement: float, smile: np.ndarray) -> np.ndarray:
    """Compute how much age information each frame shows, from 0.275 (neutral) to 1.

    Two planted age cues change over a clip: the crow's feet, whose contrast is their
    strength × (0.15 + 0.85 e s(t)), and the nasolabial folds, strength × (0.4 + 0.6 s(t)).
    A frame's informativeness is the mean of these two visibility factors,
        i(t) = ((0.15 + 0.85 e s(t)) + (0.4 + 0.6 s(t))) / 2,
    which does not depend on the subject's age, so it can score where a model looks in time.
    The other appearance cues are constant over a clip; the dynamics cues live in changes
    between frames and have no per-frame value.

    Args:
        eye_involvement: The clip's eye involvement e in [0, 1].
        smile: Smile intensity per frame, shape (N,), in [0, 1].

    Returns:
        Float32 array of shape (N,).
    """
    smile = np.asarray(smile, dtype=float)
    crows_feet = 0.15 + 0.85 * eye_involvement * smile
    nasolabial = 0.4 + 0.6 * smile
    return ((crows_feet + nasolabial) / 2).astype(np.float32)
