"""Tests for siamlib.train on a toy task: the brightness of a clip's frames encodes the age.

Toy clips: N=40 clips of T=4 frames, 16x16 pixels, one subject per two clips; every third clip
has its last frame padded.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import siamlib.training.fold as fold_module
from siamlib.models.siam import SIAMConfig
from siamlib.train import (
    ClipDataset,
    TrainConfig,
    load_checkpoint,
    predict,
    run_cross_validation,
    train_fold,
)

N, T, S = 40, 4, 16
TRAIN_ROWS = np.arange(30)
VAL_ROWS = np.arange(30, 40)
MODEL_CONFIG = SIAMConfig(
    image_size=S, channels=(4, 8), attention_after_block=1, hidden_size=8, attention_size=4,
    dropout=0.0,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    subject_ages = rng.uniform(10, 60, N // 2)
    ages = np.repeat(subject_ages, 2)
    brightness = ages[:, None, None, None, None] / 70 * 255
    clips = np.clip(brightness + rng.normal(0, 10, (N, T, S, S, 3)), 0, 255).astype(np.uint8)
    mask = np.ones((N, T), dtype=bool)
    mask[::3, -1] = False
    return clips, mask, ages


def train_config(**overrides) -> TrainConfig:
    values = dict(epochs=20, batch_size=8, learning_rate=3e-3, patience=20, device="cpu")
    return TrainConfig(**{**values, **overrides})


def test_dataset_item_layout(toy):
    clips, mask, ages = toy
    frames, frame_mask, age = ClipDataset(clips, mask, np.array([3, 7]), ages)[0]
    assert frames.shape == (T, 3, S, S)
    assert frames.dtype == torch.float32
    assert frames[1, 2, 5, 9].item() == pytest.approx(clips[3, 1, 5, 9, 2] / 255)
    assert torch.equal(frame_mask, torch.from_numpy(mask[3]))
    assert age.item() == pytest.approx(ages[3])


def test_dataset_without_ages_gives_nan(toy):
    clips, mask, _ = toy
    _, _, age = ClipDataset(clips, mask, np.array([0]))[0]
    assert math.isnan(age.item())


def test_dataset_bad_rows_raise(toy):
    clips, mask, _ = toy
    with pytest.raises(ValueError, match="rows must index the 40 clips"):
        ClipDataset(clips, mask, np.array([0, 40]))
    with pytest.raises(ValueError, match="repeated"):
        ClipDataset(clips, mask, np.array([1, 1]))


def test_dataset_float_clips_raise(toy):
    clips, mask, _ = toy
    with pytest.raises(ValueError, match="clips must be a uint8 array"):
        ClipDataset(clips.astype(np.float32), mask, np.array([0]))


def test_train_fold_learns_toy_task(toy, tmp_path):
    clips, mask, ages = toy
    _, history = train_fold(
        MODEL_CONFIG, train_config(), clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
        tmp_path / "fold_0.pt", seed=0, progress=False,
    )
    mean_prediction_mae = np.abs(ages[VAL_ROWS] - ages[TRAIN_ROWS].mean()).mean()
    assert list(history.columns) == ["epoch", "train_loss", "val_mae"]
    assert history["val_mae"].min() < 0.4 * mean_prediction_mae
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_train_fold_checkpoint_contents(toy, tmp_path):
    clips, mask, ages = toy
    path = tmp_path / "fold_0.pt"
    model, history = train_fold(
        MODEL_CONFIG, train_config(epochs=3), clips, mask, ages, TRAIN_ROWS, VAL_ROWS, path,
        seed=0, progress=False,
    )
    checkpoint = load_checkpoint(path)
    assert checkpoint["complete"] is True
    assert checkpoint["epoch"] == int(history["val_mae"].idxmin()) + 1
    assert checkpoint["age_mean"] == pytest.approx(ages[TRAIN_ROWS].mean())
    assert checkpoint["age_std"] == pytest.approx(ages[TRAIN_ROWS].std())
    assert checkpoint["model_config"]["channels"] == (4, 8)
    assert checkpoint["train_config"]["epochs"] == 3
    assert checkpoint["train_rows"] == TRAIN_ROWS.tolist()
    assert len(checkpoint["history"]) == 3
    assert not model.training
    assert list(tmp_path.iterdir()) == [path]


def test_train_fold_resume_loads(toy, tmp_path, monkeypatch):
    clips, mask, ages = toy
    path = tmp_path / "fold_0.pt"
    config = train_config(epochs=3)
    model, history = train_fold(
        MODEL_CONFIG, config, clips, mask, ages, TRAIN_ROWS, VAL_ROWS, path, seed=0, progress=False
    )
    written = path.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("a finished fold must not be trained again")

    monkeypatch.setattr(fold_module, "_train_epoch", fail)
    loaded, loaded_history = train_fold(
        MODEL_CONFIG, train_config(epochs=3, num_threads=1), clips, mask, ages, TRAIN_ROWS,
        VAL_ROWS, path, seed=0, progress=False,
    )
    pd.testing.assert_frame_equal(history, loaded_history)
    assert path.stat().st_mtime_ns == written
    expected = predict(model, clips, mask, VAL_ROWS)[0]
    assert np.array_equal(predict(loaded, clips, mask, VAL_ROWS)[0], expected)


def test_train_fold_incomplete_checkpoint_retrains(toy, tmp_path, monkeypatch):
    clips, mask, ages = toy
    path = tmp_path / "fold_0.pt"
    train_fold(MODEL_CONFIG, train_config(epochs=2), clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
               path, seed=0, progress=False)
    checkpoint = load_checkpoint(path)
    torch.save({**checkpoint, "complete": False}, path)

    calls = []
    original = fold_module._train_epoch
    monkeypatch.setattr(fold_module, "_train_epoch", lambda *a: calls.append(1) or original(*a))
    train_fold(MODEL_CONFIG, train_config(epochs=2), clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
               path, seed=0, progress=False)
    assert len(calls) == 2
    assert load_checkpoint(path)["complete"] is True


def test_train_fold_other_run_retrains(toy, tmp_path, monkeypatch):
    clips, mask, ages = toy
    path = tmp_path / "fold_0.pt"
    train_fold(MODEL_CONFIG, train_config(epochs=2), clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
               path, seed=0, progress=False)
    calls = []
    original = fold_module._train_epoch
    monkeypatch.setattr(fold_module, "_train_epoch", lambda *a: calls.append(1) or original(*a))
    train_fold(MODEL_CONFIG, train_config(epochs=2, learning_rate=1e-2), clips, mask, ages,
               TRAIN_ROWS, VAL_ROWS, path, seed=0, progress=False)
    assert len(calls) == 2
    assert load_checkpoint(path)["train_config"]["learning_rate"] == 1e-2


@pytest.mark.parametrize("horizontal_flip", [False, True])
def test_train_fold_seeded_runs_identical(toy, tmp_path, horizontal_flip):
    clips, mask, ages = toy
    config = train_config(epochs=3, horizontal_flip=horizontal_flip)
    runs = [
        train_fold(MODEL_CONFIG, config, clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
                   tmp_path / f"run_{i}.pt", seed=5, progress=False)
        for i in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])
    predictions = [predict(model, clips, mask, VAL_ROWS) for model, _ in runs]
    for first, second in zip(*predictions):
        assert np.array_equal(first, second)


def test_train_fold_seed_changes_result(toy, tmp_path):
    clips, mask, ages = toy
    histories = [
        train_fold(MODEL_CONFIG, train_config(epochs=2), clips, mask, ages, TRAIN_ROWS,
                   VAL_ROWS, tmp_path / f"seed_{seed}.pt", seed=seed, progress=False)[1]
        for seed in (0, 1)
    ]
    assert not np.allclose(histories[0]["train_loss"], histories[1]["train_loss"])


def test_train_fold_early_stopping(toy, tmp_path):
    clips, mask, ages = toy
    _, history = train_fold(
        MODEL_CONFIG, train_config(epochs=30, learning_rate=1e-6, patience=2), clips, mask, ages,
        TRAIN_ROWS, VAL_ROWS, tmp_path / "fold_0.pt", seed=0, progress=False,
    )
    best_epoch = int(history["val_mae"].idxmin()) + 1
    assert len(history) < 30
    assert len(history) == best_epoch + 2


def test_train_fold_without_validation(toy, tmp_path):
    clips, mask, ages = toy
    _, history = train_fold(
        MODEL_CONFIG, train_config(epochs=2), clips, mask, ages, TRAIN_ROWS,
        np.array([], dtype=int), tmp_path / "fold_0.pt", seed=0, progress=False,
    )
    assert len(history) == 2
    assert history["val_mae"].isna().all()
    assert load_checkpoint(tmp_path / "fold_0.pt")["epoch"] == 2


def test_train_fold_overlapping_rows_raise(toy, tmp_path):
    clips, mask, ages = toy
    with pytest.raises(ValueError, match="share rows"):
        train_fold(MODEL_CONFIG, train_config(), clips, mask, ages, TRAIN_ROWS, np.array([29, 30]),
                   tmp_path / "fold_0.pt", seed=0, progress=False)


def test_train_fold_clip_without_frames_raises(toy, tmp_path):
    clips, mask, ages = toy
    mask = mask.copy()
    mask[4] = False
    with pytest.raises(ValueError, match=r"clips \[4\] have no valid frame"):
        train_fold(MODEL_CONFIG, train_config(), clips, mask, ages, TRAIN_ROWS, VAL_ROWS,
                   tmp_path / "fold_0.pt", seed=0, progress=False)


def test_predict_shapes_and_mode(toy, tmp_path):
    clips, mask, ages = toy
    model, _ = train_fold(MODEL_CONFIG, train_config(epochs=1), clips, mask, ages, TRAIN_ROWS,
                          VAL_ROWS, tmp_path / "fold_0.pt", seed=0, progress=False)
    model.train()
    rows = np.array([5, 2, 3])
    predicted, spatial, temporal = predict(model, clips, mask, rows, batch_size=2)
    assert model.training
    assert predicted.shape == (3,)
    assert spatial.shape == (3, T, 8, 8)
    assert spatial.dtype == np.float32
    assert temporal.shape == (3, T)
    assert temporal.dtype == np.float32
    assert temporal[2, -1] == 0.0
    assert np.allclose(temporal.sum(axis=1), 1.0, atol=1e-6)
    single = predict(model, clips, mask, rows[:1])[0]
    assert single[0] == pytest.approx(predicted[0], abs=1e-4)


def test_run_cross_validation_outputs(toy, tmp_path):
    clips, mask, ages = toy
    index = pd.DataFrame({
        "video": [f"{i // 2:03d}_spontaneous_smile_{i % 2 + 1}.mp4" for i in range(N)],
        "subject": np.arange(N) // 2,
        "age": ages.round().astype(int),
        "gender": ["female", "male"] * (N // 2),
        "smile_type": ["spontaneous", "posed"] * (N // 2),
    })
    folds = (np.arange(N) // 2) % 3
    predictions, spatial, temporal, history = run_cross_validation(
        MODEL_CONFIG, train_config(epochs=2), clips, mask, index, folds,
        validation_fraction=0.25, checkpoint_dir=tmp_path, seed=0, progress=False,
    )
    assert list(predictions.columns) == [
        "method", "video", "subject", "fold", "age", "predicted_age", "gender", "smile_type"
    ]
    assert (predictions["method"] == "SIAM").all()
    assert predictions["video"].tolist() == index["video"].tolist()
    assert np.array_equal(predictions["fold"], folds)
    assert np.isfinite(predictions["predicted_age"]).all()
    assert spatial.shape == (N, T, 8, 8)
    assert spatial.dtype == np.float32
    assert temporal.shape == (N, T)
    assert temporal.dtype == np.float32
    assert list(history.columns) == ["fold", "epoch", "train_loss", "val_mae"]
    assert history["fold"].tolist() == [0, 0, 1, 1, 2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_0.pt", "fold_1.pt", "fold_2.pt"]

    for fold in range(3):
        checkpoint = load_checkpoint(tmp_path / f"fold_{fold}.pt")
        seen = np.concatenate([checkpoint["train_rows"], checkpoint["val_rows"]])
        test_subjects = set(index["subject"][folds == fold])
        assert not test_subjects & set(index["subject"][seen])
        val_subjects = set(index["subject"][checkpoint["val_rows"]])
        num_training_subjects = len(set(index["subject"][folds != fold]))
        assert len(val_subjects) == round(0.25 * num_training_subjects)
        assert not val_subjects & set(index["subject"][checkpoint["train_rows"]])


def test_run_cross_validation_subject_in_two_folds_raises(toy, tmp_path):
    clips, mask, ages = toy
    index = pd.DataFrame({
        "video": [f"v{i}.mp4" for i in range(N)], "subject": np.arange(N) // 2, "age": ages,
        "gender": "female", "smile_type": "posed",
    })
    with pytest.raises(ValueError, match="more than one fold"):
        run_cross_validation(MODEL_CONFIG, train_config(), clips, mask, index, np.arange(N) % 2,
                             0.2, tmp_path, seed=0, progress=False)


def test_train_config_from_dict_unknown_key_raises():
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"lr": 0.1})


@pytest.mark.parametrize(
    "overrides, argument",
    [({"loss": "huber"}, "loss"), ({"optimizer": "sgd"}, "optimizer"),
     ({"device": "tpu"}, "device"), ({"epochs": 0}, "epochs"), ({"num_threads": 0}, "num_threads")],
)
def test_train_config_invalid_value_raises(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        TrainConfig(**overrides)
