"""Tests for resuming an interrupted fold of siamlib.training.fold.train_fold.

Toy task as in test_train.py: N=40 clips of T=4 frames, 16x16 pixels, whose brightness encodes
the age. Dropout, flips and temporal crops are on, so that the result depends on both the
global PyTorch generator and the DataLoader's generator.
"""

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import siamlib.training.fold as fold_module
from siamlib.models.siam import SIAM, SIAMConfig
from siamlib.train import TrainConfig, load_checkpoint, predict, train_fold
from siamlib.training.checkpoint import resume_state_path

N, T, S = 40, 4, 16
TRAIN_ROWS = np.arange(30)
VAL_ROWS = np.arange(30, 40)
MODEL_CONFIG = SIAMConfig(
    image_size=S, channels=(4, 8), attention_after_block=1, hidden_size=8, attention_size=4,
    dropout=0.5,
)
EPOCHS = 6

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ages = np.repeat(rng.uniform(10, 60, N // 2), 2)
    brightness = ages[:, None, None, None, None] / 70 * 255
    clips = np.clip(brightness + rng.normal(0, 10, (N, T, S, S, 3)), 0, 255).astype(np.uint8)
    mask = np.ones((N, T), dtype=bool)
    mask[::3, -1] = False
    return clips, mask, ages


def train_config(**overrides) -> TrainConfig:
    values = dict(
        epochs=EPOCHS, batch_size=8, learning_rate=3e-3, patience=20, device="cpu",
        horizontal_flip=True, temporal_augment=True,
    )
    return TrainConfig(**{**values, **overrides})


def early_stop_config() -> TrainConfig:
    """Return settings with which the toy fold, seed 0, stops after epoch 5 (best epoch 3)."""
    return train_config(epochs=30, learning_rate=0.1, patience=2)


def run_fold(
    toy, path: Path, config: TrainConfig | None = None, seed: int = 0, ages=None
) -> tuple[SIAM, pd.DataFrame]:
    clips, mask, toy_ages = toy
    return train_fold(
        MODEL_CONFIG, config or train_config(), clips, mask,
        toy_ages if ages is None else ages, TRAIN_ROWS, VAL_ROWS, path, seed=seed,
        progress=False,
    )


def count_epochs(monkeypatch) -> list[int]:
    """Count the calls of _train_epoch in the returned list, which grows by one per epoch."""
    calls: list[int] = []
    original = fold_module._train_epoch

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(fold_module, "_train_epoch", counted)
    return calls


def interrupt_after(monkeypatch, toy, path: Path, epochs: int, **kwargs) -> None:
    """Run a fold that raises KeyboardInterrupt when epoch ``epochs + 1`` starts."""
    original = fold_module._train_epoch
    calls: list[int] = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) > epochs:
            raise KeyboardInterrupt
        return original(*args)

    with monkeypatch.context() as patch:
        patch.setattr(fold_module, "_train_epoch", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_fold(toy, path, **kwargs)


def assert_same_result(
    toy, first: tuple[SIAM, pd.DataFrame], second: tuple[SIAM, pd.DataFrame]
) -> None:
    clips, mask, _ = toy
    pd.testing.assert_frame_equal(first[1], second[1])
    first_state, second_state = first[0].state_dict(), second[0].state_dict()
    assert list(first_state) == list(second_state)
    for key in first_state:
        assert torch.equal(first_state[key], second_state[key]), key
    rows = np.arange(N)
    for first_output, second_output in zip(predict(first[0], clips, mask, rows),
                                           predict(second[0], clips, mask, rows)):
        assert np.array_equal(first_output, second_output)


def assert_same_checkpoint(first_path: Path, second_path: Path) -> None:
    first, second = load_checkpoint(first_path), load_checkpoint(second_path)
    assert first["complete"] is True
    assert second["complete"] is True
    assert first["epoch"] == second["epoch"]
    assert first["history"] == second["history"]
    for key, value in first["model_state"].items():
        assert torch.equal(value, second["model_state"][key]), key


@pytest.mark.parametrize("interrupted_after", [1, 4])
def test_resume_matches_uninterrupted_run(toy, tmp_path, monkeypatch, caplog, interrupted_after):
    reference = run_fold(toy, tmp_path / "reference.pt")
    path = tmp_path / "fold_0.pt"
    resume_path = tmp_path / "fold_0.resume.pt"
    interrupt_after(monkeypatch, toy, path, interrupted_after)

    state = load_checkpoint(resume_path)
    assert state["epoch"] == interrupted_after
    assert len(state["history"]) == interrupted_after
    assert load_checkpoint(path)["complete"] is False

    calls = count_epochs(monkeypatch)
    with caplog.at_level(logging.INFO, logger=fold_module.__name__):
        resumed = run_fold(toy, path)

    assert len(calls) == EPOCHS - interrupted_after
    assert f"resuming from {resume_path} after epoch {interrupted_after}" in caplog.text
    assert_same_result(toy, reference, resumed)
    assert_same_checkpoint(tmp_path / "reference.pt", path)
    assert not resume_path.exists()


def test_resume_twice_matches_uninterrupted_run(toy, tmp_path, monkeypatch):
    reference = run_fold(toy, tmp_path / "reference.pt")
    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, path, 2)
    interrupt_after(monkeypatch, toy, path, 1)
    assert load_checkpoint(resume_state_path(path))["epoch"] == 3

    assert_same_result(toy, reference, run_fold(toy, path))
    assert not resume_state_path(path).exists()


def test_uninterrupted_run_leaves_no_resume_state(toy, tmp_path):
    run_fold(toy, tmp_path / "fold_0.pt")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fold_0.pt"]


@pytest.mark.parametrize("interrupted_after", [3, 4])
def test_resume_across_early_stop(toy, tmp_path, monkeypatch, interrupted_after):
    config = early_stop_config()
    reference = run_fold(toy, tmp_path / "reference.pt", config)
    assert len(reference[1]) == 5
    assert load_checkpoint(tmp_path / "reference.pt")["epoch"] == 3

    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, path, interrupted_after, config=config)
    calls = count_epochs(monkeypatch)
    resumed = run_fold(toy, path, config)

    assert len(calls) == 5 - interrupted_after
    assert_same_result(toy, reference, resumed)
    assert_same_checkpoint(tmp_path / "reference.pt", path)


def test_resume_after_early_stop_trains_nothing(toy, tmp_path, monkeypatch):
    config = early_stop_config()
    reference = run_fold(toy, tmp_path / "reference.pt", config)
    path = tmp_path / "fold_0.pt"
    original = fold_module.save_checkpoint

    def fail_on_complete(checkpoint, target):
        if checkpoint.get("complete"):
            raise KeyboardInterrupt
        original(checkpoint, target)

    with monkeypatch.context() as patch:
        patch.setattr(fold_module, "save_checkpoint", fail_on_complete)
        with pytest.raises(KeyboardInterrupt):
            run_fold(toy, path, config)
    state = load_checkpoint(resume_state_path(path))
    assert state["epoch"] == 5
    assert state["stopped"] is True

    calls = count_epochs(monkeypatch)
    resumed = run_fold(toy, path, config)
    assert calls == []
    assert_same_result(toy, reference, resumed)
    assert not resume_state_path(path).exists()


def other_seed(toy) -> dict:
    return {"seed": 1}


def other_learning_rate(toy) -> dict:
    return {"config": train_config(learning_rate=1e-3)}


def other_ages(toy) -> dict:
    ages = toy[2].copy()
    ages[0] += 1.0
    return {"ages": ages}


@pytest.mark.parametrize("other_run, field", [
    (other_seed, "seed"), (other_learning_rate, "train_config"), (other_ages, "data"),
])
def test_resume_state_of_other_run_ignored(
    toy, tmp_path, monkeypatch, caplog, other_run: Callable[..., dict], field: str
):
    changes = other_run(toy)
    reference = run_fold(toy, tmp_path / "reference.pt", **changes)
    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, path, 2)

    calls = count_epochs(monkeypatch)
    with caplog.at_level(logging.INFO, logger=fold_module.__name__):
        retrained = run_fold(toy, path, **changes)

    assert len(calls) == EPOCHS
    assert f"({field} differ); ignoring it and training from epoch 1" in caplog.text
    assert_same_result(toy, reference, retrained)
    assert not resume_state_path(path).exists()


def test_resume_state_of_other_code_ignored(toy, tmp_path, monkeypatch, caplog):
    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, path, 2)
    monkeypatch.setattr(fold_module, "code_fingerprint", lambda: {"sources": "edited"})

    calls = count_epochs(monkeypatch)
    with caplog.at_level(logging.INFO, logger=fold_module.__name__):
        run_fold(toy, path)

    assert len(calls) == EPOCHS
    assert "(code differ)" in caplog.text


def test_finished_checkpoint_of_other_data_retrains(toy, tmp_path, monkeypatch, caplog):
    path = tmp_path / "fold_0.pt"
    run_fold(toy, path)
    calls = count_epochs(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=fold_module.__name__):
        run_fold(toy, path, **other_ages(toy))

    assert len(calls) == EPOCHS
    assert "(data differ); training again" in caplog.text


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_garbage(path: Path) -> None:
    path.write_bytes(b"not a checkpoint")


def empty(path: Path) -> None:
    path.write_bytes(b"")


def drop_optimizer_state(path: Path) -> None:
    state = load_checkpoint(path)
    del state["optimizer_state"]
    torch.save(state, path)


def drop_rng_state_entry(path: Path) -> None:
    state = load_checkpoint(path)
    del state["rng_state"]["generator"]
    torch.save(state, path)


def drop_best_state_entry(path: Path) -> None:
    state = load_checkpoint(path)
    state["best_state"].popitem()
    torch.save(state, path)


@pytest.mark.parametrize("damage, message", [
    (truncate, "cannot be read"),
    (write_garbage, "cannot be read"),
    (empty, "cannot be read"),
    (drop_optimizer_state, "cannot be restored"),
    (drop_rng_state_entry, "cannot be restored"),
    (drop_best_state_entry, "cannot be restored"),
])
def test_unreadable_resume_state_ignored(
    toy, tmp_path, monkeypatch, caplog, damage: Callable[[Path], None], message: str
):
    reference = run_fold(toy, tmp_path / "reference.pt")
    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, path, 2)
    damage(resume_state_path(path))

    calls = count_epochs(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=fold_module.__name__):
        retrained = run_fold(toy, path)

    assert len(calls) == EPOCHS
    assert message in caplog.text
    assert "training from epoch 1" in caplog.text
    assert_same_result(toy, reference, retrained)
    assert not resume_state_path(path).exists()


def test_finished_run_removes_leftover_resume_state(toy, tmp_path, monkeypatch):
    path = tmp_path / "fold_0.pt"
    interrupt_after(monkeypatch, toy, tmp_path / "other.pt", 2)
    run_fold(toy, path)
    resume_state_path(tmp_path / "other.pt").rename(resume_state_path(path))

    calls = count_epochs(monkeypatch)
    run_fold(toy, path)
    assert calls == []
    assert not resume_state_path(path).exists()


@pytest.mark.parametrize("config", [train_config(), early_stop_config()])
def test_seeded_runs_identical(toy, tmp_path, config):
    first = run_fold(toy, tmp_path / "first.pt", config)
    second = run_fold(toy, tmp_path / "second.pt", config)
    assert_same_result(toy, first, second)
    assert_same_checkpoint(tmp_path / "first.pt", tmp_path / "second.pt")
