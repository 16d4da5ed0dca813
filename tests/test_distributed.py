"""Tests for training on several processes (siamlib.training.distributed) and the speed options.

The end-to-end test starts two gloo processes on the CPU with torchrun, as a user would start
one process per GPU, on a clip cache of random pixels sized like the tiny profile's.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

import siamlib.training.fold as fold_module
from siamlib.__main__ import main
from siamlib.params import load_params, merge_params
from siamlib.training.checkpoint import load_checkpoint
from siamlib.training.config import TrainConfig
from siamlib.training.distributed import ProcessGroup, init_from_environment, shard_rows
from siamlib.models.siam import SIAM
from siamlib.training.fold import (
    _shard_batch,
    _shard_loss,
    autocast_dtype,
    batch_loss,
    predict,
    train_fold,
    use_channels_last,
)
from siamlib.video.clips import load_clip_cache
from test_train_options import MODEL_CONFIG, TRAIN_ROWS, VAL_ROWS, assert_same_weights, toy  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS, VIDEOS_PER_SUBJECT, T, S = 12, 2, 6, 32


@pytest.mark.parametrize("batch_size", [1, 2, 5, 8])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_shards_cover_the_batch_in_order(batch_size, world_size):
    shares = [shard_rows(batch_size, ProcessGroup(rank, world_size)) for rank in range(world_size)]
    np.testing.assert_array_equal(np.concatenate(shares), np.arange(batch_size))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("loss", ["l1", "mse"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch_size, world_size", [(5, 2), (8, 3), (2, 3)])
def test_average_of_shard_gradients_is_the_batch_gradient(loss, weighted, batch_size, world_size):
    """What DDP computes (the mean of the processes' gradients) equals one process's gradient."""
    generator = torch.Generator().manual_seed(batch_size * 10 + world_size)
    inputs = torch.randn(batch_size, 3, generator=generator)
    target = torch.randn(batch_size, generator=generator) * 10
    weight = torch.rand(batch_size, generator=generator) + 0.5 if weighted else None
    model = nn.Linear(3, 1)

    def gradient(loss_value: torch.Tensor) -> torch.Tensor:
        model.zero_grad()
        loss_value.backward()
        return torch.cat([model.weight.grad.flatten(), model.bias.grad])

    reference_loss, reference_mean = batch_loss(model(inputs).squeeze(1), target, loss, weight)
    reference = gradient(reference_loss)

    shard_gradients, summed = [], 0.0
    for rank in range(world_size):
        group = ProcessGroup(rank, world_size)
        frames, _, shard_target, shard_weight, counted = _shard_batch(
            inputs, torch.ones(batch_size, 1, dtype=torch.bool), target, weight, group
        )
        config = TrainConfig(loss=loss)
        shard_loss, shard_sum = _shard_loss(
            model(frames).squeeze(1), shard_target, shard_weight, counted, batch_size, config,
            group,
        )
        shard_gradients.append(gradient(shard_loss))
        summed += shard_sum
    torch.testing.assert_close(torch.stack(shard_gradients).mean(0), reference)
    assert summed / batch_size == pytest.approx(reference_mean.item(), rel=1e-6)


def test_empty_share_becomes_zero_weight_clip():
    frames = torch.arange(2.0)[:, None]
    share = _shard_batch(frames, torch.ones(2, 1, dtype=torch.bool), torch.tensor([3.0, 4.0]),
                         None, ProcessGroup(2, 3))
    _, _, target, weight, counted = share
    assert target.tolist() == [4.0]
    assert weight.tolist() == [0.0]
    assert counted.tolist() == [False]


def test_without_torchrun_there_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    group = init_from_environment("cpu")
    assert (group.rank, group.world_size, group.enabled, group.is_main) == (0, 1, False, True)


def test_malformed_torchrun_variable_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        init_from_environment("cpu")


def test_autocast_and_channels_last_resolve_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None
    assert autocast_dtype("auto", cuda) is torch.bfloat16
    assert autocast_dtype("fp32", cuda) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype("fp16", cpu)
    assert use_channels_last("auto", cpu) is False
    assert use_channels_last("auto", cuda) is True
    assert use_channels_last(True, cpu) is True


@pytest.mark.parametrize(
    "values, key",
    [({"num_workers": -1}, "num_workers"), ({"precision": "fp16"}, "precision"),
     ({"channels_last": "yes"}, "channels_last"), ({"compile": "yes"}, "compile")],
)
def test_invalid_speed_settings_are_named(values, key):
    with pytest.raises(ValueError, match=key):
        TrainConfig.from_dict(values)


def _train_config(**overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=4, learning_rate=3e-3, patience=5, device="cpu",
                  horizontal_flip=True)
    return TrainConfig(**{**values, **overrides})


def _fold(toy, path, config):  # noqa: F811
    clips, mask, ages = toy
    return train_fold(MODEL_CONFIG, config, clips, mask, ages, TRAIN_ROWS, VAL_ROWS, path,
                      seed=3, progress=False)


@pytest.mark.usefixtures("one_thread")
def test_loader_workers_change_nothing(toy, tmp_path):  # noqa: F811
    model, history = _fold(toy, tmp_path / "plain.pt", _train_config())
    workers, workers_history = _fold(toy, tmp_path / "workers.pt", _train_config(num_workers=2))
    pd.testing.assert_frame_equal(history, workers_history, check_exact=True)
    assert_same_weights(model, workers)


@pytest.mark.usefixtures("one_thread")
def test_bf16_and_channels_last_train_on_cpu(toy, tmp_path):  # noqa: F811
    _, history = _fold(toy, tmp_path / "fp32.pt", _train_config())
    model, bf16_history = _fold(
        toy, tmp_path / "bf16.pt", _train_config(precision="bf16", channels_last=True)
    )
    assert np.isfinite(bf16_history["val_mae"]).all()
    # bfloat16 keeps 8 bits of mantissa: the same run, not the same numbers.
    assert not bf16_history["train_loss"].equals(history["train_loss"])
    assert bf16_history["val_mae"].iloc[-1] == pytest.approx(history["val_mae"].iloc[-1], abs=2.0)
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())


@pytest.mark.usefixtures("one_thread")
def test_compiled_model_trains_and_saves_plain_state(toy, tmp_path):  # noqa: F811
    """torch.compile on the CPU (inductor, about 20 s): same run within float tolerance."""
    _, history = _fold(toy, tmp_path / "eager.pt", _train_config())
    model, compiled_history = _fold(toy, tmp_path / "compiled.pt", _train_config(compile=True))
    assert np.isfinite(compiled_history["val_mae"]).all()
    np.testing.assert_allclose(compiled_history["val_mae"], history["val_mae"], atol=0.5)
    state = load_checkpoint(tmp_path / "compiled.pt")["model_state"]
    assert state.keys() == model.state_dict().keys()
    assert not any(key.startswith(("_orig_mod.", "module.")) for key in state)


def test_bf16_predictions_keep_float32_ages(toy):  # noqa: F811
    """Autocast covers the network, but the head returns float32 ages, not 0.25-year steps."""
    clips, mask, _ = toy
    torch.manual_seed(0)
    model = SIAM(MODEL_CONFIG, age_mean=38.0, age_std=12.0).eval()
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.normal_(0.0, 0.3)
    rows = np.arange(8)
    fp32, _, _ = predict(model, clips, mask, rows, precision="fp32")
    bf16, _, _ = predict(model, clips, mask, rows, precision="bf16")
    assert np.abs(bf16 - fp32).max() < 0.05
    assert (bf16 * 4 % 1 != 0).any()


# End to end: torchrun with two gloo processes against one process.


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A clip cache of random pixels, annotations with two folds and tiny-profile params."""
    folder = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    rows = []
    for subject in range(SUBJECTS):
        age = int(rng.integers(10, 70))
        for clip in range(VIDEOS_PER_SUBJECT):
            rows.append({
                "video": f"{subject:03d}_{clip}.mp4", "subject": subject, "age": age, "gender": ["female", "male"][subject % 2],
                "smile_type": ["posed", "spontaneous"][clip % 2], "fold": subject % 2,
            })
    annotations = pd.DataFrame(rows)
    annotations.to_csv(folder / "annotations.csv", index=False)
    cache = folder / "clips"
    cache.mkdir()
    clips = rng.integers(0, 256, (len(rows), T, S, S, 3), dtype=np.uint8)
    mask = np.ones((len(rows), T), dtype=bool)
    mask[::4, -2:] = False
    np.save(cache / "clips.npy", clips)
    np.save(cache / "mask.npy", mask)
    annotations.assign(row=range(len(rows)), num_decoded=T, fps=25.0, status="ok", reason="") \
        .to_csv(cache / "index.csv", index=False)
    assert len(load_clip_cache(cache)[0]) == len(rows)
    params = merge_params(load_params(ROOT / "params.yaml", "tiny"), {"train": {"device": "cpu"}})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def _arguments(study: Path, name: str) -> list[str]:
    return ["train", "--params", str(study / "params.yaml"), "--clips", str(study / "clips"),
            "--annotations", str(study / "annotations.csv"), "--output", str(study / name),
            "--predictions", str(study / f"{name}.csv")]


def test_two_processes_agree_with_one(study, capsys, monkeypatch):
    assert main(_arguments(study, "one")) == 0
    capsys.readouterr()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "siamlib", "train", *_arguments(study, "two")[1:]],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Process 0 alone reports.
    assert result.stdout.count("fold 0: test MAE") == 1
    assert "(2 process(es))" in result.stdout
    # Both processes end with the same models: process 0's BatchNorm statistics everywhere.
    assert "test predictions differ by at most 0 years" in result.stdout

    one = pd.read_csv(study / "one.csv")
    two = pd.read_csv(study / "two.csv")
    pd.testing.assert_frame_equal(one.drop(columns="predicted_age"),
                                  two.drop(columns="predicted_age"))
    difference = (one["predicted_age"] - two["predicted_age"]).abs()
    # BatchNorm over half batches and per-process dropout make the runs differ a little.
    assert difference.max() < 0.05, difference.describe()
    assert (one["predicted_age"] != two["predicted_age"]).any()

    for fold in (0, 1):
        assert not (study / "two" / f"fold_{fold}.resume.pt").exists()
        single = load_checkpoint(study / "one" / f"fold_{fold}.pt")
        double = load_checkpoint(study / "two" / f"fold_{fold}.pt")
        assert double["complete"]
        assert double["train_rows"] == single["train_rows"]
        assert len(double["history"]) == len(single["history"])

    # The checkpoints are the ones the train stage reuses: one process loads them, trains
    # nothing and predicts what process 0 predicted.
    def no_training(*_arguments):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(fold_module, "_train_epoch", no_training)
    assert main(_arguments(study, "two")[:-1] + [str(study / "reloaded.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(study / "reloaded.csv"), two)
