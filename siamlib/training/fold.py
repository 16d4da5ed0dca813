"""Training SIAM on one cross-validation fold, and predicting with a trained model.

Shape letters: N clips in the cache, T frames per clip, H x W pixels, h x w positions of the
spatial attention map.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.training.augment import augment_batch
from siamlib.training.checkpoint import (
    code_fingerprint,
    data_fingerprint,
    load_checkpoint,
    resume_state_path,
    save_checkpoint,
)
from siamlib.training.config import TrainConfig
from siamlib.training.dataset import (
    ClipDataset,
    WeightedClipDataset,
    age_group_weights,
    check_clip_arrays,
    check_rows,
)
from siamlib.training.distributed import (
    DROPOUT_SEED_STRIDE,
    ProcessGroup,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    broadcast_float,
    current_group,
    gather_on_main,
    process_device,
    read_on_main,
    shard_rows,
)
from siamlib.training.reproducibility import (
    get_rng_state,
    resolve_device,
    seed_everything,
    set_rng_state,
    torch_settings,
)

logger = logging.getLogger(__name__)

HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "val_mae")

# The flips and the augmentation draw from a generator seeded with the run's seed plus this,
# the batch order from one seeded with the seed itself.
AUGMENTATION_SEED_OFFSET = 1_000_003

# TrainConfig fields that change where and how fast a run goes but not what it learns: a
# finished checkpoint is reused when only these differ. (channels_last and compile change the
# order of floating-point operations, not the computation.)
RUNTIME_FIELDS: tuple[str, ...] = (
    "device", "num_threads", "num_workers", "channels_last", "compile",
)

# Exceptions from torch.load on a truncated, corrupt or foreign file, and from reading a
# resume state with missing or invalid entries.
UNREADABLE_STATE_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError, KeyError, TypeError,
)


def train_fold(
    model_config: SIAMConfig,
    train_config: TrainConfig,
    clips: np.ndarray,
    mask: np.ndarray,
    ages: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    checkpoint_path: str | os.PathLike[str],
    seed: int,
    progress: bool = True,
) -> tuple[SIAM, pd.DataFrame]:
    """Train SIAM on ``train_rows`` with early stopping on the MAE of ``val_rows``.

    The run is seeded and, on CPU, exactly repeatable. After every epoch that lowers the
    validation MAE, the model is written to ``checkpoint_path`` with ``complete=False``. When
    training stops, the best state is written again with ``complete=True``. If a complete
    checkpoint of the same run already exists, it is loaded and nothing is trained. Two runs
    are the same if their model configs, training settings apart from device and num_threads,
    seeds, rows, data (clips, masks and ages of the rows) and training code are the same (see
    ``siamlib.training.checkpoint``). A setting missing from an older checkpoint counts as its
    default. With no validation rows, every epoch runs and the last state is kept.
    Augmentation and loss weights (see :class:`TrainConfig`) apply to the training clips only.

    After every epoch, a resume state with the model, optimizer, random number generators,
    history and best state is written next to the checkpoint (``fold_0.resume.pt`` for
    ``fold_0.pt``). If training is interrupted, the next call with the same run continues
    after the last finished epoch. On CPU the result is then identical to an uninterrupted
    run. The resume state is deleted once the complete checkpoint is written. A resume state
    of a different run, or one that cannot be read, is logged and ignored, and training starts
    at epoch 1.

    Under torchrun (see ``siamlib.training.distributed``), every process of the group calls
    this with the same arguments and computes its share of every batch. Process 0 alone reads
    and writes the checkpoint and the resume state. Every process returns the same model.

    Args:
        model_config: The architecture.
        train_config: The training settings.
        clips: uint8 (N, T, H, W, 3) clips, e.g. the clip cache's memory map.
        mask: bool (N, T), True on valid frames.
        ages: Age in years of every clip, (N,).
        train_rows: Indices of the clips to train on.
        val_rows: Indices of the clips for early stopping; disjoint from ``train_rows``.
        checkpoint_path: The fold's checkpoint file (see ``siamlib.training.checkpoint``).
        seed: Seed for the initial weights, batch order, dropout and augmentation.
        progress: Show a progress bar over epochs.

    Returns:
        The best model, in eval mode on the training device, and the history with one row per
        epoch run and the columns ``epoch``, ``train_loss`` (mean loss over the epoch's
        training clips, unweighted even with ``reweight_age_groups``, so that histories with
        and without it compare) and ``val_mae`` (years; NaN without validation rows).

    Raises:
        ValueError: If an array has the wrong dtype or shape, the clip size does not match
            ``model_config.image_size``, the rows are invalid, empty (train) or overlapping,
            an age is not finite, or a selected clip has no valid frame.
        RuntimeError: If no epoch gave a finite validation MAE.
    """
    check_clip_arrays(clips, mask)
    N, T, H, W, _ = clips.shape
    if (H, W) != (model_config.image_size, model_config.image_size):
        raise ValueError(
            f"clips are {H}x{W} pixels but model_config.image_size is {model_config.image_size}"
        )
    ages = np.asarray(ages, dtype=np.float64)
    if ages.shape != (N,):
        raise ValueError(f"ages must have shape ({N},), got {ages.shape}")
    train_rows = check_rows(train_rows, N, "train_rows")
    val_rows = check_rows(val_rows, N, "val_rows")
    if len(train_rows) == 0:
        raise ValueError("train_rows is empty")
    overlap = np.intersect1d(train_rows, val_rows)
    if len(overlap):
        raise ValueError(f"train_rows and val_rows share rows {overlap[:10].tolist()}")
    used = np.concatenate([train_rows, val_rows])
    if not np.isfinite(ages[used]).all():
        not_finite = used[~np.isfinite(ages[used])]
        raise ValueError(f"ages of rows {not_finite[:10].tolist()} are not finite")
    empty = used[~mask[used].any(axis=1)]
    if len(empty):
        raise ValueError(f"clips {empty[:10].tolist()} have no valid frame")

    checkpoint_path = Path(checkpoint_path)
    device = process_device(resolve_device(train_config.device))
    run = {
        "model_config": asdict(model_config),
        "train_config": _learning_settings(asdict(train_config)),
        "seed": int(seed),
        "train_rows": train_rows.tolist(),
        "val_rows": val_rows.tolist(),
        "data": data_fingerprint(clips, mask, ages, train_rows, val_rows),
        "code": code_fingerprint(),
        # "auto" is bfloat16 on CUDA and float32 on CPU, which train differently.
        "precision": "fp32" if autocast_dtype(train_config.precision, device) is None else "bf16",
    }
    with torch_settings(device, train_config.num_threads):
        finished = _load_finished_run(checkpoint_path, run, device)
        if finished is not None:
            # A run stopped between writing the complete checkpoint and deleting its resume
            # state leaves the resume state behind.
            if current_group().is_main:
                resume_state_path(checkpoint_path).unlink(missing_ok=True)
            return finished
        return _train(
            model_config, train_config, clips, mask, ages, train_rows, val_rows,
            checkpoint_path, run, device, progress,
        )


def predict(
    model: SIAM,
    clips: np.ndarray,
    mask: np.ndarray,
    rows: np.ndarray,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predict the age and attention maps of the clips ``rows`` in eval mode.

    Args:
        model: A SIAM model; its train/eval mode is restored afterwards.
        clips: uint8 (N, T, H, W, 3).
        mask: bool (N, T), True on valid frames.
        rows: Indices of the clips to predict, in output order.
        batch_size: Clips per forward pass.
        device: Device to run on; the model is moved there. None uses the model's device.
        precision: ``"fp32"``, ``"bf16"`` (bfloat16 autocast) or ``"auto"`` (bfloat16 on
            CUDA only), as ``TrainConfig.precision``.

    Returns:
        ages float64 (n,) in years, spatial attention float32 (n, T, h, w) and temporal
        attention float32 (n, T), for the n = len(rows) clips.

    Raises:
        ValueError: If an array or ``rows`` is invalid or ``batch_size`` is not positive.
    """
    check_clip_arrays(clips, mask)
    rows = check_rows(rows, len(clips), "rows")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.to(device)

    T = clips.shape[1]
    side = model.config.attention_map_size
    ages = [np.zeros(0)]
    spatial = [np.zeros((0, T, side, side), dtype=np.float32)]
    temporal = [np.zeros((0, T), dtype=np.float32)]
    loader = DataLoader(
        ClipDataset(clips, mask, rows), batch_size=batch_size, shuffle=False,
        pin_memory=device.type == "cuda",
    )
    dtype = autocast_dtype(precision, device)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), _autocast(device, dtype):
        for frames, frame_mask, _ in loader:
            output = model(
                frames.to(device, non_blocking=True), frame_mask.to(device, non_blocking=True)
            )
            ages.append(output.age.double().cpu().numpy())
            spatial.append(output.spatial_attention.float().cpu().numpy())
            temporal.append(output.temporal_attention.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(ages), np.concatenate(spatial), np.concatenate(temporal)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype of ``TrainConfig.precision`` on ``device``, None for float32.

    Raises:
        ValueError: If ``precision`` is not "auto", "fp32" or "bf16".
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f'precision must be "auto", "fp32" or "bf16", got {precision!r}')
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Return an autocast context to ``dtype`` on ``device``, or a null context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def use_channels_last(channels_last: bool | str, device: torch.device) -> bool:
    """Resolve ``TrainConfig.channels_last`` ("auto": on CUDA only) on ``device``."""
    if channels_last == "auto":
        return device.type == "cuda"
    return bool(channels_last)


def batch_loss(
    prediction: Tensor, target: Tensor, loss: str, weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Compute a batch's loss to minimise and its unweighted mean loss.

    Args:
        prediction: Predicted ages (B,) in years.
        target: True ages (B,) in years.
        loss: ``"l1"`` (absolute error) or ``"mse"`` (squared error).
        weight: Loss weight per clip (B,), or None for the plain mean.

    Returns:
        The mean of ``weight`` times the per-clip loss (the plain mean without weights), and
        the plain mean, detached from the graph when weights are given.

    Raises:
        ValueError: If ``loss`` is unknown.
    """
    if loss not in ("l1", "mse"):
        raise ValueError(f'loss must be "l1" or "mse", got {loss!r}')
    loss_function = F.l1_loss if loss == "l1" else F.mse_loss
    if weight is None:
        mean = loss_function(prediction, target)
        return mean, mean
    per_clip = loss_function(prediction, target, reduction="none")  # (B,)
    return (per_clip * weight).mean(), per_clip.detach().mean()


def _learning_settings(train_config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in train_config.items() if key not in RUNTIME_FIELDS}


def _differing_fields(stored: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Return the keys of ``run`` whose value in a stored checkpoint or resume state differs."""
    # Each TrainConfig and SIAMConfig default reproduces the training and model from before
    # that field existed, so a field missing from an older checkpoint is read as its default.
    stored_config = {**asdict(TrainConfig()), **stored["train_config"]}
    stored_model = {**asdict(SIAMConfig()), **stored["model_config"]}
    stored = {**stored, "train_config": _learning_settings(stored_config),
              "model_config": stored_model}
    return [key for key in run if stored.get(key) != run[key]]


def _load_finished_run(
    path: Path, run: dict[str, Any], device: torch.device
) -> tuple[SIAM, pd.DataFrame] | None:
    """Load the model and history of a complete checkpoint of ``run``, or return None.

    Process 0 reads the file and sends it to the others (see ``read_on_main``).
    """
    checkpoint = read_on_main(lambda: load_checkpoint(path) if path.exists() else None)
    if checkpoint is None:
        return None
    if not checkpoint.get("complete", False):
        logger.info("checkpoint %s is from an unfinished run; not reusing it", path)
        return None
    differing = _differing_fields(checkpoint, run)
    if differing:
        logger.warning(
            "checkpoint %s was written for a different run (%s differ); training again and "
            "overwriting it", path, ", ".join(differing),
        )
        return None

    model_config = SIAMConfig.from_dict(checkpoint["model_config"])
    model = SIAM(model_config, checkpoint["age_mean"], checkpoint["age_std"])
    model.load_state_dict(checkpoint["model_state"])
    model.to(device).eval()
    history = pd.DataFrame(checkpoint["history"], columns=list(HISTORY_COLUMNS))
    logger.info(
        "loaded finished run from %s (best epoch %d); not training", path, checkpoint["epoch"]
    )
    return model, history


def _build_training(
    model_config: SIAMConfig,
    train_config: TrainConfig,
    clips: np.ndarray,
    mask: np.ndarray,
    ages: np.ndarray,
    train_rows: np.ndarray,
    age_mean: float,
    age_std: float,
    seed: int,
    device: torch.device,
) -> tuple[SIAM, torch.optim.Optimizer, torch.Generator, DataLoader]:
    """Seed every generator and build the initial model, optimizer, generator and loader."""
    seed_everything(seed)
    model = SIAM(model_config, age_mean=age_mean, age_std=age_std).to(device)
    group = current_group()
    if group.rank > 0:
        # Same initial weights on every process, then independent dropout masks.
        torch.manual_seed(seed + DROPOUT_SEED_STRIDE * group.rank)
    if use_channels_last(train_config.channels_last, device):
        model = model.to(memory_format=torch.channels_last)

    optimizer_class = torch.optim.AdamW if train_config.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    if train_config.reweight_age_groups:
        weights = np.zeros(len(ages))
        weights[train_rows] = age_group_weights(ages[train_rows], train_config.age_group_edges)
        dataset = WeightedClipDataset(clips, mask, train_rows, ages, weights)
    else:
        dataset = ClipDataset(clips, mask, train_rows, ages)
    # Two seeded generators make a run repeat exactly: the loader's draws the batch order,
    # ``generator`` the flips and the augmentation (an option that is off draws nothing). The
    # order has its own generator because loader workers fetch batches ahead, which would move
    # the order's draws between the flips' draws. Items draw nothing, so workers change no
    # batch. Under torchrun every process draws the same numbers and reads the same whole
    # batches (see siamlib.training.distributed).
    generator = torch.Generator().manual_seed(seed + AUGMENTATION_SEED_OFFSET)
    loader = DataLoader(
        dataset,
        batch_size=train_config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        num_workers=train_config.num_workers,
        pin_memory=device.type == "cuda",
    )
    return model, optimizer, generator, loader


def _load_resume_state(path: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """Read the resume state of ``run``, or return None if it is missing, unreadable or foreign.

    Process 0 reads the file and sends the result to the others (see ``read_on_main``).
    """
    return read_on_main(lambda: _read_resume_state(path, run))


def _read_resume_state(path: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path)
        differing = _differing_fields(state, run)
    except UNREADABLE_STATE_ERRORS as error:
        logger.warning(
            "resume state %s cannot be read (%s: %s); training from epoch 1",
            path, type(error).__name__, error,
        )
        return None
    if differing:
        logger.info(
            "resume state %s was written for a different run (%s differ); ignoring it and "
            "training from epoch 1", path, ", ".join(differing),
        )
        return None
    return state


def _restore_training(
    state: dict[str, Any],
    model: SIAM,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    loader: DataLoader,
    device: torch.device,
) -> None:
    """Load a resume state's model, optimizer and generator states and check its best state.

    Raises:
        One of ``UNREADABLE_STATE_ERRORS`` if the state does not fit the model or optimizer or
        an entry is missing or invalid.
    """
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer_state"])
    process_states = state.get("process_rng_states")
    group = current_group()
    if group.enabled and process_states is not None and len(process_states) == group.world_size:
        set_rng_state(process_states[group.rank], generator, device)
    else:
        # Written by a different number of processes: every process continues from process
        # 0's generators, so the run goes on but does not repeat an uninterrupted one exactly.
        set_rng_state(state["rng_state"], generator, device)
    loader.generator.set_state(state["order_rng_state"])
    # The best state is loaded only after the last epoch, so check now that it will fit.
    best_state = state["best_state"]
    if best_state is not None:
        shapes = {key: value.shape for key, value in model.state_dict().items()}
        if {key: value.shape for key, value in best_state.items()} != shapes:
            raise ValueError("best_state does not match the model's state dict")


def _train(
    model_config: SIAMConfig,
    train_config: TrainConfig,
    clips: np.ndarray,
    mask: np.ndarray,
    ages: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    checkpoint_path: Path,
    run: dict[str, Any],
    device: torch.device,
    progress: bool,
) -> tuple[SIAM, pd.DataFrame]:
    """Train from epoch 1, or continue from a matching resume state; see :func:`train_fold`."""
    train_ages = ages[train_rows]
    age_mean = float(train_ages.mean())
    age_std = float(train_ages.std()) or 1.0

    def build() -> tuple[SIAM, torch.optim.Optimizer, torch.Generator, DataLoader]:
        return _build_training(
            model_config, train_config, clips, mask, ages, train_rows, age_mean, age_std,
            run["seed"], device,
        )

    group = current_group()
    model, optimizer, generator, loader = build()
    history: list[dict[str, float]] = []
    best_mae, best_epoch, best_state = math.inf, 0, None
    last_epoch, stopped = 0, False

    resume_path = resume_state_path(checkpoint_path)
    state = _load_resume_state(resume_path, run)
    if state is not None:
        try:
            _restore_training(state, model, optimizer, generator, loader, device)
            history = [dict(row) for row in state["history"]]
            best_mae, best_epoch = float(state["best_mae"]), int(state["best_epoch"])
            best_state = state["best_state"]
            last_epoch, stopped = int(state["epoch"]), bool(state["stopped"])
        except UNREADABLE_STATE_ERRORS as error:
            logger.warning(
                "resume state %s cannot be restored (%s: %s); training from epoch 1",
                resume_path, type(error).__name__, error,
            )
            model, optimizer, generator, loader = build()
            history = []
            best_mae, best_epoch, best_state = math.inf, 0, None
            last_epoch, stopped = 0, False
        else:
            logger.info(
                "%s: resuming from %s after epoch %d of %d", checkpoint_path.stem, resume_path,
                last_epoch, train_config.epochs,
            )

    def checkpoint(complete: bool, epoch: int, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            **run,
            "train_config": asdict(train_config),
            "complete": complete,
            "model_state": state,
            "epoch": epoch,
            "history": list(history),
            "age_mean": age_mean,
            "age_std": age_std,
        }

    def resume_state(epoch: int) -> dict[str, Any]:
        # Written at the very end of the epoch, after validation, so the global generator's
        # state includes every draw of the epoch. Every process calls this, because the
        # generators of all of them are gathered.
        rng_state = get_rng_state(generator, device)
        process_rng_states = gather_on_main(rng_state) if group.enabled else None
        return {
            **run,
            "train_config": asdict(train_config),
            "epoch": epoch,
            "stopped": stopped,
            "history": list(history),
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "best_mae": best_mae,
            "best_epoch": best_epoch,
            "best_state": best_state,
            "age_mean": age_mean,
            "age_std": age_std,
            "rng_state": rng_state,
            "process_rng_states": process_rng_states,
            "order_rng_state": loader.generator.get_state(),
        }

    def save(checkpoint: dict[str, Any], path: Path) -> None:
        if group.is_main:
            save_checkpoint(checkpoint, path)

    # The module that computes the loss: DDP's wrapper averages the gradients over the
    # processes; torch.compile's compiles the forward and backward passes. Checkpoints hold
    # the plain module's state.
    training_model: torch.nn.Module = model
    if group.enabled:
        # Every parameter of every model variant gets a gradient in every step, so DDP need
        # not search the graph for unused ones (find_unused_parameters is off by default).
        training_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if train_config.compile:
        training_model = torch.compile(training_model)

    # A run that early stopping ended before the interruption has no epoch left to run.
    first_epoch = train_config.epochs + 1 if stopped else last_epoch + 1
    epochs = tqdm(
        range(first_epoch, train_config.epochs + 1),
        desc=f"SIAM {checkpoint_path.stem}",
        unit="epoch",
        disable=not (progress and group.is_main),
        leave=False,
    )
    for epoch in epochs:
        train_loss = _train_epoch(
            training_model, loader, optimizer, train_config, device, generator, group
        )
        # Every process validates the same model (process 0's BatchNorm statistics) and takes
        # process 0's MAE, so all of them stop at the same epoch.
        broadcast_buffers(model)
        val_mae = math.nan
        if len(val_rows):
            predicted, _, _ = predict(
                model, clips, mask, val_rows, train_config.batch_size, device,
                train_config.precision,
            )
            val_mae = broadcast_float(float(np.abs(predicted - ages[val_rows]).mean()), device)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_mae": val_mae})
        epochs.set_postfix(train_loss=f"{train_loss:.2f}", val_mae=f"{val_mae:.2f}")

        if len(val_rows) == 0 or val_mae < best_mae:
            best_mae, best_epoch = val_mae, epoch
            best_state = {
                key: value.detach().cpu().clone() for key, value in model.state_dict().items()
            }
            save(checkpoint(False, best_epoch, best_state), checkpoint_path)
        elif epoch - best_epoch >= train_config.patience:
            stopped = True
        save(resume_state(epoch), resume_path)
        if stopped:
            logger.info(
                "%s: early stop after epoch %d, no lower validation MAE for %d epochs",
                checkpoint_path.stem, epoch, train_config.patience,
            )
            break

    if best_state is None:
        raise RuntimeError(
            f"training for {checkpoint_path} gave no finite validation MAE in {len(history)} "
            "epochs; try a lower learning_rate"
        )
    model.load_state_dict(best_state)
    model.eval()
    save(checkpoint(True, best_epoch, best_state), checkpoint_path)
    if group.is_main:
        resume_path.unlink(missing_ok=True)
    # No process goes on to read this fold's files before process 0 has written them.
    barrier()
    logger.info(
        "%s: best epoch %d of %d, validation MAE %.2f years; saved %s",
        checkpoint_path.stem, best_epoch, len(history), best_mae, checkpoint_path,
    )
    return model, pd.DataFrame(history, columns=list(HISTORY_COLUMNS))


def _train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    train_config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    group: ProcessGroup | None = None,
) -> float:
    """Run one epoch of optimisation and return the unweighted mean loss per training clip.

    The batches are ``ClipDataset`` items, or ``WeightedClipDataset`` items with the loss
    weight last. Flips and augmentation draw from ``generator`` only where the config enables
    them. ``model`` may be wrapped by DDP or ``torch.compile``; in a group of several
    processes (``group``), each one keeps its share of every batch after the flips and the
    augmentation, and the mean loss is over the clips of all of them.
    """
    group = group or ProcessGroup()
    model.train()
    temporal_min_fraction = (
        train_config.temporal_min_fraction if train_config.temporal_augment else None
    )
    dtype = autocast_dtype(train_config.precision, device)
    total_loss, num_clips = 0.0, 0
    for frames, frame_mask, target, *rest in loader:
        weight = rest[0] if rest else None
        if train_config.horizontal_flip:
            flip = torch.rand(len(frames), generator=generator) < 0.5  # (B,)
            frames[flip] = frames[flip].flip(-1)  # mirror along W, the same in every frame
        frames, frame_mask = augment_batch(
            frames, frame_mask, generator, temporal_min_fraction, train_config.spatial_augment
        )
        batch_clips = len(target)
        if group.enabled:
            frames, frame_mask, target, weight, counted = _shard_batch(
                frames, frame_mask, target, weight, group
            )
        frames = frames.to(device, non_blocking=True)
        frame_mask = frame_mask.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        weight = weight.to(device, non_blocking=True) if weight is not None else None

        with _autocast(device, dtype):
            prediction = model(frames, frame_mask).age
        prediction = prediction.float()
        assert prediction.shape == target.shape, (
            f"prediction shape {tuple(prediction.shape)} != target shape {tuple(target.shape)}"
        )
        if group.enabled:
            loss, loss_sum = _shard_loss(
                prediction, target, weight, counted.to(device), batch_clips, train_config, group
            )
        else:
            loss, unweighted_loss = batch_loss(prediction, target, train_config.loss, weight)
            loss_sum = unweighted_loss.item() * batch_clips
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        total_loss += loss_sum
        num_clips += batch_clips
    if group.enabled:
        # Every process counted all clips of every batch but summed its share of the losses.
        (total_loss,) = all_reduce_sum([total_loss], device)
    return total_loss / num_clips


def _shard_batch(
    frames: Tensor,
    frame_mask: Tensor,
    target: Tensor,
    weight: Tensor | None,
    group: ProcessGroup,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Keep this process's share of a batch, with a loss weight per clip (1 without weights).

    Returns the share's frames, mask, targets, weights and ``counted``, a bool (b,) that is
    False on a stand-in clip. A process whose share is empty (a batch with fewer clips than
    processes) keeps the batch's last clip with weight 0. DDP needs every process to run
    forward and backward, and the zero weight keeps the clip out of the gradient.
    """
    if weight is None:
        weight = torch.ones(len(target))
    keep = torch.from_numpy(shard_rows(len(target), group))
    if len(keep) == 0:
        last = torch.tensor([len(target) - 1])
        return (frames[last], frame_mask[last], target[last], torch.zeros(1),
                torch.zeros(1, dtype=torch.bool))
    counted = torch.ones(len(keep), dtype=torch.bool)
    return frames[keep], frame_mask[keep], target[keep], weight[keep], counted


def _shard_loss(
    prediction: Tensor,
    target: Tensor,
    weight: Tensor,
    counted: Tensor,
    batch_clips: int,
    train_config: TrainConfig,
    group: ProcessGroup,
) -> tuple[Tensor, float]:
    """Return a process's loss to minimise and its summed unweighted loss over its clips.

    The loss is the weighted sum over this process's clips, divided by the clips in the whole
    batch and multiplied by the number of processes. DDP's average of the processes'
    gradients is then the gradient of the batch's weighted mean loss. ``counted`` (b,) is
    False on a stand-in clip (see :func:`_shard_batch`), which the summed loss leaves out.
    """
    loss_function = F.l1_loss if train_config.loss == "l1" else F.mse_loss
    per_clip = loss_function(prediction, target, reduction="none")  # (b,)
    loss = (per_clip * weight).sum() * (group.world_size / batch_clips)
    loss_sum = float(per_clip.detach()[counted].sum().item())
    return loss, loss_sum
