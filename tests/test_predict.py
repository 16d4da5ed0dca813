"""`python -m siamlib predict` and siamlib.predict: age, attention, figure, video and errors.

A tiny SIAM (32x32 input, 8x8 attention map) with a random, non-zero head is saved as a
checkpoint, so its age depends on the clip. Videos are 20 frames of 128x128 pixels: a rendered
synthetic face, and a uniform gray image without a face.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from siamlib.__main__ import main
from siamlib.data.synthetic.clip import sample_subject, synthesize_clip
from siamlib.data.synthetic.config import SyntheticConfig
from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.predict import (
    CheckpointError,
    ImageSizeMismatchError,
    VideoPrediction,
    attention_video_frames,
    load_model,
    plot_attention,
    predict_video,
    settings_for_video,
    upsample_attention,
    write_attention_video,
)
from siamlib.training.checkpoint import save_checkpoint
from siamlib.video.decode import read_video, write_video
from siamlib.video.extract import ClipExtractionError, PreprocessSettings

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUM_FRAMES = 6
IMAGE_SIZE = 32
MAP_SIZE = 8  # IMAGE_SIZE halved by each of the 2 conv blocks before the attention
AGE_MEAN = 30.0
PREPROCESS = {"num_frames": NUM_FRAMES, "image_size": IMAGE_SIZE, "landmarks": "dlib"}


def tiny_config() -> SIAMConfig:
    return SIAMConfig(
        image_size=IMAGE_SIZE, channels=(4, 8), attention_after_block=2,
        hidden_size=8, attention_size=4, dropout=0.0,
    )


def write_params(path: Path, preprocess: dict) -> Path:
    path.write_text(yaml.safe_dump({"seed": 0, "preprocess": preprocess}))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> SimpleNamespace:
    """A checkpoint, a params file, a synthetic face video and a gray video without a face."""
    folder = tmp_path_factory.mktemp("predict")

    torch.manual_seed(0)
    model = SIAM(tiny_config(), age_mean=AGE_MEAN, age_std=10.0)
    # Training starts the head at zero, which predicts AGE_MEAN for every clip. Random weights
    # make the age depend on the frames.
    torch.nn.init.normal_(model.head.weight, std=1.0)
    checkpoint = folder / "fold_0.pt"
    save_checkpoint(
        {
            "complete": True,
            "model_state": model.state_dict(),
            "model_config": dataclasses.asdict(model.config),
            "age_mean": AGE_MEAN,
            "age_std": 10.0,
            "epoch": 1,
        },
        checkpoint,
    )

    config = SyntheticConfig(fps=20, min_duration_s=1.0, max_duration_s=1.0)
    subject = sample_subject(1, 40, "female", config, seed=0)
    clip = synthesize_clip("001_x.mp4", subject, "spontaneous", 1, config, seed=0)
    face_video = folder / "face.mp4"
    write_video(face_video, np.stack(list(clip.frames())), fps=config.fps)  # (20, 128, 128, 3)

    gray_video = folder / "gray.mp4"
    write_video(gray_video, np.full((20, 128, 128, 3), 128, dtype=np.uint8), fps=20)

    return SimpleNamespace(
        checkpoint=checkpoint,
        params=write_params(folder / "params.yaml", PREPROCESS),
        face_video=face_video,
        gray_video=gray_video,
        num_frames=clip.num_frames,
    )


def run_main(capsys, *arguments) -> tuple[int, str, str]:
    """Run ``main`` in-process and return its exit status, stdout and stderr."""
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def manual_forward(model: SIAM, clip: np.ndarray, mask: np.ndarray):
    """Run the model on one uint8 clip (T, S, S, 3) scaled to [0, 1], without siamlib helpers."""
    frames = torch.tensor(clip, dtype=torch.float32) / 255.0  # (T, S, S, 3)
    frames = frames.permute(0, 3, 1, 2).unsqueeze(0)  # (1, T, 3, S, S)
    model.eval()
    with torch.no_grad():
        return model(frames, torch.tensor(mask).unsqueeze(0))


def hand_made_prediction(num_frames: int = 5, size: int = 16, valid: int = 3) -> VideoPrediction:
    """A prediction of a random clip whose last positions are padding.

    The clip is a stand-in with the ExtractedClip fields that drawing reads.
    """
    rng = np.random.default_rng(0)
    mask = np.arange(num_frames) < valid
    clip = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
    clip[~mask] = 0
    indices = np.minimum(np.arange(num_frames) * 4, 4 * (valid - 1))
    spatial = rng.random((num_frames, 4, 4)).astype(np.float32)
    spatial[~mask] = 0
    temporal = np.where(mask, 1.0 / valid, 0.0).astype(np.float32)
    extracted = SimpleNamespace(
        clip=clip, mask=mask, indices=indices, fps=25.0, num_decoded=4 * valid,
        timestamps=np.arange(4 * valid) / 25.0,
    )
    return VideoPrediction(Path("hand_made.mp4"), 42.0, extracted, spatial, temporal)


# Prediction on a rendered face.

def test_predict_video_matches_model_forward(files):
    model = load_model(files.checkpoint, "cpu")
    settings = PreprocessSettings.from_params(PREPROCESS)

    prediction = predict_video(files.face_video, model, settings)

    extracted = prediction.extracted
    assert extracted.clip.shape == (NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert extracted.mask.all()
    assert prediction.spatial_attention.shape == (NUM_FRAMES, MAP_SIZE, MAP_SIZE)
    assert prediction.temporal_attention.shape == (NUM_FRAMES,)
    assert prediction.temporal_attention.sum() == pytest.approx(1.0, abs=1e-5)
    expected = manual_forward(model, extracted.clip, extracted.mask)
    assert prediction.age == pytest.approx(float(expected.age[0]), abs=1e-4)
    np.testing.assert_allclose(
        prediction.spatial_attention, expected.spatial_attention[0].numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        prediction.temporal_attention, expected.temporal_attention[0].numpy(), atol=1e-6
    )
    # The random head makes the age depend on the frames, so the comparison above can fail.
    assert abs(prediction.age - AGE_MEAN) > 0.01


def test_predict_times_follow_frame_indices(files):
    model = load_model(files.checkpoint, "cpu")
    prediction = predict_video(files.face_video, model, PreprocessSettings.from_params(PREPROCESS))

    extracted = prediction.extracted
    assert extracted.num_decoded == files.num_frames
    assert extracted.fps == pytest.approx(20.0)
    np.testing.assert_allclose(prediction.times, extracted.indices / 20.0)
    assert prediction.times[0] == 0.0
    assert prediction.times[-1] == pytest.approx((files.num_frames - 1) / 20.0)


def test_cli_prints_age_and_writes_figure(files, tmp_path, capsys):
    figure = tmp_path / "figures" / "face.png"

    status, out, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", files.params, "--figure", figure, "--device", "cpu",
    )

    assert status == 0, err
    model = load_model(files.checkpoint, "cpu")
    age = predict_video(files.face_video, model, PreprocessSettings.from_params(PREPROCESS)).age
    assert f"Estimated age: {age:.1f} years ({files.face_video})" in out
    assert figure.read_bytes().startswith(PNG_SIGNATURE)


def test_cli_default_figure_in_current_folder(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    status, out, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", files.params, "--device", "cpu",
    )

    assert status == 0, err
    assert (tmp_path / "face_attention.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "face_attention.png" in out


def test_cli_video_is_decodable(files, tmp_path, capsys):
    output = tmp_path / "overlay.mp4"

    status, out, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", files.params, "--figure", tmp_path / "f.png", "--video", output,
        "--device", "cpu",
    )

    assert status == 0, err
    frames, fps = read_video(output)
    assert frames.shape == (NUM_FRAMES, 4 * IMAGE_SIZE, 4 * IMAGE_SIZE, 3)
    assert fps == pytest.approx(2.0)
    assert str(output) in out


def test_dataset_landmarks_become_dlib():
    settings = PreprocessSettings.from_params({**PREPROCESS, "landmarks": "dataset"})

    assert settings_for_video(settings).landmarks == "dlib"
    assert settings_for_video(settings).image_size == IMAGE_SIZE
    haar = dataclasses.replace(settings, landmarks="haar")
    assert settings_for_video(haar) == haar


# Failures.

def test_gray_video_fails_naming_file(files, tmp_path, capsys):
    status, out, err = run_main(
        capsys, "predict", files.gray_video, "--checkpoint", files.checkpoint,
        "--params", files.params, "--figure", tmp_path / "f.png", "--device", "cpu",
    )

    assert status == 1
    assert str(files.gray_video) in err
    assert "no usable face" in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""
    assert not (tmp_path / "f.png").exists()


def test_gray_video_raises_in_library(files):
    model = load_model(files.checkpoint, "cpu")

    with pytest.raises(ClipExtractionError) as raised:
        predict_video(files.gray_video, model, PreprocessSettings.from_params(PREPROCESS))

    assert Path(raised.value.path) == files.gray_video


def test_gray_video_subprocess_has_no_traceback(files, tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "siamlib", "predict", str(files.gray_video),
        "--checkpoint", str(files.checkpoint), "--params", str(files.params), "--device", "cpu",
    ]

    result = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert str(files.gray_video) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("python -m siamlib predict: error:")
    assert list(tmp_path.iterdir()) == []


def test_missing_video_fails_naming_file(files, tmp_path, capsys):
    missing = tmp_path / "absent.mp4"

    status, _, err = run_main(
        capsys, "predict", missing, "--checkpoint", files.checkpoint, "--params", files.params,
        "--figure", tmp_path / "f.png", "--device", "cpu",
    )

    assert status == 1
    assert str(missing) in err
    assert "file not found" in err


def test_missing_checkpoint_message(files, tmp_path, capsys):
    missing = tmp_path / "fold_9.pt"

    status, out, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", missing, "--params", files.params,
        "--device", "cpu",
    )

    assert status == 1
    assert out == ""
    assert str(missing) in err
    assert "file not found" in err
    assert "--checkpoint" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "file is empty"),
        (b"not a checkpoint", "not a readable PyTorch checkpoint"),
        (None, "keys ['model_state', 'model_config'] are missing"),
    ],
    ids=["empty", "garbage", "missing-keys"],
)
def test_corrupt_checkpoint_message(files, tmp_path, capsys, content, reason):
    checkpoint = tmp_path / "bad.pt"
    if content is None:
        torch.save({"age_mean": 30.0, "age_std": 10.0}, checkpoint)
    else:
        checkpoint.write_bytes(content)

    status, _, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", checkpoint, "--params", files.params,
        "--device", "cpu",
    )

    assert status == 1
    assert str(checkpoint) in err
    assert reason in err
    assert len(err.strip().splitlines()) == 1


def test_truncated_checkpoint_raises_checkpoint_error(files, tmp_path):
    truncated = tmp_path / "truncated.pt"
    data = files.checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])

    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(truncated)


def test_state_of_other_architecture_rejected(files, tmp_path):
    checkpoint = torch.load(files.checkpoint, weights_only=True)
    checkpoint["model_config"] = {**checkpoint["model_config"], "hidden_size": 16}
    other = tmp_path / "other.pt"
    save_checkpoint(checkpoint, other)

    with pytest.raises(CheckpointError, match="does not contain a valid SIAM model"):
        load_model(other)


def test_image_size_mismatch_message(files, tmp_path, capsys):
    params = write_params(tmp_path / "params64.yaml", {**PREPROCESS, "image_size": 64})

    status, _, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", params, "--figure", tmp_path / "f.png", "--device", "cpu",
    )

    assert status == 1
    assert str(files.checkpoint) in err
    assert str(params) in err
    assert "32x32" in err
    assert "image_size" in err
    assert "is 64" in err
    assert not (tmp_path / "f.png").exists()


def test_image_size_mismatch_raises_before_reading(files, tmp_path):
    model = load_model(files.checkpoint)
    settings = PreprocessSettings.from_params({**PREPROCESS, "image_size": 64})

    with pytest.raises(ImageSizeMismatchError) as raised:
        predict_video(tmp_path / "never_read.mp4", model, settings)

    assert raised.value.model_size == IMAGE_SIZE
    assert raised.value.settings_size == 64


def test_missing_params_file_message(files, tmp_path, capsys):
    missing = tmp_path / "params.yaml"

    status, _, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", missing,
    )

    assert status == 1
    assert str(missing) in err
    assert "not found" in err


def test_params_without_preprocess_message(files, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")

    status, _, err = run_main(
        capsys, "predict", files.face_video, "--checkpoint", files.checkpoint,
        "--params", params,
    )

    assert status == 1
    assert "no preprocess section" in err


# Drawing, on a hand-made prediction with padding.

@pytest.mark.parametrize("valid", [1, 3])
def test_plot_attention_writes_png(tmp_path, valid):
    prediction = hand_made_prediction(valid=valid)

    path = plot_attention(prediction, tmp_path / "deep" / "attention.png")

    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_video_frames_skip_padding():
    prediction = hand_made_prediction(num_frames=5, size=16, valid=3)

    frames = attention_video_frames(prediction, scale=4)

    assert frames.shape == (3, 64, 64, 3)
    assert frames.dtype == np.uint8


def test_video_frames_even_for_odd_size():
    prediction = hand_made_prediction(size=15)

    frames = attention_video_frames(prediction, scale=1)

    assert frames.shape[1:3] == (16, 16)


def test_overlay_brighter_where_attention_high():
    prediction = hand_made_prediction(num_frames=1, size=16, valid=1)
    prediction.extracted.clip[:] = 128
    prediction.spatial_attention[:] = 0.0
    prediction.spatial_attention[0, :, 2:] = 1.0  # right half of the 4x4 map

    frame = attention_video_frames(prediction, scale=1)[0].astype(int)  # (16, 16, 3)

    assert frame[:, -1].sum() > frame[:, 0].sum()


def test_write_attention_video_round_trip(tmp_path):
    path = write_attention_video(hand_made_prediction(valid=3), tmp_path / "sub" / "a.mp4")

    frames, fps = read_video(path)
    assert frames.shape == (3, 64, 64, 3)
    assert fps == pytest.approx(2.0)


def test_upsample_keeps_constant_map():
    maps = np.full((2, 4, 4), 0.3, dtype=np.float32)

    resized = upsample_attention(maps, 16)

    assert resized.shape == (2, 16, 16)
    np.testing.assert_allclose(resized, 0.3, atol=1e-6)


# Command line.

def test_help_lists_predict():
    result = subprocess.run(
        [sys.executable, "-m", "siamlib", "--help"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )

    assert result.returncode == 0
    assert "predict" in result.stdout


def test_missing_checkpoint_option_is_usage_error(files, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["predict", str(files.face_video)])

    assert raised.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err
