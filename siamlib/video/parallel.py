"""Run per-video work in worker processes, and write per-video result files atomically.

Both the clip cache (`siamlib.video.clips`) and dlib's tracker (`siamlib.video.dlib_tracker`)
process one video per task. Workers are started with "spawn": a forked child inherits locks
held by the parent's threads (OpenCV, PyTorch) and can deadlock. Spawning imports the caller's
main module again, so a script that runs more than one worker must guard its entry point with
`if __name__ == "__main__":` (notebooks need no guard).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm


def _init_worker() -> None:
    # One OpenCV thread per worker process, because the pool already uses the cores.
    cv2.setNumThreads(1)


def run_tasks(
    function: Callable[[dict[str, Any]], dict[str, Any]],
    tasks: list[dict[str, Any]],
    workers: int,
    progress: bool,
    description: str,
) -> list[dict[str, Any]]:
    """Apply a function to every task, in worker processes, and return the results in task order.

    Args:
        function: A module-level function (so that spawned workers can import it) that takes
            one task and returns its result. Every task has a unique "position" key, and each
            result must carry its task's "position" back.
        tasks: The tasks, e.g. one per video.
        workers: Worker processes; with 1, or a single task, everything runs in this process.
        progress: Whether to show a tqdm progress bar over the tasks.
        description: The progress bar's label.

    Returns:
        One result per task, in the order of `tasks`.
    """
    results: dict[int, dict[str, Any]] = {}
    bar = tqdm(total=len(tasks), desc=description, unit="video", disable=not progress)
    with bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                results[task["position"]] = function(task)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_worker
            ) as pool:
                futures = [pool.submit(function, task) for task in tasks]
                for future in concurrent.futures.as_completed(futures):
                    result = future.result()
                    results[result["position"]] = result
                    bar.update(1)
    return [results[task["position"]] for task in tasks]


def write_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Write arrays to an `.npz` file under a temporary name, then rename it into place.

    Readers see the old file or the complete new one, never a partial write, even when several
    worker processes write into the same folder. numpy 2 stores a fixed timestamp in the
    archive, so the same arrays give the same bytes.

    Args:
        path: Output file in an existing folder.
        **arrays: The arrays to store, by name.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
