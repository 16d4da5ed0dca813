"""Time one fold of a profile end to end: generate, split, preprocess, train and test.

Built to run on a GPU machine in under 5 minutes with the `paper` profile (profiles/paper.yaml
merged over params.yaml: 400 subjects, 256 x 256 frames, 32 frames of 128 x 128 per clip, at
most 100 epochs). The steps, each timed with time.perf_counter (after torch.cuda.synchronize
on CUDA), are:

    generate      the synthetic population (siamlib.data.synthetic), as notebooks/01_synthetic
    annotations   the annotation table with subject-disjoint folds, as notebooks/02_data
    clip_cache    aligned clips from the dataset's landmark tracks, as notebooks/03_preprocess
    train_fold    training on the other folds with early stopping, then the prediction of the
                  test fold (run_cross_validation with test_folds=[fold]), as
                  notebooks/04_train_siam

It writes OUT/gpu_fold.json and OUT/gpu_fold.md and prints the Markdown. The test MAE is
measured on the synthetic benchmark, not on UvA-NEMO. The script warns, and still exits 0,
when the whole run takes longer than 300 s.

Settings are applied in this order: params.yaml, the profile, each `--set section.key=value`
(the value parsed as YAML), then `--subjects`, `--epochs`, `--device`, `--compile` and
`--num-workers`. A smoke run on a CPU shrinks everything, for example:

    .venv/bin/python benchmarks/gpu_fold.py --device cpu --subjects 6 \
        --set synthetic.frame_size=96 preprocess.num_frames=8 preprocess.image_size=32 \
              'model.channels=[8,16,16,16]' train.epochs=1 splits.num_folds=2

Generation cost, measured on the 2-core x86_64 development machine (no GPU, shared with other
work) with 4 subjects (13 videos) in one process at frame_size 256: 1.9 s of CPU time and
3.4 s of wall time per subject. Extrapolated to 400 subjects on 16 workers, assuming one
full core per worker and linear scaling: about 50 s of CPU-bound time (90 s at the wall-time
rate). The clip cache took 0.1 s per video there, about 8 s for 1,240 videos on 16 workers.
NOTE: both numbers are extrapolations and have not been checked on a 16-core machine.
`--subjects` sets the population size if generation turns out too slow. The training time on
a GPU has not been measured: with 400 subjects and 5 folds a fold trains on about 790 clips,
so at most 100 epochs of about 100 batches of 8, each followed by a validation pass.

Usage:
    .venv/bin/python benchmarks/gpu_fold.py [--profile paper] [--fold 0] [--work DIR]
        [--out DIR] [--subjects N] [--epochs N] [--set section.key=value ...]
        [--device auto|cuda|cpu] [--compile] [--num-workers N] [--data-workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import yaml

from siamlib.data.datasets import load_dataset
from siamlib.data.splits import subject_folds
from siamlib.data.synthetic import SyntheticConfig, generate_dataset
from siamlib.data.uvanemo import FILE_DETAILS_NAME
from siamlib.params import load_params, merge_params
from siamlib.video.clips import build_clip_cache, load_clip_cache
from siamlib.video.extract import PreprocessSettings

# torch and siamlib's model and training modules are imported in the functions that use them.
# The worker processes of the generation and of the clip cache are spawned, and each one
# imports this script again. On the 2-core development machine, importing it took 5.3 s with
# torch and siamlib.training at the top and 0.8 s without them.
if TYPE_CHECKING:
    import torch

    from siamlib.training import TrainConfig

# The total time starts after the imports above (under 1 s) and includes the import of torch.
_STARTED = time.perf_counter()

REPOSITORY = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPOSITORY / "params.yaml"
BUDGET_SECONDS = 300.0
DATASET_LABEL = "synthetic benchmark (siamlib.data.synthetic), not UvA-NEMO"
STEPS: tuple[str, ...] = ("generate", "annotations", "clip_cache", "train_fold")
GENERATED_STAMP = "gpu_fold_generated.json"
"""File beside a generated dataset that records its config and seed, so a rerun can reuse it."""

logger = logging.getLogger("gpu_fold")
Result = TypeVar("Result")


class BenchmarkError(Exception):
    """An input or setting that makes the run impossible. Its message names the fix."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``section.key=value`` into the key path and the YAML-parsed value.

    Raises:
        argparse.ArgumentTypeError: If there is no "=" or a part of the key path is empty.
    """
    key, separator, value = text.partition("=")
    path = key.strip().split(".")
    if not separator or any(not part for part in path):
        raise argparse.ArgumentTypeError(
            f"invalid override {text!r}: expected section.key=value, e.g. train.epochs=3"
        )
    try:
        return path, yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(
            f"invalid override {text!r}: the value is not valid YAML ({error})"
        ) from None


def positive_int(text: str) -> int:
    """Parse a positive integer for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a positive number for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer >= 0 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Writes OUT/gpu_fold.json and OUT/gpu_fold.md. The test MAE is measured on the "
               "synthetic benchmark, not on UvA-NEMO.",
    )
    parser.add_argument(
        "--profile", default="paper",
        help="profile merged over params.yaml, a name in profiles/ or a YAML path "
             "(default: paper)",
    )
    parser.add_argument("--fold", type=non_negative_int, default=0,
                        help="the test fold to train for and test (default: 0)")

    parser.add_argument(
        "--work", type=Path, default=None,
        help="folder for the generated videos, annotations, clip cache and checkpoint. A "
             "folder from an earlier run with the same synthetic settings skips the "
             "generation and reuses the clip cache's per-video results (default: a temporary "
             "folder, deleted at the end)",
    )
    parser.add_argument("--out", type=Path, default=Path("work/gpu_fold"),
                        help="folder for gpu_fold.json and gpu_fold.md (default: work/gpu_fold)")

    parser.add_argument(
        "--subjects", type=positive_int, default=None,
        help="synthetic.num_subjects, the population size and the main knob on generation "
             "time (default: the profile's, 400 in paper, about 3.1 videos per subject)",
    )
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="train.epochs, the maximum number of epochs (default: the profile's)")
    parser.add_argument(
        "--set", dest="overrides", metavar="SECTION.KEY=VALUE", nargs="+", action="extend",
        type=parse_override, default=[],
        help="override a setting after the profile, the value parsed as YAML, e.g. "
             "train.batch_size=16 model.channels=[8,16,16,16]",
    )

    parser.add_argument(
        "--device", choices=("auto", "cuda", "cpu"), default=None,
        help="train.device, where auto uses CUDA when available (default: the profile's, "
             "cuda in paper)",
    )
    parser.add_argument("--compile", action="store_true", default=None,
                        help="set train.compile: compile the model with torch.compile")
    parser.add_argument("--num-workers", type=non_negative_int, default=None,
                        help="train.num_workers: DataLoader worker processes (default: the "
                             "profile's, 4 in paper)")

    parser.add_argument(
        "--budget", type=positive_float, default=BUDGET_SECONDS, metavar="SECONDS",
        help="warn when the whole run takes longer than this many seconds (default: 300)",
    )
    parser.add_argument(
        "--data-workers", type=positive_int, default=None,
        help="worker processes for generating the videos and building the clip cache "
             "(default: one per CPU core)",
    )
    return parser


def set_value(params: dict[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    """Return ``params`` with the setting at ``path`` replaced by ``value``.

    Raises:
        BenchmarkError: If the section does not exist in the params, or a part of the path
            below it is not a mapping.
    """
    section = path[0]
    if section not in params:
        raise BenchmarkError(
            f"--set {'.'.join(path)}: there is no section {section!r} in params.yaml. "
            f"Sections: {', '.join(params)}"
        )
    overrides: Any = value
    for part in reversed(path):
        overrides = {part: overrides}
    parent = params
    for part in path[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            raise BenchmarkError(
                f"--set {'.'.join(path)}: {part!r} is not a section of settings in the params"
            )
    return merge_params(params, overrides)


def resolve_params(arguments: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Load params.yaml with the profile, then apply the overrides of the command line.

    Returns:
        The params and the overrides applied, as ``section.key=value`` with JSON values.

    Raises:
        BenchmarkError: If the params or the profile cannot be read, or an override is invalid.
    """
    try:
        params = load_params(PARAMS_PATH, arguments.profile)
    except (FileNotFoundError, ValueError) as error:
        raise BenchmarkError(f"{error}. Pass --profile with an existing profile") from None
    applied = []
    for path, value in arguments.overrides:
        params = set_value(params, path, value)
        applied.append(f"{'.'.join(path)}={json.dumps(value)}")
    flags = {
        ("synthetic", "num_subjects"): arguments.subjects,
        ("train", "epochs"): arguments.epochs,
        ("train", "device"): arguments.device,
        ("train", "compile"): arguments.compile,
        ("train", "num_workers"): arguments.num_workers,
    }
    for path, value in flags.items():
        if value is not None:
            params = set_value(params, path, value)
            applied.append(f"{'.'.join(path)}={json.dumps(value)}")
    return params, applied


def resolve_device(requested: str) -> torch.device:
    """Map train.device to the device this run uses, as training does.

    Raises:
        BenchmarkError: If CUDA is requested but not available, or the name is unknown.
    """
    import torch

    from siamlib.training.reproducibility import resolve_device as resolve_training_device

    try:
        return resolve_training_device(requested)
    except ValueError as error:
        if requested != "cuda":
            raise BenchmarkError(f"train.device: {error}") from None
    raise BenchmarkError(
        f"CUDA was requested (train.device: cuda, from --device or the profile) but is not "
        f"available: torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no GPU. "
        "Run on a machine with a GPU, or pass --device cpu with small --set overrides for a "
        "smoke run"
    )


def synchronize(device: torch.device) -> None:
    """Wait for the queued CUDA work on ``device``. Does nothing on a CPU."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def run_step(
    number: int,
    name: str,
    function: Callable[[], Result],
    seconds: dict[str, float],
    device: torch.device,
) -> Result:
    """Run ``function`` as the step ``name``, store its wall time in ``seconds[name]``.

    Prints the name when the step starts and again with its time when it ends. Returns what
    ``function`` returns.
    """
    print(f"[{number}/{len(STEPS)}] {name} ...", flush=True)
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    seconds[name] = time.perf_counter() - start
    print(f"[{number}/{len(STEPS)}] {name}: {seconds[name]:.1f} s", flush=True)
    return result


def generate_population(
    root: Path, config: SyntheticConfig, seed: int, workers: int | None, progress: bool
) -> bool:
    """Generate the synthetic dataset into ``root``, unless it is already there.

    ``generate_dataset`` overwrites every file, which would also change the videos'
    modification times and so invalidate the clip cache's per-video results. A dataset is
    reused when the stamp written after its generation records the same config and seed.

    Returns:
        True if an earlier run's dataset was reused.
    """
    stamp_path = root / GENERATED_STAMP
    expected = {"config": config.to_dict(), "seed": seed}
    if stamp_path.is_file() and (root / FILE_DETAILS_NAME).is_file():
        try:
            stamp = json.loads(stamp_path.read_text())
        except json.JSONDecodeError:
            stamp = None
        if stamp == expected:
            logger.info("Reusing the synthetic dataset in %s (same config and seed)", root)
            return True
    stamp_path.unlink(missing_ok=True)
    generate_dataset(root, config, seed=seed, progress=progress, workers=workers)
    stamp_path.write_text(json.dumps(expected, indent=2) + "\n")
    return False


def build_annotations(
    root: Path, num_folds: int, seed: int, path: Path
) -> pd.DataFrame:
    """Read the dataset's annotations, assign subject-disjoint folds and write them to ``path``."""
    annotations = load_dataset({"name": "synthetic", "root": str(root), "videos_dir": "videos"})
    annotations["fold"] = subject_folds(annotations, num_folds, seed).to_numpy()
    annotations.to_csv(path, index=False)
    return annotations


def train_and_test_fold(
    params: dict[str, Any],
    clips_dir: Path,
    annotations: pd.DataFrame,
    fold: int,
    checkpoint_dir: Path,
    device: torch.device,
    progress: bool,
) -> tuple[dict[str, Any], TrainConfig]:
    """Train SIAM for one test fold from the clip cache and predict that fold's clips.

    The checkpoint folder is emptied first, so the fold always trains from epoch 1 instead
    of loading an earlier run's checkpoint.

    Returns:
        The clip counts, the epochs run, the best epoch and the test MAE, and the TrainConfig.

    Raises:
        BenchmarkError: If the fold has no clip, or the clips cannot be trained on.
    """
    import torch

    from siamlib.models.siam import SIAMConfig
    from siamlib.training import TrainConfig, load_checkpoint, run_cross_validation

    clips, mask, index = load_clip_cache(clips_dir)
    folds = annotations.set_index("video")["fold"]
    index["fold"] = folds.loc[index["video"]].to_numpy()
    if fold not in set(index["fold"]):
        raise BenchmarkError(
            f"no clip of fold {fold} is in the clip cache {clips_dir}. Pass a --fold that has "
            "videos, or more --subjects"
        )
    model_config = SIAMConfig.from_dict({**params["model"], "image_size": int(clips.shape[2])})
    train_config = TrainConfig.from_dict(params["train"])

    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        predictions, _, _, history = run_cross_validation(
            model_config, train_config, clips, mask, index,
            folds=index["fold"].to_numpy(),
            validation_fraction=params["splits"]["validation_fraction"],
            checkpoint_dir=checkpoint_dir,
            seed=int(params["seed"]),
            progress=progress,
            test_folds=[fold],
        )
    except ValueError as error:
        raise BenchmarkError(
            f"training fold {fold} failed: {error}. Check the splits, model and train settings, "
            "or pass more --subjects"
        ) from None
    # The checkpoint records the rows the fold trained on and the epoch of the kept model.
    checkpoint = load_checkpoint(checkpoint_dir / f"fold_{fold}.pt")
    errors = np.abs(predictions["predicted_age"] - predictions["age"])
    return {
        "clips_in_cache": int(len(index)),
        "training_clips": len(checkpoint["train_rows"]),
        "validation_clips": len(checkpoint["val_rows"]),
        "test_clips": int(len(predictions)),
        "epochs_run": int(len(history)),
        "best_epoch": int(checkpoint["epoch"]),
        "test_mae_years": float(errors.mean()),
    }, train_config


def cpu_name() -> str:
    """Return the CPU model from /proc/cpuinfo, else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device) -> dict[str, Any]:
    """Return the device, CPU and library versions of this run."""
    import torch

    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }


def build_report(
    arguments: argparse.Namespace,
    argv: Sequence[str],
    params: dict[str, Any],
    overrides: list[str],
    device: torch.device,
    seconds: dict[str, float],
    generation_reused: bool,
    annotations: pd.DataFrame,
    fold_result: dict[str, Any],
    train_config: TrainConfig,
    peak_memory: int | None,
) -> dict[str, Any]:
    """Collect the settings, timings and results of the run into the JSON report."""
    import torch

    from siamlib.training.fold import autocast_dtype, use_channels_last

    total = time.perf_counter() - _STARTED
    longest = max(seconds, key=seconds.__getitem__)
    precision = autocast_dtype(train_config.precision, device)
    train_seconds = seconds["train_fold"]
    return {
        "benchmark": "one cross-validation fold, from generation to the test MAE",
        "dataset": DATASET_LABEL,
        "command": shlex.join(["python", "benchmarks/gpu_fold.py", *argv]),
        "profile": arguments.profile,
        "fold": arguments.fold,
        "overrides": overrides,
        "machine": describe_machine(device),
        "settings": {
            "num_subjects": params["synthetic"]["num_subjects"],
            "frame_size": params["synthetic"]["frame_size"],
            "num_frames": params["preprocess"]["num_frames"],
            "image_size": params["preprocess"]["image_size"],
            "channels": params["model"]["channels"],
            "num_folds": params["splits"]["num_folds"],
            "max_epochs": train_config.epochs,
            "patience": train_config.patience,
            "batch_size": train_config.batch_size,
            "precision": train_config.precision,
            "precision_resolved": "bf16" if precision == torch.bfloat16 else "fp32",
            "channels_last": train_config.channels_last,
            "channels_last_resolved": use_channels_last(train_config.channels_last, device),
            "compile": train_config.compile,
            "num_workers": train_config.num_workers,
            "data_workers": arguments.data_workers or os.cpu_count(),
        },
        "data": {
            "videos": int(len(annotations)),
            "subjects": int(annotations["subject"].nunique()),
            "generation_reused": generation_reused,
            **{key: fold_result[key] for key in (
                "clips_in_cache", "training_clips", "validation_clips", "test_clips")},
        },
        "step_seconds": {name: round(seconds[name], 3) for name in STEPS},
        "total_seconds": round(total, 3),
        "budget_seconds": arguments.budget,
        "over_budget": total > arguments.budget,
        "longest_step": longest,
        "training": {
            "epochs_run": fold_result["epochs_run"],
            "best_epoch": fold_result["best_epoch"],
            # Over the whole train_fold step, which also validates after every epoch and
            # predicts the test fold, so the rate of the optimisation steps alone is higher.
            "clips_per_second": round(
                fold_result["training_clips"] * fold_result["epochs_run"] / train_seconds, 2
            ),
            "peak_gpu_memory_bytes": peak_memory,
        },
        "test_mae_years": round(fold_result["test_mae_years"], 4),
    }


def render_markdown(report: dict[str, Any]) -> str:
    """Format the report as a short Markdown page with the command, the machine and tables."""
    machine, settings, data, training = (
        report["machine"], report["settings"], report["data"], report["training"]
    )
    peak = training["peak_gpu_memory_bytes"]
    title = f"# One fold of the `{report['profile']}` profile"
    if report["overrides"]:
        title += ", with overrides"
    lines = [
        title,
        "",
        "```bash",
        report["command"],
        "```",
        "",
        f"Machine: {machine['device_name']} ({machine['device']}), {machine['cpu_count']} CPUs "
        f"({machine['cpu']}), torch {machine['torch_version']}, CUDA {machine['cuda_version']}, "
        f"Python {machine['python_version']}.",
        "",
        f"Settings: {settings['num_subjects']} subjects at {settings['frame_size']} px, "
        f"{settings['num_frames']} frames of {settings['image_size']} px per clip, fold "
        f"{report['fold']} of {settings['num_folds']}, at most {settings['max_epochs']} epochs "
        f"(patience {settings['patience']}), batch {settings['batch_size']}, precision "
        f"{settings['precision_resolved']}, channels_last {settings['channels_last_resolved']}, "
        f"compile {settings['compile']}, {settings['num_workers']} DataLoader workers, "
        f"{settings['data_workers']} data workers.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {seconds:.1f} |" for name, seconds in report["step_seconds"].items()),
        f"| total (process) | {report['total_seconds']:.1f} |",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| videos / subjects | {data['videos']} / {data['subjects']} |",
        f"| training / validation / test clips | {data['training_clips']} / "
        f"{data['validation_clips']} / {data['test_clips']} |",
        f"| epochs run / best epoch | {training['epochs_run']} / {training['best_epoch']} |",
        f"| training clips per second (train_fold step) | {training['clips_per_second']:.1f} |",
        f"| peak GPU memory | {'n/a (CPU)' if peak is None else f'{peak / 2**30:.2f} GiB'} |",
        f"| test MAE, synthetic benchmark (years) | {report['test_mae_years']:.2f} |",
        "",
        f"The test MAE is on the {report['dataset']}.",
    ]
    if data["generation_reused"]:
        lines.append("The generation step reused the dataset of an earlier run in the same "
                     "--work folder.")
    if report["over_budget"]:
        lines.append(f"Over the {report['budget_seconds']:g} s budget; the longest step is "
                     f"{report['longest_step']}.")
    return "\n".join(lines) + "\n"


def run_benchmark(arguments: argparse.Namespace, argv: Sequence[str], work: Path) -> dict[str, Any]:
    """Run the four steps in ``work`` and return the report."""
    import torch

    from siamlib.models.siam import SIAMConfig
    from siamlib.training import TrainConfig

    params, applied = resolve_params(arguments)
    device = resolve_device(params["train"]["device"])
    num_folds = params["splits"]["num_folds"]
    if arguments.fold >= num_folds:
        raise BenchmarkError(
            f"--fold {arguments.fold} is invalid: splits.num_folds is {num_folds}, so pass "
            f"--fold 0 to {num_folds - 1}"
        )
    # Train on the resolved device, so that "auto" cannot pick another one in training.
    params = set_value(params, ("train", "device"), device.type)
    # Check every section the steps read now, so that a typo fails before the generation.
    try:
        synthetic_config = SyntheticConfig.from_dict(params["synthetic"])
        settings = PreprocessSettings.from_params(params["preprocess"])
        SIAMConfig.from_dict({**params["model"], "image_size": settings.image_size})
        TrainConfig.from_dict(params["train"])
    except ValueError as error:
        raise BenchmarkError(
            f"invalid setting in the synthetic, preprocess, model or train section: {error}. "
            "Fix the profile or the --set override"
        ) from None
    seed = int(params["seed"])
    progress = sys.stderr.isatty()
    seconds: dict[str, float] = {}
    dataset_root = work / "synthetic"

    generation_reused = run_step(
        1, "generate",
        lambda: generate_population(
            dataset_root, synthetic_config, seed, arguments.data_workers, progress
        ),
        seconds, device,
    )
    annotations = run_step(
        2, "annotations",
        lambda: build_annotations(dataset_root, num_folds, seed, work / "annotations.csv"),
        seconds, device,
    )
    run_step(
        3, "clip_cache",
        lambda: build_clip_cache(
            annotations, landmarks_dir=dataset_root / "landmarks", out_dir=work / "clips",
            settings=settings, progress=progress, workers=arguments.data_workers,
        ),
        seconds, device,
    )
    fold_result, train_config = run_step(
        4, "train_fold",
        lambda: train_and_test_fold(
            params, work / "clips", annotations, arguments.fold, work / "checkpoints", device,
            progress,
        ),
        seconds, device,
    )
    peak_memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return build_report(
        arguments, argv, params, applied, device, seconds, generation_reused, annotations,
        fold_result, train_config, peak_memory,
    )


def prepare_work_folder(work: Path | None) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """Create the work folder, or a temporary one for None, which the caller must clean up.

    Raises:
        BenchmarkError: If ``work`` is the DVC pipeline's work folder.
    """
    if work is None:
        temporary = tempfile.TemporaryDirectory(prefix="gpu_fold_")
        return Path(temporary.name), temporary
    if work.resolve() == (REPOSITORY / "work").resolve():
        raise BenchmarkError(
            f"--work {work} is the DVC pipeline's folder, and this run would overwrite its "
            "synthetic, annotations.csv and clips outputs. Pass another folder, e.g. "
            "--work work/gpu_fold_data"
        )
    work.mkdir(parents=True, exist_ok=True)
    return work, None


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write gpu_fold.json and gpu_fold.md into ``out``, print them and the longest step."""
    json_path, markdown_path = out / "gpu_fold.json", out / "gpu_fold.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    markdown_path.write_text(markdown)
    print()
    print(markdown)
    print(json.dumps(report, indent=2))
    print(f"Wrote {json_path} and {markdown_path}")
    longest = report["longest_step"]
    print(f"Total {report['total_seconds']:.1f} s, longest step: {longest} "
          f"({report['step_seconds'][longest]:.1f} s)")
    if report["over_budget"]:
        logger.warning(
            "the run took %.1f s, over the %g s budget; the longest step is %s (%.1f s)",
            report["total_seconds"], report["budget_seconds"], longest,
            report["step_seconds"][longest],
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its report. Returns the exit status, 1 on an input error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    temporary = None
    try:
        # Created before the run, so that an unusable folder fails before minutes of work.
        arguments.out.mkdir(parents=True, exist_ok=True)
        work, temporary = prepare_work_folder(arguments.work)
        report = run_benchmark(arguments, argv, work)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if temporary is not None:
            temporary.cleanup()
    write_report(report, arguments.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
