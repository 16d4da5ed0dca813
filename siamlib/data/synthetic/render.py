"""Draw synthetic face frames with OpenCV (anti-aliased) and numpy.

Each frame is drawn upright in a face canvas of the frame's size, where a face-unit point p sits
at pixel c + k p (c = (S - 1) / 2 the canvas centre, k = `FACE_SCALE` × S pixels per face
unit). The canvas and its head mask are then warped into the frame with the head pose (a
similarity transform) and composited over the background, and the landmarks go through the
same transform, so they match the drawn face. Pixel coordinates follow OpenCV: (0, 0) is the
centre of the top-left pixel.

Draw order: skin with the subject's texture, neck, hair, forehead lines, brows and jaw shadow
are static per clip. Each frame adds crow's feet, nasolabial folds, eyes, nose base and mouth.
The lighting gradient and the sensor noise are applied after compositing.
"""

from __future__ import annotations

import cv2
import numpy as np

from siamlib import landmarks as lm
from siamlib.data.synthetic import face
from siamlib.data.synthetic.cues import AppearanceCues
from siamlib.data.synthetic.face import FaceShape
from siamlib.data.synthetic.nuisance import ClipNuisance, IdentityNuisance

FACE_SCALE = 0.54
SUBPIXEL_BITS = 4
MIN_VISIBLE_CONTRAST = 0.005
NOISE_BANK_SIZE = 8
SCLERA_RGB = (222.0, 216.0, 210.0)
TEETH_RGB = (228.0, 222.0, 205.0)
LID_RGB = (45.0, 32.0, 30.0)
LIP_LINE_RGB = (95.0, 42.0, 42.0)
PUPIL_RGB = (15.0, 12.0, 12.0)
NECK_SHADE = 0.82
LIP_TINT = np.array([0.86, 0.56, 0.55])

_AA = cv2.LINE_AA
Colour = tuple[float, float, float] | int


def _fixed(points: np.ndarray) -> np.ndarray:
    """Convert pixel coordinates to OpenCV fixed point with `SUBPIXEL_BITS` fraction bits."""
    return np.round(np.asarray(points) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _colour(rgb: np.ndarray | tuple[float, ...]) -> tuple[float, float, float]:
    values = np.clip(np.asarray(rgb, dtype=float), 0.0, 255.0)
    return (float(values[0]), float(values[1]), float(values[2]))


def pose_matrix(pose: np.ndarray, frame_size: int) -> np.ndarray:
    """Build the 2x3 similarity transform from canvas to frame pixels for one head pose.

    Args:
        pose: (x translation px, y translation px, scale, roll degrees), shape (4,).
        frame_size: Frame width and height S in pixels.

    Returns:
        Float64 array of shape (2, 3): scale and rotation about the canvas centre, then the
        translation.
    """
    tx, ty, scale, roll_deg = (float(v) for v in pose)
    angle = np.deg2rad(roll_deg)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.full(2, (frame_size - 1) / 2.0)
    shift = centre + np.array([tx, ty]) - linear @ centre
    return np.hstack([linear, shift[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine transform to points of shape (..., 2)."""
    return points @ matrix[:, :2].T + matrix[:, 2]


class FaceRenderer:
    """Renderer of one clip: static layers built once, then one call per frame.

    Args:
        shape: The subject's face geometry.
        appearance: The subject's appearance cues (texture, forehead lines).
        identity: The subject's colours and texture seed.
        clip: The clip's background, lighting and sensor noise.
        frame_size: Frame width and height S in pixels.
    """

    def __init__(
        self,
        shape: FaceShape,
        appearance: AppearanceCues,
        identity: IdentityNuisance,
        clip: ClipNuisance,
        frame_size: int,
    ) -> None:
        self.shape = shape
        self.appearance = appearance
        self.identity = identity
        self.clip = clip
        self.size = frame_size
        self.scale = FACE_SCALE * frame_size
        self.centre = (frame_size - 1) / 2.0
        self.thickness = max(1, round(frame_size / 128))
        self.skin = np.asarray(identity.skin_rgb, dtype=float)

        self._noise_bank: np.ndarray | None = None
        self.base = self._draw_static_face()
        self.mask = self._draw_head_mask()
        self.light = self._lighting_field()
        self.lit_background = self._draw_background() * self.light  # (S, S, 3)

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Map face-unit points of shape (..., 2) to canvas pixels."""
        return self.centre + self.scale * np.asarray(points)

    def _shade(self, contrast: float) -> tuple[float, float, float]:
        return _colour(self.skin * (1.0 - contrast))

    def _polyline(
        self, canvas: np.ndarray, points: np.ndarray, colour: Colour, closed: bool = False
    ) -> None:
        self._polylines(canvas, [points], colour, closed)

    def _polylines(
        self, canvas: np.ndarray, curves: list[np.ndarray], colour: Colour, closed: bool = False
    ) -> None:
        fixed = [_fixed(self.to_canvas(points)) for points in curves]
        cv2.polylines(canvas, fixed, closed, colour, self.thickness, _AA, SUBPIXEL_BITS)

    def _fill(self, canvas: np.ndarray, points: np.ndarray, colour: Colour) -> None:
        cv2.fillPoly(canvas, [_fixed(self.to_canvas(points))], colour, _AA, SUBPIXEL_BITS)

    def _neck(self) -> np.ndarray:
        jaw = face.jaw_points(self.shape)
        bottom = (self.size / self.scale) / 2 + 0.1
        lower_jaw = jaw[5:12]
        return np.vstack([
            lower_jaw,
            [[0.9 * jaw[11, 0], bottom], [0.9 * jaw[5, 0], bottom]],
        ])

    def _head_outline(self) -> np.ndarray:
        return np.vstack([face.jaw_points(self.shape), face.head_top_arc(self.shape)[1:-1]])

    def _hair(self) -> np.ndarray:
        arc = face.head_top_arc(self.shape, num_points=32)[::-1]  # left ear side to right
        half_width = self.shape.face_half_width
        hairline = self.shape.hairline_y + 0.15 * (arc[:, 0] / half_width) ** 4
        lower_edge = np.stack([arc[:, 0], np.maximum(hairline, arc[:, 1])], axis=1)
        return np.vstack([arc, lower_edge[::-1]])

    def _draw_static_face(self) -> np.ndarray:
        size = self.size
        rng = np.random.default_rng(self.identity.texture_seed)
        texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32),
                                   (0, 0), 0.6)
        texture /= max(float(texture.std()), 1e-6)
        skin = self.skin[None, None, :] * (1 + self.appearance.skin_texture * texture[..., None])
        canvas = np.clip(np.round(skin), 0, 255).astype(np.uint8)  # (S, S, 3)

        self._fill(canvas, self._neck(), _colour(self.skin * NECK_SHADE))
        self._fill(canvas, self._hair(), _colour(self.identity.hair_rgb))

        forehead = self.appearance.forehead_line_contrast
        if forehead > MIN_VISIBLE_CONTRAST:
            self._polylines(canvas, face.forehead_lines(self.shape), self._shade(forehead))

        points = face.face_landmarks(self.shape, np.zeros(1), 0.0, np.zeros(1))[0]  # (68, 2)
        half = self.shape.brow_thickness / 2
        profile = np.array([0.6, 1.0, 1.0, 0.9, 0.7])[:, None]
        brow_colour = _colour(np.asarray(self.identity.hair_rgb) * 0.9)
        for brow in (points[list(lm.RIGHT_BROW)], points[list(lm.LEFT_BROW)][::-1]):
            upper = brow - np.array([0.0, 1.0]) * half * profile
            lower = brow + np.array([0.0, 1.0]) * half * profile
            self._fill(canvas, np.vstack([upper, lower[::-1]]), brow_colour)

        self._polyline(canvas, points[2:15], self._shade(0.22))
        for direction in (-1.0, 1.0):
            side = np.array([
                [direction * 0.045, self.shape.eye_y + 0.06],
                [direction * 0.06, self.shape.nose_tip_y - 0.03],
            ])
            self._polyline(canvas, side, self._shade(0.12))
        return canvas

    def _draw_head_mask(self) -> np.ndarray:
        mask = np.zeros((self.size, self.size), np.uint8)  # (S, S)
        self._fill(mask, self._head_outline(), 255)
        self._fill(mask, self._neck(), 255)
        return mask

    def _draw_background(self) -> np.ndarray:
        rng = np.random.default_rng([self.clip.scene_seed, 0])
        blobs = cv2.resize(rng.standard_normal((4, 4)).astype(np.float32),
                           (self.size, self.size), interpolation=cv2.INTER_CUBIC)
        colour = np.asarray(self.clip.background_rgb, dtype=np.float32)
        variation = self.clip.background_variation * blobs[..., None]  # (S, S, 1)
        return colour[None, None, :] + variation  # (S, S, 3)

    def _lighting_field(self) -> np.ndarray:
        coords = (np.arange(self.size, dtype=np.float32) - self.centre) / (self.size / 2)
        x, y = np.meshgrid(coords, coords)
        ramp = x * np.cos(self.clip.light_angle) + y * np.sin(self.clip.light_angle)
        return (1 + self.clip.light_strength * ramp)[..., None].astype(np.float32)  # (S, S, 1)

    def _noise_frame(self, rng: np.random.Generator) -> np.ndarray:
        """Return Gaussian sensor noise for one frame.

        Drawing fresh normals for every frame costs about as much as the rest of the
        compositing. So each clip draws a small bank of noise frames once, and every frame
        takes a random one of them, randomly flipped on both axes.
        """
        if self._noise_bank is None:
            shape = (NOISE_BANK_SIZE, self.size, self.size, 3)
            bank_rng = np.random.default_rng([self.clip.scene_seed, 1])
            self._noise_bank = self.clip.sensor_noise * bank_rng.standard_normal(shape, np.float32)
        index, flip_y, flip_x = rng.integers(0, [NOISE_BANK_SIZE, 2, 2])
        noise = self._noise_bank[index]  # (S, S, 3)
        if flip_y:
            noise = noise[::-1]
        if flip_x:
            noise = noise[:, ::-1]
        return noise

    def _draw_eye(self, canvas: np.ndarray, eye: np.ndarray) -> None:
        """Draw one eye from its six points in canvas pixels.

        The points run corner, upper lid, upper lid, corner, lower lid, lower lid, with x
        increasing from the first corner to the second along both lids.
        """
        cv2.fillPoly(canvas, [_fixed(eye)], SCLERA_RGB, _AA, SUBPIXEL_BITS)

        upper = eye[[0, 1, 2, 3]]
        lower = eye[[0, 5, 4, 3]]
        centre = np.array([(eye[0, 0] + eye[3, 0]) / 2, (eye[0, 1] + eye[3, 1]) / 2])
        width = eye[3, 0] - eye[0, 0]
        angles = np.linspace(0.0, 2 * np.pi, 20, endpoint=False)
        for radius, colour in ((0.28 * width, _colour(self.identity.iris_rgb)),
                               (0.12 * width, PUPIL_RGB)):
            x = np.clip(centre[0] + radius * np.cos(angles), eye[0, 0], eye[3, 0])
            y = centre[1] + radius * np.sin(angles)
            y = np.clip(y, np.interp(x, upper[:, 0], upper[:, 1]),
                        np.interp(x, lower[:, 0], lower[:, 1]))
            cv2.fillPoly(canvas, [_fixed(np.stack([x, y], axis=1))], colour, _AA, SUBPIXEL_BITS)

        cv2.polylines(canvas, [_fixed(upper)], False, LID_RGB, self.thickness, _AA, SUBPIXEL_BITS)
        cv2.polylines(canvas, [_fixed(lower)], False, self._shade(0.25), self.thickness, _AA,
                      SUBPIXEL_BITS)

    def _draw_mouth(self, canvas: np.ndarray, mouth: np.ndarray) -> None:
        """Draw the lips and teeth from the 20 mouth points in canvas pixels."""
        outer, inner = mouth[:12], mouth[12:]
        cv2.fillPoly(canvas, [_fixed(outer)], _colour(self.skin * LIP_TINT), _AA, SUBPIXEL_BITS)
        opening = float(np.max(inner[5:8, 1] - inner[[3, 2, 1], 1]))
        if opening > 0.5:
            cv2.fillPoly(canvas, [_fixed(inner)], TEETH_RGB, _AA, SUBPIXEL_BITS)
        cv2.polylines(canvas, [_fixed(inner[[0, 1, 2, 3, 4]])], False, LIP_LINE_RGB,
                      self.thickness, _AA, SUBPIXEL_BITS)
        if opening > 0.5:
            cv2.polylines(canvas, [_fixed(inner[[4, 5, 6, 7, 0]])], False, LIP_LINE_RGB,
                          self.thickness, _AA, SUBPIXEL_BITS)

    def draw_face(
        self, points: np.ndarray, crows_feet: float, nasolabial: float
    ) -> np.ndarray:
        """Draw the upright face of one frame into a copy of the static canvas.

        Args:
            points: Landmarks of the frame in face units, shape (68, 2).
            crows_feet: Crow's-feet contrast of the frame (fraction of skin brightness).
            nasolabial: Nasolabial fold contrast of the frame.

        Returns:
            Uint8 RGB canvas of shape (S, S, 3).
        """
        canvas = self.base.copy()
        if crows_feet > MIN_VISIBLE_CONTRAST:
            self._polylines(canvas, face.crows_feet_lines(points), self._shade(crows_feet))
        if nasolabial > MIN_VISIBLE_CONTRAST:
            self._polylines(canvas, face.nasolabial_curves(points), self._shade(nasolabial))

        pixels = self.to_canvas(points)  # (68, 2)
        self._draw_eye(canvas, pixels[list(lm.RIGHT_EYE)])
        self._draw_eye(canvas, pixels[list(lm.LEFT_EYE)])

        self._polyline(canvas, points[list(lm.NOSE_BASE)], self._shade(0.32))
        nostril_size = (max(0.02 * self.scale, 0.6), max(0.01 * self.scale, 0.4))
        for a, b in ((31, 32), (34, 35)):
            centre = (pixels[a] + pixels[b]) / 2 - np.array([0.0, 0.005 * self.scale])
            axes = _fixed(nostril_size)
            cv2.ellipse(canvas, tuple(_fixed(centre)), tuple(axes), 0.0, 0.0, 360.0,
                        self._shade(0.55), -1, _AA, SUBPIXEL_BITS)

        self._draw_mouth(canvas, pixels[list(lm.MOUTH)])
        return canvas

    def render_frame(
        self,
        points: np.ndarray,
        pose: np.ndarray,
        crows_feet: float,
        nasolabial: float,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one frame and its landmarks in frame pixels.

        Args:
            points: Landmarks of the frame in face units, shape (68, 2).
            pose: Head pose (x px, y px, scale, roll degrees), shape (4,).
            crows_feet: Crow's-feet contrast of the frame.
            nasolabial: Nasolabial fold contrast of the frame.
            rng: Generator for the sensor noise.

        Returns:
            (frame, landmarks): uint8 RGB frame of shape (S, S, 3) and float32 landmarks of
            shape (68, 2) in frame pixels.
        """
        canvas = self.draw_face(points, crows_feet, nasolabial)
        matrix = pose_matrix(pose, self.size)
        dsize = (self.size, self.size)
        warped = cv2.warpAffine(canvas, matrix, dsize, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(self.mask, matrix, dsize, flags=cv2.INTER_LINEAR)

        weight = alpha.astype(np.float32)[..., None] * np.float32(1 / 255)  # (S, S, 1)
        lit_face = warped * self.light  # (S, S, 3)
        frame = self.lit_background + (lit_face - self.lit_background) * weight
        if self.clip.sensor_noise > 0:
            frame += self._noise_frame(rng)
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)

        landmarks = transform_points(self.to_canvas(points), matrix).astype(np.float32)
        return frame, landmarks
