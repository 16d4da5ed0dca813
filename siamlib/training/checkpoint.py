"""Fold checkpoints of SIAM: atomic writes and safe loading.

A checkpoint is a dict of plain Python values and tensors, so ``torch.load(weights_only=True)``
reads it without unpickling arbitrary objects. Keys:

- ``complete``: True only for the final checkpoint of a finished run;
- ``model_state``: the best model's state dict (CPU tensors, including the age buffers);
- ``model_config``, ``train_config``: the configs as dicts;
- ``seed``, ``train_rows``, ``val_rows``: what the run was trained on;
- ``epoch``: the epoch of the best state; ``history``: one dict per epoch run;
- ``age_mean``, ``age_std``: the training ages' mean and the head's scale in years.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


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
