"""Time reading training batches from the clip cache against training on them.

The preprocess stage writes every aligned clip into one array, work/clips/clips.npy, which
training memory-maps. A fold's training, validation and test clips are row indices into it.
This script measures whether reading batches keeps the model busy, in one run on this
machine, on random clips of the default size (16 frames of 64 x 64 pixels):

    memmap, W workers   batches of 8 from the memory-mapped array through ClipDataset and a
                        DataLoader with W worker processes, shuffled, as training reads them
    one file per clip   the same batches when every clip is its own .npy file, the layout
                        that the single array replaces
    train step          forward, L1 loss, backward and AdamW on those batches with the
                        default SIAM (what reading has to keep up with)

Each row reads every clip once per round (an epoch). `--repeats` rounds go through the rows
in turn and the fastest round of each counts. The clips are written to a temporary folder
first, so they are in the operating system's page cache, as after training's first epoch.
Results print as a Markdown table in clips per second, with each row's ratio to the training
step. Timings drift between runs, ratios less so.

Usage:
    .venv/bin/python benchmarks/loader_speed.py [--clips 256] [--repeats 3] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.training.dataset import ClipDataset, frames_to_tensor

BATCH, FRAMES, SIZE = 8, 16, 64


class FilePerClipDataset(Dataset):
    """The items of :class:`ClipDataset`, each clip read from its own ``.npy`` file."""

    def __init__(self, folder: Path, mask: np.ndarray) -> None:
        self.folder = folder
        self.mask = mask

    def __len__(self) -> int:
        return len(self.mask)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = frames_to_tensor(np.load(self.folder / f"{i:05d}.npy"))
        return frames, torch.from_numpy(self.mask[i].copy()), torch.tensor(30.0)


def epoch_seconds(
    loader: DataLoader | list, step: Callable[..., None] | None = None
) -> float:
    """Return the seconds one pass over ``loader`` takes, calling ``step`` on each batch."""
    start = time.perf_counter()
    for frames, mask, ages in loader:
        if step is not None:
            step(frames, mask, ages)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256, help="clips in the cache")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the fastest counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to time on the memory map")
    arguments = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        clips = rng.integers(0, 256, (arguments.clips, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
        mask = np.ones((arguments.clips, FRAMES), dtype=bool)
        np.save(folder / "clips.npy", clips)
        (folder / "files").mkdir()
        for i, clip in enumerate(clips):
            np.save(folder / "files" / f"{i:05d}.npy", clip)
        del clips
        memmap = np.load(folder / "clips.npy", mmap_mode="r")
        rows = np.arange(arguments.clips)

        def loader(dataset: Dataset, workers: int) -> DataLoader:
            return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                              generator=torch.Generator().manual_seed(0))

        model = SIAM(SIAMConfig(image_size=SIZE, channels=(16, 32, 64, 64)), 30.0, 10.0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def train_step(frames: torch.Tensor, mask: torch.Tensor, ages: torch.Tensor) -> None:
            loss = (model(frames, mask).age - ages).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        # The training step reads its batches from memory, so it times the model alone.
        memmap_clips = ClipDataset(memmap, mask, rows)
        batches = list(loader(memmap_clips, 0))
        rounds: dict[str, Callable[[], float]] = {}
        for workers in arguments.workers:
            rounds[f"memmap, {workers} workers"] = (
                lambda workers=workers: epoch_seconds(loader(memmap_clips, workers))
            )
        rounds["one file per clip, 0 workers"] = lambda: epoch_seconds(
            loader(FilePerClipDataset(folder / "files", mask), 0)
        )
        rounds["train step (SIAM, default size)"] = lambda: epoch_seconds(batches, train_step)

        best = {name: float("inf") for name in rounds}
        for _ in range(arguments.repeats):
            for name, run in rounds.items():
                best[name] = min(best[name], run())

    train_rate = arguments.clips / best["train step (SIAM, default size)"]
    print(f"{platform.machine()}, {os.cpu_count()} logical CPUs, PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {arguments.clips} clips of "
          f"{FRAMES}x{SIZE}x{SIZE}, batches of {BATCH}, fastest of {arguments.repeats} rounds\n")
    print("| reading | clips/s | ratio to the training step |")
    print("|---|---:|---:|")
    for name, seconds in best.items():
        rate = arguments.clips / seconds
        print(f"| {name} | {rate:.0f} | {rate / train_rate:.1f} |")


if __name__ == "__main__":
    main()
