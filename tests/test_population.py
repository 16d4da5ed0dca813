"""Test the UvA-NEMO counts, smile types and seeding of the synthetic population."""

import pandas as pd
import pytest

from siamlib.data.synthetic.population import (
    AGE_RANGES, CLIPS_PER_SUBJECT, SPONTANEOUS_VIDEOS, SUBJECTS_WITH_BOTH_TYPES, TOTAL_SUBJECTS,
    TOTAL_VIDEOS, allocate, sample_population,
)


def spontaneous_per_subject(videos: pd.DataFrame) -> pd.DataFrame:
    """Return a table of clips and spontaneous clips per subject."""
    grouped = videos.groupby("subject")["smile_type"]
    return pd.DataFrame({
        "clips": grouped.size(),
        "spontaneous": grouped.agg(lambda types: int((types == "spontaneous").sum())),
    })


def count_both_types(videos: pd.DataFrame) -> int:
    """Return the number of subjects with both spontaneous and posed clips."""
    return int((videos.groupby("subject")["smile_type"].nunique() == 2).sum())


def spontaneous_target(num_videos: int) -> int:
    posed_weight = TOTAL_VIDEOS - SPONTANEOUS_VIDEOS
    return int(allocate(num_videos, [SPONTANEOUS_VIDEOS, posed_weight])[0])


def both_types_target(num_subjects: int, videos: pd.DataFrame) -> int:
    single_weight = TOTAL_SUBJECTS - SUBJECTS_WITH_BOTH_TYPES
    target = int(allocate(num_subjects, [SUBJECTS_WITH_BOTH_TYPES, single_weight])[0])
    several_clips = int((videos.groupby("subject").size() >= 2).sum())
    return min(target, several_clips)


@pytest.fixture(scope="module")
def full_population():
    return sample_population(400, seed=0)


def test_full_population_smile_types(full_population):
    _, videos = full_population
    assert len(videos) == 1240
    assert (videos["smile_type"] == "spontaneous").sum() == 597
    assert (videos["smile_type"] == "posed").sum() == 643
    assert count_both_types(videos) == 325


def test_full_population_subjects(full_population):
    subjects, videos = full_population
    assert len(subjects) == 400
    assert (subjects["gender"] == "female").sum() == 185
    assert (subjects["gender"] == "male").sum() == 215
    for first, last, count in AGE_RANGES:
        assert subjects["age"].between(first, last).sum() == count, (first, last)
    clips = videos.groupby("subject").size().value_counts().to_dict()
    assert clips == CLIPS_PER_SUBJECT


@pytest.mark.parametrize("num_subjects", [150, 37])
def test_scaled_population_hits_targets(num_subjects):
    subjects, videos = sample_population(num_subjects, seed=5)
    assert len(subjects) == num_subjects
    spontaneous = int((videos["smile_type"] == "spontaneous").sum())
    assert spontaneous == spontaneous_target(len(videos))
    assert count_both_types(videos) == both_types_target(num_subjects, videos)


@pytest.mark.parametrize("num_subjects", [1, 2, 3, 8, 37])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subject_attributes_consistent(num_subjects, seed):
    subjects, videos = sample_population(num_subjects, seed)
    per_subject = videos.groupby("subject")[["age", "gender"]].nunique()
    assert (per_subject["age"] == 1).all()
    assert (per_subject["gender"] == 1).all()
    merged = videos.merge(subjects, on="subject", suffixes=("", "_subject"))
    assert (merged["age"] == merged["age_subject"]).all()
    assert (merged["gender"] == merged["gender_subject"]).all()
    assert set(videos["subject"]) == set(subjects["subject"])


@pytest.mark.parametrize("num_subjects", [3, 8, 150, 400])
def test_both_type_subjects_split_clips(num_subjects):
    _, videos = sample_population(num_subjects, seed=1)
    table = spontaneous_per_subject(videos)
    mixed = table[(table["spontaneous"] > 0) & (table["spontaneous"] < table["clips"])]
    single = table.drop(mixed.index)
    assert (mixed["clips"] >= 2).all()
    assert mixed["spontaneous"].between(1, mixed["clips"] - 1).all()
    one_type = (single["spontaneous"] == 0) | (single["spontaneous"] == single["clips"])
    assert one_type.all()


def test_same_seed_same_tables():
    subjects_a, videos_a = sample_population(60, seed=7)
    subjects_b, videos_b = sample_population(60, seed=7)
    pd.testing.assert_frame_equal(subjects_a, subjects_b)
    pd.testing.assert_frame_equal(videos_a, videos_b)


def test_other_seed_different_tables():
    _, videos_a = sample_population(60, seed=7)
    _, videos_b = sample_population(60, seed=8)
    assert not videos_a.equals(videos_b)


@pytest.mark.parametrize("num_subjects", [1, 2, 3])
def test_tiny_population_hits_targets(num_subjects):
    subjects, videos = sample_population(num_subjects, seed=0)
    assert subjects["subject"].tolist() == list(range(1, num_subjects + 1))
    assert set(videos["subject"]) == set(subjects["subject"])
    assert videos.groupby("subject").size().between(1, 4).all()
    assert videos["video"].is_unique
    spontaneous = int((videos["smile_type"] == "spontaneous").sum())
    assert spontaneous == spontaneous_target(len(videos))
    assert count_both_types(videos) == both_types_target(num_subjects, videos)


def test_takes_count_per_smile_type():
    _, videos = sample_population(40, seed=2)
    for (_, _), group in videos.groupby(["subject", "smile_type"]):
        assert sorted(group["take"].tolist()) == list(range(1, len(group) + 1))
