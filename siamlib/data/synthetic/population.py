"""Subjects and clips of a synthetic dataset, in the proportions of UvA-NEMO.

UvA-NEMO Smile Database, counts as published with the database: 400 subjects aged 8 to 76,
185 female and 215 male. It has 1,240 videos, of which 597 are spontaneous and 643 posed.
Subjects have 1 to 4 clips (179 subjects with 4, 111 with 3, 81 with 2, 29 with 1), and 325
subjects have both smile types. Subjects per age range: 8-9: 51, 10-19: 103, 20-29: 68,
30-39: 55, 40-49: 79, 50-59: 25, 60-69: 13, 70-76: 6.

Counts are scaled to `num_subjects` by largest-remainder rounding, so a small dataset keeps
the proportions as closely as whole subjects allow. Ages are uniform within each range.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# (first age, last age, subjects) per range.
AGE_RANGES = (
    (8, 9, 51), (10, 19, 103), (20, 29, 68), (30, 39, 55),
    (40, 49, 79), (50, 59, 25), (60, 69, 13), (70, 76, 6),
)
FEMALE_SUBJECTS = 185
MALE_SUBJECTS = 215
# Subjects by number of clips.
CLIPS_PER_SUBJECT = {4: 179, 3: 111, 2: 81, 1: 29}
SUBJECTS_WITH_SEVERAL_CLIPS = 179 + 111 + 81
SUBJECTS_WITH_BOTH_TYPES = 325
SPONTANEOUS_VIDEOS = 597
TOTAL_VIDEOS = 1240

SUBJECT_COLUMNS = ["subject", "age", "gender"]
VIDEO_COLUMNS = ["video", "subject", "age", "gender", "smile_type", "take"]


def allocate(total: int, weights: list[float] | np.ndarray) -> np.ndarray:
    """Split `total` into whole counts proportional to `weights` (largest remainder).

    Args:
        total: The number to split, >= 0.
        weights: Non-negative weights, not all zero.

    Returns:
        Integer array of counts summing to `total`. Ties in the remainders go to the earlier
        weight.

    Raises:
        ValueError: If `total` is negative or the weights are negative or all zero.
    """
    weights = np.asarray(weights, dtype=float)
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {weights}")
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    remainders = exact - counts
    order = np.argsort(-remainders, kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def video_name(subject: int, smile_type: str, take: int) -> str:
    """Return the UvA-NEMO file name of a clip, e.g. "001_deliberate_smile_2.mp4"."""
    word = "deliberate" if smile_type == "posed" else "spontaneous"
    return f"{subject:03d}_{word}_smile_{take}.mp4"


def _smile_types(num_clips: int, rng: np.random.Generator) -> list[str]:
    """Draw the smile type of each clip of one subject."""
    # Subjects with both types split their clips evenly on average and hold about 86% of the
    # clips, so single-type subjects need about 36% spontaneous to give UvA-NEMO's 48% overall.
    single_type_spontaneous = 0.36
    both_probability = SUBJECTS_WITH_BOTH_TYPES / SUBJECTS_WITH_SEVERAL_CLIPS
    if num_clips >= 2 and rng.random() < both_probability:
        # 1 .. num_clips - 1 spontaneous clips, binomial weights centred on half.
        choices = np.arange(1, num_clips)
        weights = np.array([float(math.comb(num_clips - 2, k - 1)) for k in choices])
        spontaneous = int(rng.choice(choices, p=weights / weights.sum()))
    else:
        spontaneous = num_clips if rng.random() < single_type_spontaneous else 0
    return ["spontaneous"] * spontaneous + ["posed"] * (num_clips - spontaneous)


def sample_population(num_subjects: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the subjects and clips of a synthetic dataset.

    Args:
        num_subjects: Number of subjects (1 to 999), numbered 1 .. num_subjects.
        seed: Seed; the same seed and size give the same population.

    Returns:
        (subjects, videos). subjects has columns subject, age, gender. videos has columns
        video, subject, age, gender, smile_type ("spontaneous" | "posed") and take (the take
        number k in the file name, counted per subject and smile type from 1), sorted by video.

    Raises:
        ValueError: If `num_subjects` is outside [1, 999].
    """
    if not 1 <= num_subjects <= 999:
        raise ValueError(f"num_subjects must be in [1, 999], got {num_subjects}")
    rng = np.random.default_rng([seed, 0])

    range_counts = allocate(num_subjects, [count for _, _, count in AGE_RANGES])
    ages = np.concatenate([
        rng.integers(first, last + 1, size=count)
        for (first, last, _), count in zip(AGE_RANGES, range_counts)
    ])
    ages = rng.permutation(ages)

    num_female = int(allocate(num_subjects, [FEMALE_SUBJECTS, MALE_SUBJECTS])[0])
    genders = np.array(["female"] * num_female + ["male"] * (num_subjects - num_female))
    genders = rng.permutation(genders)

    clip_numbers = np.array(list(CLIPS_PER_SUBJECT))
    clip_counts = allocate(num_subjects, list(CLIPS_PER_SUBJECT.values()))
    clips = rng.permutation(np.repeat(clip_numbers, clip_counts))

    subjects = pd.DataFrame({
        "subject": np.arange(1, num_subjects + 1),
        "age": ages.astype(int),
        "gender": genders,
    })

    rows = []
    for subject, age, gender, num_clips in zip(
        subjects["subject"], subjects["age"], subjects["gender"], clips
    ):
        takes = {"spontaneous": 0, "posed": 0}
        for smile_type in _smile_types(int(num_clips), rng):
            takes[smile_type] += 1
            rows.append({
                "video": video_name(int(subject), smile_type, takes[smile_type]),
                "subject": int(subject),
                "age": int(age),
                "gender": str(gender),
                "smile_type": smile_type,
                "take": takes[smile_type],
            })
    videos = pd.DataFrame(rows, columns=VIDEO_COLUMNS).sort_values("video")
    return subjects, videos.reset_index(drop=True)
