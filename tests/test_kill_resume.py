"""A training stage killed mid-fold resumes on the next `dvc repro` and ends as if never killed.

A small DVC project has one stage that trains SIAM's folds with `python -m siamlib train` on
the random clip cache of test_distributed.py, with its checkpoint folder kept across reruns
(`persist: true`), as the study's training stages keep theirs. The first `dvc repro` is killed
(SIGKILL to it and every process it started) as soon as a resume state appears. The second
one must finish and give the predictions of an uninterrupted run. The same goes for training
on two processes under torchrun.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

from siamlib.params import merge_params
from siamlib.training.checkpoint import load_checkpoint
from test_distributed import study  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("{python} -m siamlib train --verbose --params params.yaml --clips clips "
         "--annotations annotations.csv --output checkpoints --predictions predictions.csv")


def _environment() -> dict[str, str]:
    # One thread in every run, since PyTorch's CPU results may depend on the thread count.
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    return environment


def _project(study: Path, folder: Path) -> Path:  # noqa: F811
    """Create a DVC project training for enough epochs that a kill lands mid-fold."""
    folder.mkdir()
    shutil.copytree(study / "clips", folder / "clips")
    shutil.copy(study / "annotations.csv", folder / "annotations.csv")
    params = yaml.safe_load((study / "params.yaml").read_text())
    params = merge_params(params, {"train": {"epochs": 40, "patience": 40}})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    stage = {
        "cmd": TRAIN.format(python="python"),
        "deps": ["clips", "annotations.csv"],
        "params": ["seed", "splits", "model", "train"],
        "outs": [{"checkpoints": {"persist": True}}, {"predictions.csv": {"cache": False}}],
    }
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                    [sys.executable, "-m", "dvc", "config", "core.analytics", "false"]):
        subprocess.run(command, cwd=folder, check=True, capture_output=True)
    return folder


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and all its descendants, as a power cut would end them.

    torchrun's worker processes are its children but may leave its process group, so killing
    the group alone can leave them training.
    """
    victims = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for victim in victims:
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=60)
    process.wait(timeout=60)


def _assert_same_training(project: Path, reference: Path) -> None:
    """Check equal predictions and equal losses in every epoch, after the kill too.

    The best epoch may come before the kill, so the predictions alone could miss a resumed
    run that went wrong afterwards. The history of every epoch catches it.
    """
    pd.testing.assert_frame_equal(pd.read_csv(project / "predictions.csv"),
                                  pd.read_csv(reference / "predictions.csv"), check_exact=True)
    for fold in (0, 1):
        resumed = load_checkpoint(project / "checkpoints" / f"fold_{fold}.pt")["history"]
        uninterrupted = load_checkpoint(reference / "checkpoints" / f"fold_{fold}.pt")["history"]
        assert len(resumed) == 40
        assert resumed == uninterrupted


def _wait_for(path: Path, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, "dvc repro ended before writing a resume state"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout_s} s"
        time.sleep(0.01)


def test_killed_repro_resumes_to_the_same_result(study, tmp_path):  # noqa: F811
    project = _project(study, tmp_path / "killed")
    environment = _environment()
    first = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"], cwd=project, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    resume_state = project / "checkpoints" / "fold_0.resume.pt"
    _wait_for(resume_state, first)
    _kill_tree(first)

    # The kill landed inside fold 0: a resume state, no finished checkpoint, no predictions.
    assert resume_state.exists()
    checkpoint = project / "checkpoints" / "fold_0.pt"
    if checkpoint.exists():
        assert not load_checkpoint(checkpoint)["complete"]
    assert not (project / "predictions.csv").exists()

    second = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project,
                            env=environment, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "fold_0: resuming from" in second.stdout + second.stderr
    assert not resume_state.exists()

    reference = tmp_path / "reference"
    shutil.copytree(project, reference, ignore=shutil.ignore_patterns(
        "checkpoints", "predictions.csv", ".dvc", ".git", "dvc.lock"))
    uninterrupted = subprocess.run(
        TRAIN.format(python=sys.executable).split(), cwd=reference, env=environment,
        capture_output=True, text=True, timeout=600,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    _assert_same_training(project, reference)


def _torchrun(arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "-m", "siamlib", *arguments]


def test_killed_torchrun_resumes_to_the_same_result(study, tmp_path):  # noqa: F811
    """Two processes killed mid-fold resume from each one's generators, as if never killed."""
    project = _project(study, tmp_path / "killed")
    reference = _project(study, tmp_path / "reference")
    arguments = TRAIN.format(python="python").split()[3:]  # after "python -m siamlib"
    environment = _environment()

    uninterrupted = subprocess.run(_torchrun(arguments), cwd=reference, env=environment,
                                   capture_output=True, text=True, timeout=600)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    first = subprocess.Popen(_torchrun(arguments), cwd=project, env=environment,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume_state = project / "checkpoints" / "fold_0.resume.pt"
    _wait_for(resume_state, first)
    _kill_tree(first)
    checkpoint = project / "checkpoints" / "fold_0.pt"
    if checkpoint.exists():
        assert not load_checkpoint(checkpoint)["complete"]
    assert not (project / "predictions.csv").exists()

    resumed = subprocess.run(_torchrun(arguments), cwd=project, env=environment,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "fold_0: resuming from" in resumed.stdout + resumed.stderr
    _assert_same_training(project, reference)
