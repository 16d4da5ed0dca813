"""Person-independent cross-validation folds and validation subjects.

Every clip of a subject lands in the same fold, so no identity is seen in both training and
testing. Folds are balanced by age. Subjects are sorted by age, with ties in a seeded random
order. Each consecutive block of `num_folds` subjects is then spread over the folds in a seeded
random order, so every fold receives one subject from every age block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _subject_ages(annotations: pd.DataFrame) -> pd.Series:
    """Return one age per subject, indexed by subject, raising on conflicting ages."""
    missing = {"subject", "age"} - set(annotations.columns)
    if missing:
        raise ValueError(f"annotations is missing the columns {sorted(missing)}")
    if annotations.empty:
        raise ValueError("annotations is empty, expected at least one video")
    ages_per_subject = annotations.groupby("subject")["age"].nunique()
    conflicting = ages_per_subject[ages_per_subject > 1]
    if not conflicting.empty:
        raise ValueError(
            f"annotations gives subjects {conflicting.index.tolist()[:10]} more than one age. "
            "Every subject needs a single age."
        )
    return annotations.groupby("subject")["age"].first()


def _age_ordered(subject_ages: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Return subject ids sorted by age, with ties in a random order drawn from `rng`."""
    subjects = subject_ages.index.to_numpy()
    tie_break = rng.permutation(len(subjects))
    order = np.lexsort((tie_break, subject_ages.to_numpy()))
    return subjects[order]


def subject_folds(annotations: pd.DataFrame, num_folds: int, seed: int) -> pd.Series:
    """Assign every video to a subject-disjoint, age-stratified cross-validation fold.

    Args:
        annotations: Annotation table with at least the columns `subject` and `age`.
        num_folds: Number of folds, at least 2 and at most the number of subjects.
        seed: Seed for the tie order among equal ages and the fold order within each block.

    Returns:
        Series of fold indices in [0, num_folds), named "fold", aligned with
        `annotations.index`. All rows of a subject share one fold, and fold sizes in subjects
        differ by at most one.

    Raises:
        ValueError: If `num_folds` is out of range, a column is missing, the table is empty,
            or a subject has more than one age.
    """
    subject_ages = _subject_ages(annotations)
    num_subjects = len(subject_ages)
    if not isinstance(num_folds, (int, np.integer)) or num_folds < 2:
        raise ValueError(f"num_folds must be an integer >= 2, got {num_folds!r}")
    if num_folds > num_subjects:
        raise ValueError(
            f"num_folds must be at most the number of subjects ({num_subjects}), got {num_folds}"
        )

    rng = np.random.default_rng(seed)
    ordered = _age_ordered(subject_ages, rng)

    fold_of_subject: dict[int, int] = {}
    # Every full block gives each fold one subject. The short last block goes to a random
    # subset of the folds, so fold sizes differ by at most one subject.
    for start in range(0, num_subjects, num_folds):
        block = ordered[start:start + num_folds]
        block_folds = rng.permutation(num_folds)[: len(block)]
        for subject, fold in zip(block, block_folds):
            fold_of_subject[subject] = int(fold)

    folds = annotations["subject"].map(fold_of_subject).astype(int)
    folds.name = "fold"
    return folds


def validation_subjects(
    annotations: pd.DataFrame,
    fold_of_rows: pd.Series | Sequence[int] | np.ndarray,
    fold: int,
    fraction: float,
    seed: int,
) -> np.ndarray:
    """Select held-out training subjects for early stopping in one cross-validation fold.

    The training subjects (those outside `fold`) are sorted by age and split into as many
    consecutive age strata as validation subjects are needed, and one subject is drawn from
    each stratum, so the validation set spans the training ages.

    Args:
        annotations: Annotation table with at least the columns `subject` and `age`.
        fold_of_rows: Fold index per row of `annotations`, in row order (as returned by
            `subject_folds`).
        fold: The test fold; its subjects are never selected.
        fraction: Share of the training subjects to hold out, in (0, 1). At least one subject
            is selected and at least one remains for training.
        seed: Seed for the draw within each age stratum.

    Returns:
        Boolean array of shape (len(annotations),), True on every row of a validation subject.
        Rows of the test fold are always False.

    Raises:
        ValueError: If `fold_of_rows` does not have one entry per row, `fold` does not occur in
            it, `fraction` is outside (0, 1), fewer than two training subjects remain, or
            `annotations` is invalid (see `subject_folds`).
    """
    _subject_ages(annotations)
    folds = np.asarray(fold_of_rows)
    if folds.shape != (len(annotations),):
        raise ValueError(
            f"fold_of_rows must have one entry per annotation row ({len(annotations)}), "
            f"got shape {folds.shape}"
        )
    if fold not in set(folds.tolist()):
        raise ValueError(f"fold {fold!r} does not occur in fold_of_rows")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")

    training = folds != fold
    if annotations.loc[training, "subject"].nunique() < 2:
        raise ValueError(
            f"fold {fold} leaves {annotations.loc[training, 'subject'].nunique()} training "
            "subject(s), but at least 2 are needed to hold out validation subjects"
        )
    held_out = np.zeros(len(annotations), dtype=bool)
    held_out[training] = holdout_subjects(annotations.loc[training], fraction, seed)
    return held_out


def holdout_subjects(annotations: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Select a share of the subjects of a training set, spread over their ages.

    The subjects are sorted by age and split into as many consecutive age strata as subjects
    are needed, and one subject is drawn from each stratum. `validation_subjects` applies
    this to the training rows of a fold; a baseline given only its training videos can call
    it directly and gets the same subjects.

    Args:
        annotations: Table with at least the columns `subject` and `age`.
        fraction: Share of the subjects to hold out, in (0, 1). At least one subject is
            selected and at least one remains.
        seed: Seed for the draw within each age stratum.

    Returns:
        Boolean array of shape (len(annotations),), True on every row of a selected subject.

    Raises:
        ValueError: If `fraction` is outside (0, 1), there are fewer than two subjects, or
            `annotations` is invalid.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    subject_ages = _subject_ages(annotations)
    num_subjects = len(subject_ages)
    if num_subjects < 2:
        raise ValueError(
            f"{num_subjects} subject(s) given, but at least 2 are needed to hold out some"
        )
    num_held_out = int(np.clip(round(fraction * num_subjects), 1, num_subjects - 1))

    rng = np.random.default_rng(seed)
    ordered = _age_ordered(subject_ages, rng)
    strata = np.array_split(ordered, num_held_out)
    chosen = {stratum[rng.integers(len(stratum))] for stratum in strata}
    return np.isin(annotations["subject"].to_numpy(), list(chosen))
