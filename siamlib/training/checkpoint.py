"""Fold checkpoints and resume states of SIAM: atomic writes, safe loading, fingerprints.

A checkpoint is a dict of plain Python values and tensors, so ``torch.load(weights_only=True)``
reads it without unpickling arbitrary objects. Keys:

- ``complete``: True only for the final checkpoint of a finished run;
- ``model_state``: the best model's state dict (CPU tensors, including the age buffers);
- ``model_config``, ``train_config``: the configs as dicts;
- ``seed``, ``train_rows``, ``val_rows``: what the run was trained on;
- ``data``: :func:`data_fingerprint` of the clips, masks and ages of those rows;
- ``code``: :func:`code_fingerprint` of the training code and the PyTorch version;
- ``epoch``: the epoch of the best state; ``history``: one dict per epoch run;
- ``age_mean``, ``age_std``: the training ages' mean and the head's scale in years.

While a fold trains, a resume state sits next to its checkpoint (:func:`resume_state_path`)
and is rewritten after every epoch. It has the keys ``model_config``, ``train_config``,
``seed``, ``train_rows``, ``val_rows``, ``data``, ``code``, ``history``, ``age_mean`` and
``age_std`` as above, and:

- ``epoch``: the last epoch run; ``stopped``: True if early stopping ended training there;
- ``model_state``: the model's state dict after that epoch;
- ``optimizer_state``: the optimizer's state dict;
- ``best_mae``, ``best_epoch``, ``best_state``: the lowest validation MAE so far (inf while
  there is none), its epoch (0 while there is none) and the model's state dict then (None
  while there is none);
- ``rng_state``: the random number generators' states, see
  ``siamlib.training.reproducibility.get_rng_state``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Source files that determine what training a fold produces, as globs in the siamlib package.
TRAINING_SOURCES: tuple[str, ...] = (
    "models/*.py", "training/*.py", "config.py", "evaluation/metrics.py",
)


def save_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``checkpoint`` to ``path`` atomically: a temporary file, then ``os.replace``.

    A reader sees either the previous file or the new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(checkpoint, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def resume_state_path(checkpoint_path: str | os.PathLike[str]) -> Path:
    """Return the path of a checkpoint's resume state: ``fold_0.resume.pt`` for ``fold_0.pt``."""
    return Path(checkpoint_path).with_suffix(".resume.pt")


def data_fingerprint(
    clips: np.ndarray,
    mask: np.ndarray,
    ages: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
) -> str:
    """Hash the clips, masks and ages of the training and validation rows, in row order.

    Row indices alone do not identify the data: a rebuilt clip cache can contain other clips at
    the same rows. Reads every selected clip once, clip by clip, so a memory map is not loaded
    whole.

    Args:
        clips: uint8 (N, T, H, W, 3).
        mask: bool (N, T).
        ages: float64 (N,), in years.
        train_rows: Indices of the training clips.
        val_rows: Indices of the validation clips.

    Returns:
        The SHA-256 hex digest.
    """
    digest = hashlib.sha256()
    digest.update(repr(tuple(clips.shape[1:])).encode())
    for rows in (train_rows, val_rows):
        digest.update(len(rows).to_bytes(8, "little"))
        for row in rows:
            digest.update(np.ascontiguousarray(clips[row]).data)
            digest.update(np.ascontiguousarray(mask[row], dtype=np.bool_).data)
        digest.update(np.ascontiguousarray(ages[rows], dtype=np.float64).data)
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> dict[str, str]:
    """Hash the training code (:data:`TRAINING_SOURCES`) and record the PyTorch version.

    A checkpoint kept from before the code changed is then trained again, as it would be if
    DVC had deleted it. Any edit of these files counts, comments included.
    """
    package = Path(__file__).resolve().parent.parent  # siamlib/
    sources = sorted({path for pattern in TRAINING_SOURCES for path in package.glob(pattern)})
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    return {"sources": digest.hexdigest(), "torch": str(torch.__version__)}
