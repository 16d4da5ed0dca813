"""Training on several processes with PyTorch DDP, one process per device, under torchrun.

torchrun starts one process per GPU (or per CPU share) and describes the group in the
environment variables ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_environment` joins that group (NCCL on CUDA, gloo on CPU)::

    torchrun --nproc-per-node 4 -m siamlib train --params params.yaml

How a fold is split (see ``siamlib.training.fold``): every process draws the same batch order
and the same flips and augmentation from the same seeded generator, reads the whole batch and
keeps its contiguous share (:func:`shard_rows`). Each process scales its summed loss so that
DDP's gradient average equals the gradient of the batch's mean loss, as one process computes
it. ``train.batch_size`` is therefore the effective batch over all processes, and a run on W
processes follows a run on one process step by step. torch's ``DistributedSampler`` is not
used: it shuffles with its own seed per epoch and gives each process a strided subset of the
data, so its batches differ from a single process's and the two runs would not agree.

What still differs from one process:
- BatchNorm normalises with each process's share of the batch (its own valid frames), not with
  the whole batch. Its running statistics are those of process 0, broadcast to all after every
  epoch.
- Dropout masks come from each process's own generator, seeded with the run's seed plus a
  stride times the process's rank.
- The gradient is summed in a different order.
So the runs agree within a tolerance, not bit for bit (``tests/test_distributed.py`` measures
it on the CPU with two gloo processes).

Process 0 alone reads and writes checkpoints and resume states, and shows progress. What it
reads it broadcasts (:func:`read_on_main`), so every process makes the same decision (a
finished fold, the epoch to resume after) even when the others cannot see its files, as on
several machines without a shared file system. A resume state keeps every process's random
number generators (:func:`gather_on_main`).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import distributed as dist

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Process r > 0 reseeds PyTorch's global generator, which draws the dropout masks, with the
# run's seed plus this times r, so that the processes draw independent masks.
DROPOUT_SEED_STRIDE = 7919


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the group: ``rank`` of ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on process 0, the one that writes files and logs progress."""
        return self.rank == 0


def current_group() -> ProcessGroup:
    """Return the initialised default process group, or a group of one process."""
    if dist.is_available() and dist.is_initialized():
        return ProcessGroup(dist.get_rank(), dist.get_world_size())
    return ProcessGroup()


def init_from_environment(device: str = "auto", timeout_s: float = 1800.0) -> ProcessGroup:
    """Join the process group that torchrun's environment variables describe, if any.

    With ``WORLD_SIZE`` unset or 1, nothing is initialised and a group of one is returned. On
    CUDA (``device`` "cuda", or "auto" with a GPU) the backend is NCCL and this process uses
    the GPU ``LOCAL_RANK``; otherwise the backend is gloo.

    Args:
        device: ``train.device`` of params.yaml: "auto", "cpu" or "cuda".
        timeout_s: How long a collective operation may wait for the other processes.

    Raises:
        ValueError: If ``WORLD_SIZE`` or ``RANK`` is not an integer, or CUDA is asked for with
            fewer GPUs than ``LOCAL_RANK`` needs.
    """
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as error:
        raise ValueError(
            f"WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them): {error}"
        ) from error
    if world_size <= 1:
        return ProcessGroup()
    if dist.is_initialized():
        return current_group()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} needs GPU {local_rank}, but "
                f"{torch.cuda.device_count()} are visible; start at most that many processes "
                "per node"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend="nccl" if use_cuda else "gloo",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    logger.info("process %d of %d joined the group (%s)", rank, world_size, dist.get_backend())
    return current_group()


def process_device(device: torch.device) -> torch.device:
    """Return this process's device: ``cuda:LOCAL_RANK`` for CUDA in a group, else ``device``."""
    if device.type == "cuda" and current_group().enabled:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_rows(batch_size: int, group: ProcessGroup) -> np.ndarray:
    """Return the positions in a batch of ``batch_size`` clips that process ``group.rank`` keeps.

    The batch is cut into ``world_size`` contiguous parts whose sizes differ by one at most,
    the larger ones first (as ``numpy.array_split``). A part may be empty when the batch has
    fewer clips than there are processes.
    """
    sizes = np.full(group.world_size, batch_size // group.world_size)
    sizes[: batch_size % group.world_size] += 1
    start = int(sizes[: group.rank].sum())
    return np.arange(start, start + int(sizes[group.rank]))


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over the processes of the group; unchanged for a group of one."""
    if not current_group().enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_float(value: float, device: torch.device) -> float:
    """Return process 0's ``value`` on every process; unchanged for a group of one."""
    if not current_group().enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy process 0's buffers (BatchNorm's running statistics) to every process."""
    if not current_group().enabled:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def read_on_main(read: Callable[[], T]) -> T:
    """Call ``read`` on process 0 and return its result on every process.

    The result is pickled and broadcast (``torch.distributed.broadcast_object_list``), so it
    may hold tensors, which arrive on the CPU as they left. For a group of one, ``read`` is
    called and nothing is sent.
    """
    group = current_group()
    if not group.enabled:
        return read()
    box = [read() if group.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_on_main(value: Any) -> list[Any] | None:
    """Return the ``value`` of every process, in rank order, on process 0 and None elsewhere.

    Every process of the group must call this. For a group of one it returns ``[value]``.
    """
    group = current_group()
    if not group.enabled:
        return [value]
    values: list[Any] | None = [None] * group.world_size if group.is_main else None
    dist.gather_object(value, values, dst=0)
    return values


def spread_across_processes(values: np.ndarray, device: torch.device) -> float:
    """Return the largest difference between processes of ``values`` (same shape on each).

    0 for a group of one. Every process of the group must call this.
    """
    if not current_group().enabled:
        return 0.0
    highest = torch.tensor(np.array(values, dtype=np.float64), device=device)
    lowest = highest.clone()
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    return float((highest - lowest).max().item()) if highest.numel() else 0.0


def barrier() -> None:
    """Wait until every process of the group reaches this point; no-op for a group of one."""
    if current_group().enabled:
        dist.barrier()
