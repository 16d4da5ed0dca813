"""Subject-independent cross-validation of SIAM.

Shape letters: N clips, T frames per clip, h x w positions of the spatial attention map.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from siamlib.data.splits import validation_subjects
from siamlib.models.siam import SIAMConfig
from siamlib.training.config import TrainConfig
from siamlib.training.dataset import check_clip_arrays
from siamlib.training.fold import predict, train_fold

logger = logging.getLogger(__name__)

METHOD = "SIAM"
INDEX_COLUMNS: tuple[str, ...] = ("video", "subject", "age", "gender", "smile_type")


def subsample_training_subjects(
    subjects: np.ndarray, candidates: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Keep a random share of the candidate rows' subjects, for learning curves.

    The candidate subjects are put in one random order and the first
    max(2, ceil(fraction × count)) are kept. So for one seed a smaller fraction keeps a
    subset of the subjects a larger one keeps, and the points of a learning curve are nested.

    Args:
        subjects: Subject id of every row, shape (N,).
        candidates: Bool (N,), True on the rows that may be kept (e.g. all training rows).
        fraction: Share of the candidate subjects to keep, in (0, 1].
        seed: Seed of the random order.

    Returns:
        Bool (N,), True on the kept rows: every row of a kept subject among the candidates.

    Raises:
        ValueError: If the shapes differ or `fraction` is outside (0, 1].
    """
    subjects = np.asarray(subjects)
    candidates = np.asarray(candidates, dtype=bool)
    if candidates.shape != subjects.shape or subjects.ndim != 1:
        raise ValueError(f"subjects and candidates must be 1-D of one shape, got "
                         f"{subjects.shape} and {candidates.shape}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    pool = np.unique(subjects[candidates])
    order = np.random.default_rng(seed).permutation(pool)
    count = min(len(pool), max(2, int(np.ceil(fraction * len(pool)))))
    return candidates & np.isin(subjects, order[:count])


def run_cross_validation(
    model_config: SIAMConfig,
    train_config: TrainConfig,
    clips: np.ndarray,
    mask: np.ndarray,
    index: pd.DataFrame,
    folds: np.ndarray,
    validation_fraction: float,
    checkpoint_dir: str | os.PathLike[str],
    seed: int,
    progress: bool = True,
    test_folds: list[int] | None = None,
    train_fraction: float = 1.0,
    method: str = METHOD,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Train and test SIAM on every fold; predict each clip with the model that did not see it.

    For each fold, ``validation_fraction`` of the other folds' subjects (age-stratified, see
    ``siamlib.data.splits.validation_subjects``) are held out for early stopping and the rest
    are trained on. Fold ``k`` uses seed ``seed + k`` and the checkpoint
    ``checkpoint_dir/fold_{k}.pt``, so a finished fold is loaded instead of trained again, and
    an interrupted one continues after its last finished epoch (see :func:`train_fold`).
    With ``train_fraction`` below 1, only that share of the other folds' subjects
    (``subsample_training_subjects``, seed ``seed + k``) is split into training and
    validation subjects, and the other subjects are not used.

    Args:
        model_config: The architecture.
        train_config: The training settings.
        clips: uint8 (N, T, H, W, 3), row i described by ``index.iloc[i]``.
        mask: bool (N, T), True on valid frames.
        index: One row per clip with the columns video, subject, age, gender, smile_type.
        folds: Test fold of every clip (N,), integers; all clips of a subject in one fold.
        validation_fraction: Share of each fold's training subjects held out for early
            stopping, in [0, 1); 0 trains on all of them for every epoch.
        checkpoint_dir: Folder for the fold checkpoints.
        seed: Base seed.
        progress: Show progress bars over folds and epochs.
        test_folds: Folds to test; None tests every fold. The others are still trained on.
        train_fraction: Share of the training subjects used, in (0, 1].
        method: Name written to the predictions' method column.

    Returns:
        predictions: The predictions table (method, video, subject, fold, age,
            predicted_age, gender, smile_type), one row per tested clip in ``index`` order.
        spatial_attention: float32 (N, T, h, w), each clip's maps from its test fold's model;
            zeros for the clips of folds not tested.
        temporal_attention: float32 (N, T).
        history: One row per fold and epoch with the columns fold, epoch, train_loss, val_mae.

    Raises:
        ValueError: If the arrays, ``index`` or ``folds`` do not match, a column is missing,
            a subject spans two folds, fewer than two folds are given or
            ``validation_fraction`` is outside [0, 1).
    """
    check_clip_arrays(clips, mask)
    N, T = mask.shape
    missing = [column for column in INDEX_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(f"index is missing the columns {missing}")
    if len(index) != N:
        raise ValueError(f"index has {len(index)} rows but there are {N} clips")
    folds = np.asarray(folds)
    if folds.shape != (N,) or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(
            f"folds must be an integer array of shape ({N},), got {folds.dtype} {folds.shape}"
        )
    folds_per_subject = pd.Series(folds).groupby(index["subject"].to_numpy()).nunique()
    split_subjects = folds_per_subject.index[folds_per_subject > 1].tolist()
    if split_subjects:
        raise ValueError(f"subjects {split_subjects[:10]} have clips in more than one fold")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError(f"folds must contain at least two folds, got {fold_ids.tolist()}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    if test_folds is not None:
        unknown = sorted(set(test_folds) - set(fold_ids.tolist()))
        if unknown or not test_folds:
            raise ValueError(f"test_folds must be a non-empty subset of the folds "
                             f"{fold_ids.tolist()}, got {test_folds!r}")
        fold_ids = np.array(sorted(set(test_folds)))
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction!r}")

    checkpoint_dir = Path(checkpoint_dir)
    index = index.reset_index(drop=True)
    ages = index["age"].to_numpy(dtype=np.float64)
    side = model_config.attention_map_size
    predicted_age = np.full(N, np.nan)
    spatial_attention = np.zeros((N, T, side, side), dtype=np.float32)
    temporal_attention = np.zeros((N, T), dtype=np.float32)
    histories = []

    subjects = index["subject"].to_numpy()
    for fold in tqdm(fold_ids, desc=f"{method} folds", unit="fold", disable=not progress):
        fold_seed = seed + int(fold)
        test = folds == fold
        pool = ~test
        if train_fraction < 1.0:
            pool = subsample_training_subjects(subjects, ~test, train_fraction, fold_seed)
        validation = np.zeros(N, dtype=bool)
        if validation_fraction > 0:
            used = pool | test
            validation[used] = validation_subjects(
                index[used].reset_index(drop=True), folds[used], int(fold),
                validation_fraction, fold_seed,
            )
        train_rows = np.flatnonzero(pool & ~validation)
        val_rows = np.flatnonzero(validation)
        test_rows = np.flatnonzero(test)

        model, history = train_fold(
            model_config, train_config, clips, mask, ages, train_rows, val_rows,
            checkpoint_dir / f"fold_{fold}.pt", fold_seed, progress,
        )
        fold_ages, fold_spatial, fold_temporal = predict(
            model, clips, mask, test_rows, batch_size=train_config.batch_size,
            precision=train_config.precision,
        )
        predicted_age[test_rows] = fold_ages
        spatial_attention[test_rows] = fold_spatial
        temporal_attention[test_rows] = fold_temporal
        histories.append(history.assign(fold=int(fold)))
        logger.info(
            "fold %d: %d training, %d validation, %d test clips; test MAE %.2f years",
            fold, len(train_rows), len(val_rows), len(test_rows),
            np.abs(fold_ages - ages[test_rows]).mean(),
        )

    predictions = pd.DataFrame({
        "method": method,
        "video": index["video"],
        "subject": index["subject"].astype(int),
        "fold": folds.astype(int),
        "age": index["age"].astype(int),
        "predicted_age": predicted_age,
        "gender": index["gender"],
        "smile_type": index["smile_type"],
    })
    tested = np.isin(folds, fold_ids)
    predictions = predictions[tested].reset_index(drop=True)
    history = pd.concat(histories, ignore_index=True)
    history = history[["fold", "epoch", "train_loss", "val_mae"]]
    return predictions, spatial_attention, temporal_attention, history
