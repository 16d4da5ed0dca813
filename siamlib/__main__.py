"""Command-line tools of siamlib: ``python -m siamlib COMMAND``.

Commands:
    predict: estimate the age in one video with a trained SIAM checkpoint and draw the
        model's spatial and temporal attention (see :mod:`siamlib.predict`).
    train: train SIAM's fold checkpoints from the clip cache, as the ``train`` stage does, on
        one process or on several under torchrun (see :mod:`siamlib.training.distributed`).

Exit status: 0 on success, 1 when an input is unusable (the reason is one line on stderr) and
2 for invalid command-line arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

EXIT_FAILURE = 1


class CommandError(Exception):
    """An input the command cannot use. Its message names the input and the fix."""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m siamlib",
        description="Command-line tools of the SIAM age-estimation study.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", "-v", action="store_true", help="log progress messages to stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="estimate the age in a video and draw the model's attention",
        description=(
            "Estimate the age in a face video with a trained SIAM checkpoint. The video is "
            "aligned and sampled as in training, using the preprocess section of the params "
            "file. Writes a figure of the spatial attention over the aligned frames and the "
            "temporal attention weight over time, and optionally a video of the overlays."
        ),
    )
    predict.add_argument("video", type=Path, help="the video file, e.g. smile.mp4")
    predict.add_argument(
        "--checkpoint", type=Path, required=True,
        help="a SIAM checkpoint written by training, e.g. work/siam/checkpoints/fold_0.pt",
    )
    predict.add_argument(
        "--params", type=Path, default=Path("params.yaml"),
        help="params file whose preprocess section the checkpoint was trained with "
             "(default: params.yaml)",
    )
    predict.add_argument(
        "--figure", type=Path, default=None,
        help="output PNG of the attention figure (default: VIDEO_STEM_attention.png in the "
             "current folder)",
    )
    predict.add_argument(
        "--video", dest="attention_video", type=Path, default=None, metavar="OUT_VIDEO",
        help="also write the aligned frames with the spatial attention as an H.264 video, "
             "e.g. attention.mp4 (2 frames per second)",
    )
    predict.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="device to run the model on; auto uses CUDA when available (default: auto)",
    )
    predict.set_defaults(handler=run_predict)

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train SIAM on the clip cache's folds, also under torchrun on several devices",
        description=(
            "Train one SIAM per fold on the clip cache with the seed, splits, model and train "
            "sections of the params file, and write the fold checkpoints that the DVC stage "
            "`train` writes. The stage reuses finished checkpoints, so training here and "
            "running `dvc repro` afterwards skips the training in the stage. Under torchrun, "
            "each process trains on its share of every batch (train.batch_size is the batch "
            "over all processes), and process 0 writes the files and the log: "
            "torchrun --nproc-per-node 4 -m siamlib train"
        ),
    )
    train.add_argument(
        "--params", type=Path, default=Path("params.yaml"),
        help="the params file (default: params.yaml)",
    )
    train.add_argument(
        "--profile", default=None,
        help="merge profiles/PROFILE.yaml (beside the params file) over the params, e.g. paper",
    )
    train.add_argument(
        "--clips", type=Path, default=Path("work/clips"),
        help="the clip cache written by the preprocess stage (default: work/clips)",
    )
    train.add_argument(
        "--annotations", type=Path, default=Path("work/annotations.csv"),
        help="the annotations with each video's fold, written by the data stage "
             "(default: work/annotations.csv)",
    )
    train.add_argument(
        "--output", type=Path, default=Path("work/siam/checkpoints"),
        help="folder of the fold checkpoints (default: work/siam/checkpoints, the stage's)",
    )
    train.add_argument(
        "--folds", type=int, nargs="+", default=None,
        help="test folds to train for (default: all); the others are trained on",
    )
    train.add_argument(
        "--predictions", type=Path, default=None,
        help="also write the test predictions of the trained folds to this CSV file",
    )
    train.set_defaults(handler=run_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command and return its exit status.

    An unusable input is reported as one line on stderr, without a traceback.
    """
    parser = build_parser()
    arguments = parser.parse_args(argv)
    # Under torchrun, only process 0 logs progress; the others report warnings and errors.
    is_main = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(
        level=logging.INFO if arguments.verbose and is_main else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        arguments.handler(arguments)
    except CommandError as error:
        message = " ".join(str(error).split())
        print(f"{parser.prog} {arguments.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def load_preprocess_section(params_path: Path) -> dict[str, Any]:
    """Read the ``preprocess`` section of a params file.

    Raises:
        CommandError: If the file is missing, is not valid YAML or has no such section.
    """
    try:
        params = yaml.safe_load(params_path.read_text())
    except FileNotFoundError:
        raise CommandError(
            f"params file not found: {params_path}. Run from the repository root or pass "
            "--params with the file the checkpoint was trained with"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CommandError(
            f"cannot read params file {params_path} ({type(error).__name__}). Pass --params "
            "with a valid YAML file"
        ) from None
    if not isinstance(params, dict) or not isinstance(params.get("preprocess"), dict):
        raise CommandError(
            f"params file {params_path} has no preprocess section. Pass --params with the file "
            "the checkpoint was trained with"
        )
    return params["preprocess"]


def run_predict(arguments: argparse.Namespace) -> None:
    """Run ``predict``: load settings and model, predict, print the age, write the outputs.

    Raises:
        CommandError: If the params, checkpoint, device or video cannot be used, or an output
            cannot be written.
    """
    # Imported here so that `--help` and argument errors do not wait for PyTorch to load.
    import av

    from siamlib import predict
    from siamlib.training.reproducibility import resolve_device
    from siamlib.video.decode import VideoReadError
    from siamlib.video.extract import ClipExtractionError, PreprocessSettings

    video_path: Path = arguments.video
    figure_path: Path = arguments.figure or Path(f"{video_path.stem}_attention.png")

    section = load_preprocess_section(arguments.params)
    try:
        settings = PreprocessSettings.from_params(section)
    except ValueError as error:
        raise CommandError(
            f"invalid preprocess section in {arguments.params}: {error}. Fix that value"
        ) from None
    try:
        device = resolve_device(arguments.device)
    except ValueError as error:
        raise CommandError(f"{error}") from None

    try:
        model = predict.load_model(arguments.checkpoint, device)
    except predict.CheckpointError as error:
        hint = (
            "Pass --checkpoint a file written by training, e.g. work/siam/checkpoints/fold_0.pt"
            if error.reason == "file not found"
            else "Pass --checkpoint a SIAM checkpoint written by training, or retrain the fold "
                 "if this file is damaged"
        )
        raise CommandError(f"{error}. {hint}") from None
    try:
        predict.check_image_size(model, settings)
    except predict.ImageSizeMismatchError as error:
        raise CommandError(
            f"checkpoint {arguments.checkpoint} takes {error.model_size}x{error.model_size} "
            f"pixel crops but preprocess.image_size in {arguments.params} is "
            f"{error.settings_size}. Pass --params with the settings the checkpoint was "
            f"trained with, or set image_size to {error.model_size}"
        ) from None

    try:
        prediction = predict.predict_video(video_path, model, settings)
    except VideoReadError as error:
        raise CommandError(
            f"cannot read video {error.path}: {error.reason}. Check that the file exists and "
            "is a video FFmpeg can decode"
        ) from None
    except ClipExtractionError as error:
        raise CommandError(
            f"no usable face in {error.path}: {error.reason}. Use a video in which one face "
            "is visible and roughly frontal in most frames"
        ) from None
    except FileNotFoundError as error:
        # A missing video is a VideoReadError, so this is a missing model file of the landmark
        # tracker. Its message gives the command that installs it.
        raise CommandError(f"{error}") from None

    print(f"Estimated age: {prediction.age:.1f} years ({video_path})")
    try:
        predict.plot_attention(prediction, figure_path)
    except OSError as error:
        raise CommandError(
            f"cannot write the figure {figure_path}: {error.strerror or error}. Pass --figure "
            "with a writable path"
        ) from None
    print(f"Attention figure: {figure_path}")
    if arguments.attention_video is not None:
        try:
            predict.write_attention_video(prediction, arguments.attention_video)
        except (OSError, av.error.FFmpegError) as error:
            raise CommandError(
                f"cannot write the video {arguments.attention_video}: {error}. Pass --video "
                "with a writable path ending in .mp4"
            ) from None
        print(f"Attention video: {arguments.attention_video}")


def run_train(arguments: argparse.Namespace) -> None:
    """Run ``train``: read the params and the clip cache, train the folds, report their MAE.

    Raises:
        CommandError: If the params, the clip cache or the annotations cannot be used.
    """
    import numpy as np
    import pandas as pd
    from torch import distributed

    from siamlib.evaluation.predictions import write_predictions
    from siamlib.models.siam import SIAMConfig
    from siamlib.params import load_params
    from siamlib.training import TrainConfig, run_cross_validation
    from siamlib.training.distributed import (
        init_from_environment,
        process_device,
        spread_across_processes,
    )
    from siamlib.training.reproducibility import resolve_device
    from siamlib.video.clips import load_clip_cache

    try:
        params = load_params(arguments.params, arguments.profile)
        model_section, train_section = params["model"], params["train"]
        validation_fraction = params["splits"]["validation_fraction"]
        seed = int(params["seed"])
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"{error}. Pass --params (and --profile) that exist") from None
    except (KeyError, TypeError) as error:
        raise CommandError(
            f"params file {arguments.params} lacks {error}: it needs seed, splits, model and "
            "train sections as in the repository's params.yaml"
        ) from None
    try:
        clips, mask, index = load_clip_cache(arguments.clips)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"{error}. Run `dvc repro preprocess` first") from None
    try:
        folds = pd.read_csv(arguments.annotations).set_index("video")["fold"]
        index["fold"] = folds.loc[index["video"]].to_numpy()
    except FileNotFoundError:
        raise CommandError(
            f"annotations {arguments.annotations} not found. Run `dvc repro data` first"
        ) from None
    except KeyError as error:
        raise CommandError(
            f"annotations {arguments.annotations} do not match the clip cache {arguments.clips} "
            f"(missing {error}). Run `dvc repro preprocess` again"
        ) from None
    try:
        model_config = SIAMConfig.from_dict({**model_section, "image_size": int(clips.shape[2])})
        train_config = TrainConfig.from_dict(train_section)
    except ValueError as error:
        raise CommandError(f"invalid model or train section in {arguments.params}: {error}") from None

    group = init_from_environment(train_config.device)
    try:
        predictions, _, _, _ = run_cross_validation(
            model_config, train_config, clips, mask, index,
            folds=index["fold"].to_numpy(),
            validation_fraction=validation_fraction,
            checkpoint_dir=arguments.output,
            seed=seed,
            progress=group.is_main,
            test_folds=arguments.folds,
        )
        # Every process ends with the same models, so their predictions must agree.
        device = process_device(resolve_device(train_config.device))
        spread = spread_across_processes(predictions["predicted_age"].to_numpy(), device)
    except ValueError as error:
        raise CommandError(f"{error}") from None
    finally:
        if group.enabled:
            distributed.destroy_process_group()
    if not group.is_main:
        return
    if group.enabled:
        print(f"the {group.world_size} processes' test predictions differ by at most "
              f"{spread:.3g} years")
    errors = np.abs(predictions["predicted_age"] - predictions["age"])
    for fold, fold_errors in errors.groupby(predictions["fold"]):
        print(f"fold {fold}: test MAE {fold_errors.mean():.2f} years ({len(fold_errors)} videos)")
    print(f"checkpoints: {arguments.output} ({group.world_size} process(es))")
    if arguments.predictions is not None:
        write_predictions(predictions, arguments.predictions)
        print(f"predictions: {arguments.predictions}")


if __name__ == "__main__":
    sys.exit(main())
