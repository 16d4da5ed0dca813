"""Tests of benchmarks/gpu_fold.py: a CPU smoke run of the script with tiny settings."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "benchmarks" / "gpu_fold.py"
STEPS = ["generate", "annotations", "clip_cache", "train_fold"]
# Sizes of profiles/tiny.yaml. The two runs of smoke_runs took 15 to 21 s together on the
# 2-core development machine.
TINY = [
    "--subjects", "6", "--device", "cpu", "--data-workers", "1", "--num-workers", "0",
    "--set", "synthetic.frame_size=96", "synthetic.min_duration_s=2.0",
    "synthetic.max_duration_s=3.0", "preprocess.num_frames=8", "preprocess.image_size=32",
    "model.channels=[8,16,16,16]", "model.hidden_size=16", "model.attention_size=8",
    "train.epochs=1", "train.batch_size=4", "splits.num_folds=2",
]


def run_script(arguments, cwd):
    """Run the script in a fresh Python with this repository's siamlib and return the result."""
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300,
    )
    assert result.returncode == 0, (
        f"gpu_fold.py exited with {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )
    return result


def load_script():
    """Import the script as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location("gpu_fold", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Run the script twice on one work folder: once from scratch, then reusing the data."""
    root = tmp_path_factory.mktemp("gpu_fold")
    work = root / "work"
    first = run_script([*TINY, "--work", str(work), "--out", str(root / "first")], root)
    # The second run reuses the generated videos, and its tiny budget must only warn.
    second = run_script(
        [*TINY, "--work", str(work), "--out", str(root / "second"), "--budget", "0.5"], root
    )
    return root, first, second


def test_gpu_fold_writes_complete_report(smoke_runs):
    root, first, _ = smoke_runs
    report = json.loads((root / "first" / "gpu_fold.json").read_text())

    assert report["profile"] == "paper"
    assert report["fold"] == 0
    assert "synthetic" in report["dataset"]
    assert "not UvA-NEMO" in report["dataset"]
    assert report["command"].startswith("python benchmarks/gpu_fold.py --subjects 6")
    assert "synthetic.num_subjects=6" in report["overrides"]
    assert "train.epochs=1" in report["overrides"]
    assert "train.num_workers=0" in report["overrides"]

    machine = report["machine"]
    assert machine["device"] == "cpu"
    assert machine["device_name"]
    assert machine["torch_version"] == torch.__version__
    assert machine["cpu_count"] >= 1

    settings = report["settings"]
    assert settings["num_subjects"] == 6
    assert settings["frame_size"] == 96
    assert settings["image_size"] == 32
    assert settings["max_epochs"] == 1
    assert settings["precision_resolved"] == "fp32"
    assert settings["channels_last_resolved"] is False
    assert settings["compile"] is False
    assert settings["num_workers"] == 0
    assert settings["data_workers"] == 1

    data = report["data"]
    assert data["subjects"] == 6
    assert data["videos"] >= 12
    assert data["generation_reused"] is False
    assert data["training_clips"] > 0
    assert data["test_clips"] > 0
    assert (data["training_clips"] + data["validation_clips"] + data["test_clips"]
            == data["clips_in_cache"])

    seconds = report["step_seconds"]
    assert list(seconds) == STEPS
    assert all(math.isfinite(value) and value >= 0 for value in seconds.values())
    assert seconds["generate"] > 0
    assert seconds["train_fold"] > 0
    assert report["total_seconds"] >= sum(seconds.values())
    assert report["longest_step"] == max(seconds, key=seconds.get)
    assert report["budget_seconds"] == 300
    assert report["over_budget"] is False

    training = report["training"]
    assert training["epochs_run"] == 1
    assert training["best_epoch"] == 1
    expected_rate = data["training_clips"] * training["epochs_run"] / seconds["train_fold"]
    assert training["clips_per_second"] == pytest.approx(expected_rate, rel=0.01)
    assert training["peak_gpu_memory_bytes"] is None
    assert 0 <= report["test_mae_years"] < 100

    for step in STEPS:
        assert f"{step} ..." in first.stdout
    assert "longest step: " in first.stdout
    assert "over the" not in first.stderr


def test_gpu_fold_writes_markdown(smoke_runs):
    root, first, _ = smoke_runs
    markdown = (root / "first" / "gpu_fold.md").read_text()

    assert markdown.startswith("# One fold of the `paper` profile, with overrides")
    assert "python benchmarks/gpu_fold.py --subjects 6" in markdown
    assert "| step | seconds |" in markdown
    assert "| train_fold |" in markdown
    assert "test MAE, synthetic benchmark" in markdown
    assert "Machine: " in markdown
    assert markdown in first.stdout


def test_gpu_fold_rerun_reuses_data_and_warns(smoke_runs):
    root, _, second = smoke_runs
    first = json.loads((root / "first" / "gpu_fold.json").read_text())
    report = json.loads((root / "second" / "gpu_fold.json").read_text())

    assert report["data"]["generation_reused"] is True
    assert report["step_seconds"]["generate"] < first["step_seconds"]["generate"]
    # The fold trains again rather than loading the first run's checkpoint.
    assert report["training"]["epochs_run"] == 1
    assert report["test_mae_years"] == pytest.approx(first["test_mae_years"])
    assert report["over_budget"] is True
    assert "over the 0.5 s budget" in second.stderr
    assert f"the longest step is {report['longest_step']}" in second.stderr


def test_gpu_fold_rejects_missing_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available, so --device cuda is valid here")
    script = load_script()

    status = script.main(["--device", "cuda", "--out", str(tmp_path / "out")])

    assert status == 1
    error = capsys.readouterr().err
    assert "CUDA was requested" in error
    assert "--device cpu" in error
    assert not (tmp_path / "out" / "gpu_fold.json").exists()


def test_gpu_fold_rejects_unknown_section(tmp_path, capsys):
    script = load_script()

    status = script.main(["--device", "cpu", "--set", "trian.epochs=1",
                          "--out", str(tmp_path / "out")])

    assert status == 1
    error = capsys.readouterr().err
    assert "no section 'trian'" in error
    assert "train" in error


def test_gpu_fold_rejects_invalid_setting(tmp_path, capsys):
    script = load_script()

    status = script.main(["--device", "cpu", "--set", "train.epoch=1",
                          "--out", str(tmp_path / "out")])

    assert status == 1
    assert "epoch" in capsys.readouterr().err


def test_gpu_fold_rejects_fold_out_of_range(tmp_path, capsys):
    script = load_script()

    status = script.main(["--device", "cpu", "--fold", "5", "--out", str(tmp_path / "out")])

    assert status == 1
    assert "--fold 0 to 4" in capsys.readouterr().err


def test_gpu_fold_rejects_pipeline_work_folder(tmp_path, capsys):
    script = load_script()

    status = script.main(["--device", "cpu", "--work", str(REPOSITORY / "work"),
                          "--out", str(tmp_path / "out")])

    assert status == 1
    assert "DVC pipeline's folder" in capsys.readouterr().err


def test_gpu_fold_rejects_override_without_value():
    script = load_script()

    with pytest.raises(SystemExit) as exit_info:
        script.main(["--set", "train.epochs"])

    assert exit_info.value.code == 2
