"""Seeds, device choice and deterministic PyTorch settings for training."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Capture ``generator`` and the global random number generators, for a resume state.

    Every state is a CPU tensor or a plain number, so ``torch.load(weights_only=True)`` reads
    it back. Keys: ``generator`` (``generator``), ``torch`` (PyTorch's global CPU generator),
    ``cuda`` (a list with one tensor per GPU on a CUDA device, else empty), ``numpy_keys``,
    ``numpy_position``, ``numpy_has_gauss``, ``numpy_cached_gaussian`` (NumPy's global
    MT19937), ``python_version``, ``python_state``, ``python_gauss_next`` (``random``).
    """
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    python_version, python_state, python_gauss_next = random.getstate()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_position": int(position),
        "numpy_has_gauss": int(has_gauss),
        "numpy_cached_gaussian": float(cached_gaussian),
        "python_version": int(python_version),
        "python_state": torch.tensor(python_state, dtype=torch.int64),
        "python_gauss_next": python_gauss_next,
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Restore ``generator`` and the global generators from :func:`get_rng_state`'s dict.

    The CUDA states are restored only on a CUDA device with as many GPUs as when they were
    captured, and are skipped otherwise. NOTE: capturing and restoring the CUDA states has not
    been run on a GPU yet.

    Raises:
        KeyError: If a key is missing.
        TypeError, ValueError, RuntimeError: If a state is invalid.
    """
    generator_state = state["generator"]
    torch_state = state["torch"]
    numpy_state = (
        "MT19937",
        state["numpy_keys"].numpy().astype(np.uint32),
        int(state["numpy_position"]),
        int(state["numpy_has_gauss"]),
        float(state["numpy_cached_gaussian"]),
    )
    python_state = (
        int(state["python_version"]),
        tuple(int(value) for value in state["python_state"].tolist()),
        state["python_gauss_next"],
    )
    cuda_states = state["cuda"]
    generator.set_state(generator_state)
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    if device.type == "cuda" and cuda_states and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"``, ``"cpu"`` or ``"cuda"`` to a device; auto picks CUDA when available.

    Raises:
        ValueError: If ``device`` is unknown, or ``"cuda"`` is requested but not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            'device "cuda" was requested but CUDA is not available; use "auto" or "cpu"'
        )
    if device not in ("cpu", "cuda"):
        raise ValueError(f'device must be "auto", "cpu" or "cuda", got {device!r}')
    return torch.device(device)


@contextlib.contextmanager
def torch_settings(device: torch.device, num_threads: int | None) -> Iterator[None]:
    """Use deterministic algorithms and ``num_threads`` CPU threads, restoring both on exit.

    On CPU every operation SIAM uses has a deterministic implementation, so seeded runs repeat
    exactly. On CUDA, cuDNN autotuning is turned off and an operation without a deterministic
    kernel only warns. PyTorch's filling of uninitialised memory in deterministic mode is turned
    off: it only guards against reading memory before writing it, and it doubled the time of a
    SIAM training step on CPU (PyTorch 2.14, 2 threads).

    NOTE: cuBLAS is deterministic only when CUBLAS_WORKSPACE_CONFIG is set before CUDA starts.
    This sets it to ``:4096:8`` if unset, but that has no effect once CUDA ran in the process.
    The CUDA path has not been run yet.
    """
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    previous_cudnn_deterministic = torch.backends.cudnn.deterministic
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.backends.cudnn.benchmark = previous_benchmark
        torch.backends.cudnn.deterministic = previous_cudnn_deterministic
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill
