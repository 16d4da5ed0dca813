"""Tests for subject-disjoint, age-stratified folds and validation subjects."""

import numpy as np
import pandas as pd
import pytest

from siamlib.data.splits import subject_folds, validation_subjects


def make_annotations(num_subjects: int = 23, seed: int = 0) -> pd.DataFrame:
    """Build a table of subjects with distinct ages and 1 to 4 clips each."""
    rng = np.random.default_rng(seed)
    ages = rng.permutation(np.arange(8, 8 + 3 * num_subjects, 3))[:num_subjects]
    rows = []
    for subject, age in enumerate(ages, start=1):
        for take in range(int(rng.integers(1, 5))):
            rows.append({"video": f"{subject:03d}_spontaneous_smile_{take + 1}.mp4",
                         "subject": subject, "age": int(age)})
    return pd.DataFrame(rows)


def test_folds_keep_subjects_together():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    assert folds.groupby(annotations["subject"]).nunique().max() == 1


def test_folds_sizes_differ_by_at_most_one():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    sizes = np.bincount(folds.groupby(annotations["subject"]).first(), minlength=5)
    assert sizes.sum() == 23
    assert sizes.max() - sizes.min() <= 1


def test_folds_balanced_by_age():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    per_subject = pd.DataFrame({
        "age": annotations.groupby("subject")["age"].first(),
        "fold": folds.groupby(annotations["subject"]).first(),
    }).sort_values("age")
    # Every block of five consecutive ages spreads over five different folds.
    for start in range(0, 20, 5):
        block = per_subject["fold"].iloc[start:start + 5]
        assert sorted(block) == [0, 1, 2, 3, 4]
    last = per_subject["fold"].iloc[20:]
    assert last.nunique() == 3


def test_folds_series_aligned_with_index():
    annotations = make_annotations()
    annotations.index = annotations.index + 100
    folds = subject_folds(annotations, num_folds=3, seed=0)
    assert folds.index.equals(annotations.index)
    assert folds.name == "fold"
    assert set(folds) == {0, 1, 2}


def test_folds_seeded():
    annotations = make_annotations()
    first = subject_folds(annotations, num_folds=4, seed=7)
    again = subject_folds(annotations, num_folds=4, seed=7)
    other = subject_folds(annotations, num_folds=4, seed=8)
    assert first.equals(again)
    assert not first.equals(other)


@pytest.mark.parametrize("num_folds", [1, 0, 24])
def test_folds_reject_bad_count(num_folds):
    with pytest.raises(ValueError, match="num_folds"):
        subject_folds(make_annotations(), num_folds=num_folds, seed=0)


def test_folds_reject_conflicting_ages():
    annotations = make_annotations()
    annotations.loc[annotations.index[0], "age"] += 1
    first_subject = int(annotations["subject"].iloc[0])
    if (annotations["subject"] == first_subject).sum() == 1:
        annotations = pd.concat([annotations, annotations.iloc[[0]].assign(age=99)])
    with pytest.raises(ValueError, match="more than one age"):
        subject_folds(annotations, num_folds=3, seed=0)


def test_folds_reject_missing_column():
    with pytest.raises(ValueError, match="age"):
        subject_folds(make_annotations().drop(columns="age"), num_folds=3, seed=0)


def test_validation_disjoint_from_test_fold():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    for fold in range(5):
        chosen = validation_subjects(annotations, folds, fold, fraction=0.2, seed=3)
        assert chosen.dtype == bool
        assert chosen.shape == (len(annotations),)
        assert not (chosen & (folds.to_numpy() == fold)).any()


def test_validation_selects_whole_subjects():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    chosen = validation_subjects(annotations, folds, 0, fraction=0.25, seed=3)
    subjects = set(annotations.loc[chosen, "subject"])
    training = annotations[folds.to_numpy() != 0]
    num_training = training["subject"].nunique()
    assert len(subjects) == round(0.25 * num_training)
    held_rows = annotations["subject"].isin(subjects).to_numpy()
    np.testing.assert_array_equal(chosen, held_rows)


def test_validation_spans_ages():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=5, seed=1)
    chosen = validation_subjects(annotations, folds, 2, fraction=0.25, seed=3)
    training_ages = np.sort(annotations.loc[folds.to_numpy() != 2].groupby("subject")["age"]
                            .first().to_numpy())
    chosen_ages = np.sort(annotations.loc[chosen].groupby("subject")["age"].first().to_numpy())
    # With 18 training subjects and 5 strata, one subject comes from each stratum.
    strata = np.array_split(training_ages, len(chosen_ages))
    for stratum, age in zip(strata, chosen_ages):
        assert stratum.min() <= age <= stratum.max()


def test_validation_keeps_a_training_subject():
    annotations = pd.DataFrame({"subject": [1, 2, 3], "age": [10, 20, 30]})
    chosen = validation_subjects(annotations, [0, 1, 1], 0, fraction=0.9, seed=0)
    assert chosen.sum() == 1
    assert not chosen[0]


def test_validation_rejects_bad_arguments():
    annotations = make_annotations()
    folds = subject_folds(annotations, num_folds=3, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        validation_subjects(annotations, folds, 0, fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="fold_of_rows"):
        validation_subjects(annotations, folds.iloc[:-1], 0, fraction=0.2, seed=0)
    with pytest.raises(ValueError, match="fold 5"):
        validation_subjects(annotations, folds, 5, fraction=0.2, seed=0)


def test_validation_needs_two_training_subjects():
    annotations = pd.DataFrame({"subject": [1, 2], "age": [10, 20]})
    with pytest.raises(ValueError, match="at least 2"):
        validation_subjects(annotations, [0, 1], 0, fraction=0.5, seed=0)
