"""Settings of the synthetic smile-video generator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from siamlib.config import config_from_mapping

MAX_SUBJECTS = 999  # Video names carry the subject as three digits.
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow",
)


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of a synthetic dataset.

    Attributes:
        num_subjects: Number of subjects. Ages, genders, clips per subject and smile types
            follow the UvA-NEMO proportions scaled to this number (about 3.1 clips a subject).
        fps: Frame rate of the videos in frames per second.
        frame_size: Width and height of the square frames in pixels (even, for yuv420p).
        min_duration_s: Minimum clip duration in seconds.
        max_duration_s: Maximum clip duration in seconds.
        cue_noise: Scale of the random variation of the planted cues around their age, gender
            and smile-type values (0 turns it off, 1 is the documented default spread).
        nuisance: Scale of the nuisance factors: identity shape jitter, skin tone, lighting
            gradient, background, head motion, blinks and sensor noise (0 turns them off).
        crf: x264 constant rate factor (0 lossless luma, 51 worst); lower is higher quality.
        preset: x264 speed preset.
    """

    num_subjects: int = 60
    fps: int = 25
    frame_size: int = 128
    min_duration_s: float = 3.0
    max_duration_s: float = 5.0
    cue_noise: float = 1.0
    nuisance: float = 1.0
    crf: int = 18
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if not isinstance(self.num_subjects, int) or not 1 <= self.num_subjects <= MAX_SUBJECTS:
            raise ValueError(
                f"num_subjects must be an integer in [1, {MAX_SUBJECTS}], got {self.num_subjects!r}"
            )
        if not isinstance(self.fps, int) or self.fps < 1:
            raise ValueError(f"fps must be a positive integer, got {self.fps!r}")
        if not isinstance(self.frame_size, int) or self.frame_size < 32 or self.frame_size % 2:
            raise ValueError(f"frame_size must be an even integer >= 32, got {self.frame_size!r}")
        if not 1.0 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError(
                "min_duration_s and max_duration_s must satisfy 1 <= min <= max, got "
                f"min_duration_s={self.min_duration_s!r}, max_duration_s={self.max_duration_s!r}"
            )
        if self.cue_noise < 0:
            raise ValueError(f"cue_noise must be >= 0, got {self.cue_noise!r}")
        if self.nuisance < 0:
            raise ValueError(f"nuisance must be >= 0, got {self.nuisance!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be an integer in [0, 51], got {self.crf!r}")
        if self.preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {X264_PRESETS}, got {self.preset!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SyntheticConfig:
        """Build a config from a mapping, with defaults for absent keys.

        Args:
            values: Field names and values, e.g. a section of a YAML parameter file.

        Returns:
            The config.

        Raises:
            ValueError: If a key is not a field name or a value is invalid.
        """
        return config_from_mapping(cls, values)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dictionary."""
        return dataclasses.asdict(self)
