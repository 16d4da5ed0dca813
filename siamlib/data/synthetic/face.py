"""Parametric face geometry: 68 iBUG landmarks and wrinkle curves computed from shape values.

Face units: origin at the face centre, x to the image right, y down, half the face width at
the eyes about 0.5. Every drawn feature (eyes, brows, nose, lips, jaw, wrinkles) is built from
the same geometry as the landmarks, so the landmark files match the rendered face exactly.

Expression, per frame, from smile intensity s, eye involvement e and blink closure b:
    lip corners   move out by 22% of the mouth half width × s and up by 0.07 s (times
                  1 ± corner asymmetry), the mouth opens by 0.07 max(s - 0.2, 0) / 0.8
    eyelids       the lower lid rises by 0.25 e s and the upper lid drops by 0.15 e s of the open
                  eye height (Duchenne narrowing), then a blink lowers the upper lid by
                  0.95 b of the remaining aperture
    nose wings    widen by 8% × s
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from siamlib import landmarks as lm
from siamlib.data.synthetic.cues import AppearanceCues
from siamlib.data.synthetic.nuisance import IdentityNuisance

HEAD_TOP_Y = -0.78
EYE_OPEN_RATIO = 0.36
NUM_JAW_POINTS = 17


@dataclass(frozen=True)
class FaceShape:
    """Static geometry of one subject's face, in face units.

    Attributes:
        face_half_width: Half the face width at the top of the jaw contour.
        jaw_taper: Narrowing of the lower face (0 round, larger is more V-shaped).
        jaw_top_y: Height where the jaw contour starts, beside the eyes.
        chin_y: Lowest point of the chin.
        top_y: Top of the head.
        hairline_y: Hairline height at the centre.
        eye_y: Height of the eye centres.
        eye_x: Distance of each eye centre from the face centre line.
        eye_width: Eye width, corner to corner.
        brow_gap: Height of the brows above the eye centres.
        brow_thickness: Brow thickness.
        nose_tip_y: Height of the nose tip.
        nose_half_width: Half the width of the nose base.
        mouth_y: Height of the mouth centre at rest.
        mouth_half_width: Half the mouth width at rest.
        upper_lip: Upper lip height at the centre.
        lower_lip: Lower lip height at the centre.
        corner_asymmetry: Relative lift difference of the lip corners.
    """

    face_half_width: float
    jaw_taper: float
    jaw_top_y: float
    chin_y: float
    top_y: float
    hairline_y: float
    eye_y: float
    eye_x: float
    eye_width: float
    brow_gap: float
    brow_thickness: float
    nose_tip_y: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    upper_lip: float
    lower_lip: float
    corner_asymmetry: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a dictionary."""
        return asdict(self)

    @property
    def eye_line_ratio(self) -> float:
        """Eye height as a fraction of the head height, top to chin."""
        return (self.eye_y - self.top_y) / (self.chin_y - self.top_y)

    @property
    def lower_face_ratio(self) -> float:
        """Mouth-to-chin distance as a fraction of the head height."""
        return (self.chin_y - self.mouth_y) / (self.chin_y - self.top_y)


def build_face_shape(
    cues: AppearanceCues, gender: str, identity: IdentityNuisance
) -> FaceShape:
    """Compute a subject's face geometry from its appearance cues and identity jitter.

    Args:
        cues: The subject's appearance cues (maturity, lip thickness, jaw taper, brows).
        gender: "female" or "male".
        identity: The subject's identity nuisance (shape multipliers, asymmetry).

    Returns:
        The face geometry.
    """
    m = cues.maturity
    male = 1.0 if gender == "male" else 0.0
    eye_y = -0.04 - 0.08 * m
    return FaceShape(
        face_half_width=(0.48 + 0.02 * male) * identity.face_width,
        jaw_taper=cues.jaw_taper,
        jaw_top_y=eye_y + 0.02,
        chin_y=0.62 + 0.10 * m + 0.02 * male,
        top_y=HEAD_TOP_Y,
        hairline_y=-0.50 + identity.hairline_offset,
        eye_y=eye_y,
        eye_x=0.20 * identity.eye_spacing,
        eye_width=(0.20 - 0.03 * m) * identity.eye_size,
        brow_gap=0.10,
        brow_thickness=cues.brow_thickness,
        nose_tip_y=eye_y + (0.28 + 0.05 * m) * identity.nose_length,
        nose_half_width=0.08,
        mouth_y=eye_y + 0.43 + 0.06 * m,
        mouth_half_width=(0.15 + 0.02 * m) * identity.mouth_width,
        upper_lip=0.035 * cues.lip_thickness,
        lower_lip=0.045 * cues.lip_thickness,
        corner_asymmetry=identity.corner_asymmetry,
    )


def jaw_points(shape: FaceShape) -> np.ndarray:
    """Compute the 17 jaw contour points (iBUG 0-16), right ear side to left ear side.

    Args:
        shape: The face geometry.

    Returns:
        Array of shape (17, 2) in face units.
    """
    phi = np.linspace(0.0, np.pi, NUM_JAW_POINTS)
    x = -shape.face_half_width * np.cos(phi) * (1 - shape.jaw_taper * np.sin(phi))
    y = shape.jaw_top_y + (shape.chin_y - shape.jaw_top_y) * np.sin(phi)
    return np.stack([x, y], axis=1)


def head_top_arc(shape: FaceShape, num_points: int = 24) -> np.ndarray:
    """Compute the top of the head from jaw point 16 over to jaw point 0.

    Args:
        shape: The face geometry.
        num_points: Number of points on the arc, ends included.

    Returns:
        Array of shape (num_points, 2) in face units, an upper half ellipse.
    """
    phi = np.linspace(0.0, np.pi, num_points)
    x = shape.face_half_width * np.cos(phi)
    y = shape.jaw_top_y - (shape.jaw_top_y - shape.top_y) * np.sin(phi)
    return np.stack([x, y], axis=1)


def _brow_points(shape: FaceShape) -> np.ndarray:
    """Return the right brow (iBUG 17-21, outer to inner), shape (5, 2)."""
    length = 1.35 * shape.eye_width
    u = np.linspace(0.0, 1.0, 5)
    centre_x = -shape.eye_x - 0.01
    x = centre_x - length / 2 + length * u
    arch = 0.03 * (1 - ((u - 0.55) / 0.55) ** 2)
    y = shape.eye_y - shape.brow_gap - arch
    return np.stack([x, y], axis=1)


def _lip_curves(
    shape: FaceShape, smile: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return mouth half width, right and left corner lift, opening and lip thinning, each (N,)."""
    half_width = shape.mouth_half_width * (1 + 0.22 * smile)
    right_lift = 0.07 * smile * (1 - shape.corner_asymmetry)
    left_lift = 0.07 * smile * (1 + shape.corner_asymmetry)
    opening = 0.07 * np.clip(smile - 0.2, 0.0, None) / 0.8
    thinning = 1 - 0.25 * smile
    return half_width, right_lift, left_lift, opening, thinning


def _mouth_points(shape: FaceShape, smile: np.ndarray) -> np.ndarray:
    """Return the 20 mouth points (iBUG 48-67) per frame, shape (N, 20, 2)."""
    half_width, right_lift, left_lift, opening, thinning = _lip_curves(shape, smile)

    def curve(u: float, part: str) -> np.ndarray:
        lift = right_lift if u < 0 else left_lift
        mid = shape.mouth_y - lift * u**2  # (N,)
        gap = opening * (1 - u**2)
        taper = np.sqrt(max(1 - u**2, 0.0))
        if part == "mid":
            y = mid
        elif part == "inner_up":
            y = mid - gap / 2
        elif part == "inner_low":
            y = mid + gap / 2
        elif part == "outer_up":
            y = mid - gap / 2 - shape.upper_lip * taper * thinning
        else:
            y = mid + gap / 2 + shape.lower_lip * taper * thinning
        return np.stack([u * half_width, y], axis=-1)  # (N, 2)

    third = 1.0 / 3.0
    layout = [
        (-1.0, "mid"), (-2 * third, "outer_up"), (-third, "outer_up"), (0.0, "outer_up"),
        (third, "outer_up"), (2 * third, "outer_up"), (1.0, "mid"),
        (2 * third, "outer_low"), (third, "outer_low"), (0.0, "outer_low"),
        (-third, "outer_low"), (-2 * third, "outer_low"),
        (-0.85, "mid"), (-0.4, "inner_up"), (0.0, "inner_up"), (0.4, "inner_up"),
        (0.85, "mid"), (0.4, "inner_low"), (0.0, "inner_low"), (-0.4, "inner_low"),
    ]
    return np.stack([curve(u, part) for u, part in layout], axis=1)  # (N, 20, 2)


def _eye_points(
    shape: FaceShape, smile: np.ndarray, eye_involvement: float, blink: np.ndarray
) -> np.ndarray:
    """Return the 12 eye points (iBUG 36-47) per frame, shape (N, 12, 2)."""
    num_frames = len(smile)
    width = shape.eye_width
    open_height = EYE_OPEN_RATIO * width
    upper = 0.55 * open_height - 0.15 * eye_involvement * smile * open_height  # (N,)
    lower = 0.45 * open_height - 0.25 * eye_involvement * smile * open_height  # (N,)
    upper = upper - blink * (upper + lower) * 0.95

    points = np.zeros((num_frames, 12, 2))
    for side, centre_x in enumerate((-shape.eye_x, shape.eye_x)):
        offsets = 6 * side
        # Right eye runs outer to inner (x increasing), left eye inner to outer, so both
        # eyes use the same x pattern: corner, upper third, upper third, corner, lower, lower.
        xs = centre_x + width * np.array([-0.5, -1 / 6, 1 / 6, 0.5, 1 / 6, -1 / 6])
        ys = [
            np.full(num_frames, shape.eye_y), shape.eye_y - upper, shape.eye_y - upper,
            np.full(num_frames, shape.eye_y), shape.eye_y + lower, shape.eye_y + lower,
        ]
        for j in range(6):
            points[:, offsets + j, 0] = xs[j]
            points[:, offsets + j, 1] = ys[j]
    return points


def face_landmarks(
    shape: FaceShape, smile: np.ndarray, eye_involvement: float, blink: np.ndarray
) -> np.ndarray:
    """Compute the 68 iBUG landmarks of every frame in face units.

    Args:
        shape: The face geometry.
        smile: Smile intensity per frame, shape (N,), in [0, 1].
        eye_involvement: Eyelid narrowing weight e in [0, 1] for the clip.
        blink: Blink closure per frame, shape (N,), in [0, 1].

    Returns:
        Float64 array of shape (N, 68, 2) in face units.

    Raises:
        ValueError: If `smile` and `blink` differ in shape or are not 1-D.
    """
    smile = np.asarray(smile, dtype=float)
    blink = np.asarray(blink, dtype=float)
    if smile.ndim != 1 or blink.shape != smile.shape:
        raise ValueError(
            f"smile and blink must be 1-D arrays of equal length, got {smile.shape}, {blink.shape}"
        )
    num_frames = len(smile)
    points = np.zeros((num_frames, lm.NUM_LANDMARKS, 2))

    points[:, list(lm.JAW)] = jaw_points(shape)

    right_brow = _brow_points(shape)
    left_brow = right_brow[::-1] * np.array([-1.0, 1.0])
    points[:, list(lm.RIGHT_BROW)] = right_brow
    points[:, list(lm.LEFT_BROW)] = left_brow

    bridge_y = np.linspace(shape.eye_y - 0.01, shape.nose_tip_y, 4)
    points[:, list(lm.NOSE_BRIDGE), 1] = bridge_y
    wing = shape.nose_half_width * (1 + 0.08 * smile)  # (N,)
    base_x = np.outer(wing, [-1.0, -0.5, 0.0, 0.5, 1.0])  # (N, 5)
    base_y = shape.nose_tip_y + np.array([0.02, 0.035, 0.045, 0.035, 0.02])
    points[:, list(lm.NOSE_BASE), 0] = base_x
    points[:, list(lm.NOSE_BASE), 1] = base_y

    points[:, list(lm.RIGHT_EYE + lm.LEFT_EYE)] = _eye_points(shape, smile, eye_involvement, blink)
    points[:, list(lm.MOUTH)] = _mouth_points(shape, smile)
    return points


def quadratic_curve(
    start: np.ndarray, control: np.ndarray, end: np.ndarray, num_points: int = 8
) -> np.ndarray:
    """Sample a quadratic Bezier curve.

    Args:
        start: Start point, shape (2,).
        control: Control point, shape (2,).
        end: End point, shape (2,).
        num_points: Number of samples, ends included.

    Returns:
        Array of shape (num_points, 2).
    """
    t = np.linspace(0.0, 1.0, num_points)[:, None]  # (P, 1)
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def crows_feet_lines(points: np.ndarray) -> list[np.ndarray]:
    """Compute the crow's-feet lines of one frame: three per eye, fanning out from the corner.

    Args:
        points: Landmarks of the frame in face units, shape (68, 2).

    Returns:
        Six arrays of shape (2, 2), each a line from its start to its end point.
    """
    lines = []
    for corner, direction in ((lm.RIGHT_EYE_OUTER, -1.0), (lm.LEFT_EYE_OUTER, 1.0)):
        origin = points[corner] + np.array([0.025 * direction, 0.0])
        for angle_deg, length in ((-28.0, 0.07), (0.0, 0.085), (28.0, 0.07)):
            angle = np.deg2rad(angle_deg)
            step = length * np.array([direction * np.cos(angle), np.sin(angle)])
            lines.append(np.stack([origin, origin + step]))
    return lines


def nasolabial_curves(points: np.ndarray) -> list[np.ndarray]:
    """Compute the two nasolabial folds of one frame, nose wing to beside the lip corner.

    Args:
        points: Landmarks of the frame in face units, shape (68, 2).

    Returns:
        Two arrays of shape (8, 2), the right then the left fold.
    """
    curves = []
    sides = ((31, lm.RIGHT_LIP_CORNER, -1.0), (35, lm.LEFT_LIP_CORNER, 1.0))
    for wing, corner, direction in sides:
        start = points[wing] + np.array([0.03 * direction, -0.02])
        end = points[corner] + np.array([0.035 * direction, 0.03])
        control = (start + end) / 2 + np.array([0.04 * direction, 0.0])
        curves.append(quadratic_curve(start, control, end))
    return curves


def forehead_lines(shape: FaceShape, num_lines: int = 3) -> list[np.ndarray]:
    """Compute horizontal forehead lines between the brows and the hairline.

    Args:
        shape: The face geometry.
        num_lines: Number of lines.

    Returns:
        `num_lines` arrays of shape (9, 2), each a slightly arched line.
    """
    brow_top = shape.eye_y - shape.brow_gap - 0.03 - 0.04
    hairline = shape.hairline_y + 0.04
    x = np.linspace(-0.22, 0.22, 9)
    lines = []
    for k in range(num_lines):
        y0 = brow_top + (hairline - brow_top) * (k + 1) / (num_lines + 1)
        y = y0 - 0.015 * (1 - (x / 0.22) ** 2)
        lines.append(np.stack([x, y], axis=1))
    return lines
