"""Time SIAM's training steps and inference with and without its two attentions.

Builds the default SIAM of params.yaml (64 x 64 crops, 16 frames, conv blocks 16-32-64-64,
LSTM of 64) and the same network without attention (`spatial_attention: none`,
`temporal_pooling: mean`), then times on random clips, in one run on this machine:

    train step   forward, L1 loss, backward and an AdamW step on a batch of 8 clips
    inference    forward of one clip in eval mode, no gradient (the latency of one video once
                 its clip is preprocessed)

Each variant first runs `--warmup` untimed calls. Then `--repeats` rounds go through the
variants in turn, each timing `--steps` calls, and the fastest round of each variant counts. Results print as a Markdown table with the ratio of each
variant to the network without attention; timings drift between runs, ratios less so.

Usage:
    .venv/bin/python benchmarks/attention_cost.py [--steps 20] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from siamlib.models.siam import SIAM, SIAMConfig

VARIANTS = {
    "SIAM (both attentions)": {},
    "spatial attention only": {"temporal_pooling": "mean"},
    "temporal attention only": {"spatial_attention": "none"},
    "no attention": {"spatial_attention": "none", "temporal_pooling": "mean"},
}
BATCH, FRAMES, SIZE = 8, 16, 64


def time_calls(step, steps: int, device: torch.device) -> float:
    """Return the mean time of `steps` calls of `step`, in seconds per call."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed calls per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before timing")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the fastest counts")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    torch.manual_seed(0)

    frames = torch.rand(BATCH, FRAMES, 3, SIZE, SIZE, device=device)  # (B, T, C, H, W)
    mask = torch.ones(BATCH, FRAMES, dtype=torch.bool, device=device)  # (B, T)
    target = torch.rand(BATCH, device=device) * 60 + 8  # (B,) ages in years
    calls = {}
    parameters = {}
    for name, overrides in VARIANTS.items():
        model = SIAM(SIAMConfig(**overrides), age_mean=30.0, age_std=15.0).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def train_step(model=model, optimizer=optimizer) -> None:
            model.train()
            loss = torch.nn.functional.l1_loss(model(frames, mask).age, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def inference(model=model) -> None:
            model.eval()
            with torch.no_grad():
                model(frames[:1], mask[:1])

        calls[name] = (train_step, inference)
        parameters[name] = sum(p.numel() for p in model.parameters())
        for _ in range(arguments.warmup):
            train_step()
            inference()

    # Repeats go round the variants, so a slow spell of the machine hits every variant alike.
    best = {name: [float("inf"), float("inf")] for name in VARIANTS}
    for _ in range(arguments.repeats):
        for name, (train_step, inference) in calls.items():
            best[name][0] = min(best[name][0], time_calls(train_step, arguments.steps, device))
            best[name][1] = min(best[name][1], time_calls(inference, arguments.steps, device))
    rows = [(name, parameters[name], *best[name]) for name in VARIANTS]

    baseline_step, baseline_latency = rows[-1][2], rows[-1][3]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}; batch {BATCH}, {FRAMES} frames of {SIZE}x{SIZE}")
    print()
    print("| variant | parameters | train step (ms) | clips/s | ratio | inference per clip (ms) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, parameters, step, latency in rows:
        print(f"| {name} | {parameters} | {1000 * step:.1f} | {BATCH / step:.0f} | {step / baseline_step:.2f} "
              f"| {1000 * latency:.1f} | {latency / baseline_latency:.2f} |")


if __name__ == "__main__":
    main()
