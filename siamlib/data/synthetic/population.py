"""Subjects and clips of a synthetic dataset, in the proportions of UvA-NEMO.

UvA-NEMO Smile Database, counts as published with the database: 400 subjects aged 8 to 76,
185 female and 215 male. It has 1,240 videos, of which 597 are spontaneous and 643 posed.
Subjects have 1 to 4 clips (179 subjects with 4, 111 with 3, 81 with 2, 29 with 1), and 325
subjects have both smile types. Subjects per age range: 8-9: 51, 10-19: 103, 20-29: 68,
30-39: 55, 40-49: 79, 50-59: 25, 60-69: 13, 70-76: 6.

Counts are scaled to `num_subjects` by largest-remainder rounding, so a small dataset keeps
the proportions as closely as whole subjects allow. This applies to the subjects per age
range, gender and clip count, and to the spontaneous videos among all videos. It also applies
to the subjects with both smile types, capped at the subjects with 2 or more clips. Ages are
uniform within each range. Smile types are drawn at random per subject and then adjusted to
give the scaled spontaneous and both-type counts exactly. A population of a few subjects whose
clip counts cannot reach the spontaneous count gets the nearest reachable one. A both-type
subject with k clips has 1 to k - 1 spontaneous clips, and any other subject has clips of one
type only.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

# (first age, last age, subjects) per range.
AGE_RANGES = (
    (8, 9, 51), (10, 19, 103), (20, 29, 68), (30, 39, 55),
    (40, 49, 79), (50, 59, 25), (60, 69, 13), (70, 76, 6),
)
FEMALE_SUBJECTS = 185
MALE_SUBJECTS = 215
TOTAL_SUBJECTS = 400
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


def _draw_spontaneous_counts(clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the number of spontaneous clips of each subject, with UvA-NEMO's totals.

    A random subset of the subjects with 2 or more clips gets both smile types, sized by
    `allocate` and capped at the number of such subjects. A both-type subject with k clips draws
    1 + Binomial(k - 2, 1/2) spontaneous clips, so it always has 1 to k - 1. A single-type
    subject is all spontaneous with probability 0.36 and all posed otherwise. Both-type subjects
    split their clips evenly on average and hold about 86% of UvA-NEMO's clips, so single-type
    subjects need about 36% spontaneous to give its 48% overall. The draw is then adjusted to
    the spontaneous target by `_flip_single_type` and `_shift_both_type`, and by
    `_swap_both_type` if those two miss it.

    Args:
        clips: Number of clips of each subject, 1 to 4.
        rng: Generator that draws the smile types.

    Returns:
        Integer array with the spontaneous clips of each subject. The remaining clips are posed.
    """
    num_subjects = len(clips)
    several_clips = np.flatnonzero(clips >= 2)
    both_target = int(allocate(
        num_subjects, [SUBJECTS_WITH_BOTH_TYPES, TOTAL_SUBJECTS - SUBJECTS_WITH_BOTH_TYPES]
    )[0])
    both_type = np.zeros(num_subjects, dtype=bool)
    chosen = rng.choice(several_clips, size=min(both_target, len(several_clips)), replace=False)
    both_type[chosen] = True

    both_draw = 1 + rng.binomial(np.maximum(clips - 2, 0), 0.5)
    single_is_spontaneous = rng.random(num_subjects) < 0.36
    spontaneous = np.where(both_type, both_draw, np.where(single_is_spontaneous, clips, 0))

    spontaneous_target = int(allocate(
        int(clips.sum()), [SPONTANEOUS_VIDEOS, TOTAL_VIDEOS - SPONTANEOUS_VIDEOS]
    )[0])
    _flip_single_type(spontaneous, clips, both_type, spontaneous_target, rng)
    _shift_both_type(spontaneous, clips, both_type, spontaneous_target, rng)
    if spontaneous.sum() != spontaneous_target:
        _swap_both_type(spontaneous, clips, both_type, spontaneous_target, rng)
    return spontaneous


def _flip_single_type(
    spontaneous: np.ndarray, clips: np.ndarray, both_type: np.ndarray, target: int,
    rng: np.random.Generator,
) -> None:
    """Flip single-type subjects in place until both-type subjects can make up `target`.

    Both-type subjects can hold any spontaneous total from their number to the sum of their
    k - 1, so the single-type total must fall in [target - high, target - low]. Each pass tries
    the single-type subjects in random order and flips a subject between all spontaneous and
    all posed when that brings the single-type total closer to that interval. Passes repeat
    until the total is inside the interval or a pass flips no subject.

    When high - low >= 3, no flip of at most 4 clips can jump over the interval, so all flips go
    the same way and the total ends inside it unless no single-type subject is left to flip.
    Below that width the greedy passes can miss a set of flips that reaches the interval.
    """
    low = int(both_type.sum())
    high = int((clips[both_type] - 1).sum())
    single_total = int(spontaneous[~both_type].sum())

    def distance(total: int) -> int:
        return max(target - high - total, total - (target - low), 0)

    flipped = True
    while flipped and distance(single_total) > 0:
        flipped = False
        for subject in rng.permutation(np.flatnonzero(~both_type)):
            step = clips[subject] if spontaneous[subject] == 0 else -clips[subject]
            if distance(single_total + step) < distance(single_total):
                spontaneous[subject] += step
                single_total += step
                flipped = True


def _shift_both_type(
    spontaneous: np.ndarray, clips: np.ndarray, both_type: np.ndarray, target: int,
    rng: np.random.Generator,
) -> None:
    """Move spontaneous clips in place, one at a time on random both-type subjects, to `target`.

    Stops early when every both-type subject is already at 1 or at k - 1 spontaneous clips in
    the direction of the move.
    """
    while (gap := target - int(spontaneous.sum())) != 0:
        if gap > 0:
            movable = np.flatnonzero(both_type & (spontaneous < clips - 1))
        else:
            movable = np.flatnonzero(both_type & (spontaneous > 1))
        if len(movable) == 0:
            return
        spontaneous[rng.choice(movable)] += 1 if gap > 0 else -1


def _swap_both_type(
    spontaneous: np.ndarray, clips: np.ndarray, both_type: np.ndarray, target: int,
    rng: np.random.Generator,
) -> None:
    """Swap the both-type role between two subjects in place to bring the total to `target`.

    Flips and shifts miss the target only when the both-type subjects have little room, which
    happens in populations of a few subjects. For example, 3 subjects with 2, 3 and 4 clips
    have 2 both-type subjects, and if the 4-clip subject is single-type, no assignment gives 4
    spontaneous clips of 9. Pairs of a both-type subject and a single-type subject with 2 or
    more clips are tried in random order. For each, the first becomes all posed, the second
    gets 1 spontaneous clip, and the flips and shifts run again. The first pair that ends
    closer to `target` is kept, and the search repeats until the total is exact or no pair
    brings it closer.
    """
    while (gap := abs(target - int(spontaneous.sum()))) != 0:
        best = None
        both_subjects = rng.permutation(np.flatnonzero(both_type))
        single_subjects = rng.permutation(np.flatnonzero(~both_type & (clips >= 2)))
        for to_single, to_both in itertools.product(both_subjects, single_subjects):
            trial_both = both_type.copy()
            trial_both[to_single], trial_both[to_both] = False, True
            trial = spontaneous.copy()
            trial[to_single], trial[to_both] = 0, 1
            _flip_single_type(trial, clips, trial_both, target, rng)
            _shift_both_type(trial, clips, trial_both, target, rng)
            if abs(target - int(trial.sum())) < gap:
                best = trial, trial_both
                break
        if best is None:
            return
        spontaneous[:], both_type[:] = best


def sample_population(num_subjects: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the subjects and clips of a synthetic dataset.

    Ages, genders and clip counts are drawn first and do not depend on the smile types.
    `_draw_spontaneous_counts` then assigns the smile types from the same generator.

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
    spontaneous = _draw_spontaneous_counts(clips, rng)
    for subject, age, gender, num_clips, num_spontaneous in zip(
        subjects["subject"], subjects["age"], subjects["gender"], clips.tolist(),
        spontaneous.tolist(),
    ):
        num_posed = num_clips - num_spontaneous
        smile_types = ["spontaneous"] * num_spontaneous + ["posed"] * num_posed
        takes = {"spontaneous": 0, "posed": 0}
        for smile_type in smile_types:
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
