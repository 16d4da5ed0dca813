"""Everything about one synthetic clip: its subject, cues, timeline, landmarks and frames.

Random streams are keyed, so any clip can be made on its own, in any process, with the same
result. A subject's traits come from `default_rng([seed, 1, subject])`. A clip's cues, timing
and nuisance come from `default_rng([seed, 2, subject, type, take])` and its sensor noise
choices from `default_rng([seed, 3, subject, type, take])`, with type 0 spontaneous and 1
posed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from siamlib.data.synthetic import cues as cue_model
from siamlib.data.synthetic import face, nuisance
from siamlib.data.synthetic.config import SyntheticConfig
from siamlib.data.synthetic.dynamics import (
    SmileTimeline, fit_timeline, smile_intensity, smile_phase,
)
from siamlib.data.synthetic.regions import MASK_SIZE, REGION_NAMES, region_masks
from siamlib.data.synthetic.render import FaceRenderer, pose_matrix, transform_points
from siamlib.video.align import DEFAULT_EYE_DISTANCE, DEFAULT_EYE_Y

_TYPE_CODES = {"spontaneous": 0, "posed": 1}


@dataclass(frozen=True)
class SubjectSpec:
    """A synthetic subject: identity, age, gender and the traits every clip shares."""

    subject: int
    age: int
    gender: str
    appearance: cue_model.AppearanceCues
    identity: nuisance.IdentityNuisance
    shape: face.FaceShape


def sample_subject(
    subject: int, age: int, gender: str, config: SyntheticConfig, seed: int
) -> SubjectSpec:
    """Draw the traits of one subject.

    Args:
        subject: Subject number.
        age: True age in years.
        gender: "female" or "male".
        config: Generator settings (cue_noise, nuisance).
        seed: Dataset seed.

    Returns:
        The subject with its appearance cues, identity nuisance and face geometry.
    """
    rng = np.random.default_rng([seed, 1, subject])
    appearance = cue_model.sample_appearance(age, gender, config.cue_noise, rng)
    identity = nuisance.sample_identity(config.nuisance, rng)
    shape = face.build_face_shape(appearance, gender, identity)
    return SubjectSpec(subject, age, gender, appearance, identity, shape)


@dataclass
class SyntheticClip:
    """One clip's ground truth and the means to render its frames.

    Attributes:
        video: File name, e.g. "001_spontaneous_smile_1.mp4".
        subject: The clip's subject.
        smile_type: "spontaneous" or "posed".
        dynamics: The drawn smile dynamics.
        timeline: The phases as realised in the clip.
        clip_nuisance: The clip's scene, lighting, head motion, blinks and sensor noise.
        smile: Smile intensity per frame, shape (N,).
        phase: Smile phase per frame (`dynamics.PHASE_CODES`), int8 shape (N,).
        informativeness: Age information shown per frame (`cues.frame_informativeness`),
            shape (N,).
        blink: Blink closure per frame, shape (N,).
        pose: Head pose per frame (x px, y px, scale, roll degrees), shape (N, 4).
        crows_feet: Crow's-feet contrast per frame, shape (N,).
        nasolabial: Nasolabial fold contrast per frame, shape (N,).
        face_points: Landmarks in face units, shape (N, 68, 2).
        landmarks: Float32 landmarks in frame pixels, shape (N, 68, 2).
        renderer: The clip's renderer, holding its static layers.
        noise_seed: Seed of the per-frame sensor noise choices.
    """

    video: str
    subject: SubjectSpec
    smile_type: str
    dynamics: cue_model.DynamicsCues
    timeline: SmileTimeline
    clip_nuisance: nuisance.ClipNuisance
    smile: np.ndarray
    phase: np.ndarray
    informativeness: np.ndarray
    blink: np.ndarray
    pose: np.ndarray
    crows_feet: np.ndarray
    nasolabial: np.ndarray
    face_points: np.ndarray
    landmarks: np.ndarray
    renderer: FaceRenderer
    noise_seed: list[int]

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return len(self.smile)

    def frames(self) -> Iterator[np.ndarray]:
        """Render the frames one at a time.

        Yields:
            Uint8 RGB frames of shape (S, S, 3), in order. Every call restarts the sensor
            noise stream, so repeated calls yield identical frames.
        """
        rng = np.random.default_rng(self.noise_seed)
        for i in range(self.num_frames):
            frame, _ = self.renderer.render_frame(
                self.face_points[i], self.pose[i], float(self.crows_feet[i]),
                float(self.nasolabial[i]), rng,
            )
            yield frame

    def region_masks(self) -> np.ndarray:
        """Return the cue region masks in the aligned face frame, uint8 (R, M, M).

        The regions (`regions.REGION_NAMES`) are united over the neutral first frame and
        the apex frame; see `siamlib.data.synthetic.regions`.
        """
        apex = int(np.argmax(self.smile))
        return region_masks(self.subject.shape, [self.face_points[0], self.face_points[apex]])

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Return the per-frame signals, region masks and per-clip cue values of the clip."""
        arrays: dict[str, np.ndarray] = {
            "smile_intensity": self.smile,
            "smile_phase": self.phase,
            "informativeness": self.informativeness,
            "blink": self.blink,
            "crows_feet_contrast": self.crows_feet,
            "nasolabial_contrast": self.nasolabial,
            "head_pose": self.pose,
            "region_masks": self.region_masks(),
            "region_names": np.array(REGION_NAMES),
            "mask_size": np.asarray(MASK_SIZE),
            "mask_eye_distance": np.asarray(DEFAULT_EYE_DISTANCE),
            "mask_eye_y": np.asarray(DEFAULT_EYE_Y),
        }
        for name, value in self.cue_values().items():
            arrays[name] = np.asarray(value)
        return arrays

    def cue_values(self) -> dict[str, float | int]:
        """Return the clip's latent cue values, one scalar each (the columns of cues.csv)."""
        shape = self.subject.shape
        jaw = face.jaw_points(shape)
        timeline = self.timeline
        amplitude = self.dynamics.amplitude
        apex_frame = int(np.argmax(self.smile))
        values: dict[str, float | int] = dict(self.subject.appearance.as_dict())
        values.update({
            "eye_line_ratio": shape.eye_line_ratio,
            "lower_face_ratio": shape.lower_face_ratio,
            "eye_width": shape.eye_width,
            "jaw_width_ratio": float((jaw[12, 0] - jaw[4, 0]) / (jaw[16, 0] - jaw[0, 0])),
            "onset_duration_s": timeline.onset_duration_s,
            "apex_duration_s": timeline.apex_duration_s,
            "offset_duration_s": timeline.offset_duration_s,
            "onset_start_s": timeline.onset_start_s,
            "amplitude": amplitude,
            "onset_speed": amplitude / timeline.onset_duration_s,
            "offset_speed": amplitude / timeline.offset_duration_s,
            "eye_involvement": self.dynamics.eye_involvement,
            "apex_wobble": self.dynamics.apex_wobble,
            "timeline_compression": timeline.compression,
            "apex_frame": apex_frame,
            "crows_feet_apex_contrast": float(self.crows_feet[apex_frame]),
            "nasolabial_apex_contrast": float(self.nasolabial[apex_frame]),
            "duration_s": timeline.duration_s,
            "num_frames": self.num_frames,
            "num_blinks": len(self.clip_nuisance.blink_times_s),
            "light_strength": self.clip_nuisance.light_strength,
            "head_scale": self.clip_nuisance.head_scale,
        })
        return values


def synthesize_clip(
    video: str,
    subject: SubjectSpec,
    smile_type: str,
    take: int,
    config: SyntheticConfig,
    seed: int,
) -> SyntheticClip:
    """Compute one clip's dynamics, nuisance, landmarks and renderer.

    Args:
        video: File name of the clip.
        subject: The clip's subject.
        smile_type: "spontaneous" or "posed".
        take: Take number k of the clip for this subject and smile type.
        config: Generator settings.
        seed: Dataset seed.

    Returns:
        The clip; frames are rendered lazily by `SyntheticClip.frames`.

    Raises:
        ValueError: If `smile_type` is invalid.
    """
    if smile_type not in _TYPE_CODES:
        raise ValueError(f"smile_type must be spontaneous or posed, got {smile_type!r}")
    key = [seed, 2, subject.subject, _TYPE_CODES[smile_type], take]
    rng = np.random.default_rng(key)

    dynamics = cue_model.sample_dynamics(
        subject.age, subject.gender, smile_type, config.cue_noise, rng
    )
    timeline = fit_timeline(dynamics, config.min_duration_s, config.max_duration_s, config.fps, rng)
    wobble_sign = 1.0 if rng.random() < 0.5 else -1.0
    smile = smile_intensity(timeline, dynamics.amplitude, dynamics.apex_wobble, config.fps,
                            wobble_sign)
    phase = smile_phase(timeline, config.fps)
    informativeness = cue_model.frame_informativeness(dynamics.eye_involvement, smile)
    clip_nuisance = nuisance.sample_clip_nuisance(config.nuisance, timeline.duration_s, rng)

    times = np.arange(timeline.num_frames) / config.fps
    blink = nuisance.blink_closure(clip_nuisance.blink_times_s, times)
    pose = nuisance.head_pose(clip_nuisance, times, config.frame_size)
    appearance = subject.appearance
    crows_feet = cue_model.crows_feet_contrast(
        appearance.crows_feet_strength, dynamics.eye_involvement, smile
    )
    nasolabial = cue_model.nasolabial_contrast(appearance.nasolabial_strength, smile)
    face_points = face.face_landmarks(subject.shape, smile, dynamics.eye_involvement, blink)

    renderer = FaceRenderer(subject.shape, appearance, subject.identity, clip_nuisance,
                            config.frame_size)
    landmarks = np.stack([
        transform_points(renderer.to_canvas(points), pose_matrix(p, config.frame_size))
        for points, p in zip(face_points, pose)
    ]).astype(np.float32)  # (N, 68, 2)

    return SyntheticClip(
        video=video,
        subject=subject,
        smile_type=smile_type,
        dynamics=dynamics,
        timeline=timeline,
        clip_nuisance=clip_nuisance,
        smile=smile,
        phase=phase,
        informativeness=informativeness,
        blink=blink,
        pose=pose,
        crows_feet=crows_feet,
        nasolabial=nasolabial,
        face_points=face_points,
        landmarks=landmarks,
        renderer=renderer,
        noise_seed=[seed, 3, subject.subject, _TYPE_CODES[smile_type], take],
    )
