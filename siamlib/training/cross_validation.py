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
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Train and test SIAM on every fold; predict each clip with the model that did not see it.

    For each fold, ``validation_fraction`` of the other folds' subjects (age-stratified, see
    ``siamlib.data.splits.validation_subjects``) are held out for early stopping and the rest
    are trained on. Fold ``k`` uses seed ``seed + k`` and the checkpoint
    ``checkpoint_dir/fold_{k}.pt``, so a finished fold is loaded instead of trained again.

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

    Returns:
        predictions: The predictions table (method "SIAM", video, subject, fold, age,
            predicted_age, gender, smile_type), one row per clip in ``index`` order.
        spatial_attention: float32 (N, T, h, w), each clip's maps from its test fold's model.
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

    checkpoint_dir = Path(checkpoint_dir)
    index = index.reset_index(drop=True)
    ages = index["age"].to_numpy(dtype=np.float64)
    side = model_config.attention_map_size
    predicted_age = np.full(N, np.nan)
    spatial_attention = np.zeros((N, T, side, side), dtype=np.float32)
    temporal_attention = np.zeros((N, T), dtype=np.float32)
    histories = []

    for fold in tqdm(fold_ids, desc="SIAM folds", unit="fold", disable=not progress):
        fold_seed = seed + int(fold)
        test = folds == fold
        if validation_fraction > 0:
            validation = validation_subjects(
                index, folds, int(fold), validation_fraction, fold_seed
            )
        else:
            validation = np.zeros(N, dtype=bool)
        train_rows = np.flatnonzero(~test & ~validation)
        val_rows = np.flatnonzero(validation)
        test_rows = np.flatnonzero(test)

        model, history = train_fold(
            model_config, train_config, clips, mask, ages, train_rows, val_rows,
            checkpoint_dir / f"fold_{fold}.pt", fold_seed, progress,
        )
        fold_ages, fold_spatial, fold_temporal = predict(
            model, clips, mask, test_rows, batch_size=train_config.batch_size
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
        "method": METHOD,
        "video": index["video"],
        "subject": index["subject"].astype(int),
        "fold": folds.astype(int),
        "age": index["age"].astype(int),
        "predicted_age": predicted_age,
        "gender": index["gender"],
        "smile_type": index["smile_type"],
    })
    history = pd.concat(histories, ignore_index=True)
    history = history[["fold", "epoch", "train_loss", "val_mae"]]
    return predictions, spatial_attention, temporal_attention, history
