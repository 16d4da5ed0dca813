"""The whole DVC pipeline on the tiny profile, in a temporary copy of the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from siamlib.params import merge_params as merge

ROOT = Path(__file__).resolve().parents[1]


def copy_repository(destination: Path) -> None:
    """Copy the tracked and untracked-but-not-ignored files, as a fresh clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree but still in the index
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def pipeline_env() -> dict:
    """Return the environment with this interpreter's bin folder first on PATH, as stages need."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(command: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    repository = tmp_path_factory.mktemp("study")
    copy_repository(repository)
    params = yaml.safe_load((repository / "params.yaml").read_text())
    overrides = yaml.safe_load((repository / "profiles" / "tiny.yaml").read_text())
    (repository / "params.yaml").write_text(yaml.safe_dump(merge(params, overrides), sort_keys=False))
    # Results committed to the repository must not leak into the run being tested.
    for stale in ("reports", "dvc.lock"):
        path = repository / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    env = pipeline_env()
    run(["git", "init", "-q"], repository, env)
    first = run([sys.executable, "-m", "dvc", "repro"], repository, env)
    second = run([sys.executable, "-m", "dvc", "repro"], repository, env)
    return repository, first, second


def test_pipeline_writes_metrics(tiny_run):
    repository, _first, _second = tiny_run
    metrics = json.loads((repository / "reports" / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic"
    methods = metrics["methods"]
    assert "SIAM" in methods
    # Every registered baseline reaches the metrics.
    assert {"Mean training age", "SVR (dynamics)", "SVR (appearance)",
            "SVR (dynamics+appearance)", "SVR (dynamics+appearance, smile type known)",
            "Per-frame CNN (mean of frame ages)"} <= set(methods)
    for values in methods.values():
        # A percentile interval need not contain the estimate, but nearly does here.
        assert values["mae_low"] <= values["mae_high"]
        assert values["mae_low"] - 1e-6 <= values["mae"] <= values["mae_high"] + 1e-6
        assert set(values["by_gender"]) <= {"female", "male"}
        assert values["by_age_group"] and values["by_gender_age_group"]
        assert 0 <= values["cs_5"] <= values["cs_10"] <= 1
    for method, values in methods.items():
        assert ("vs_SIAM" in values) == (method != "SIAM"), method
    assert metrics["evaluation"]["reference"] == "SIAM"
    # The synthetic benchmark's ground truth scores SIAM's attention.
    scores = metrics["attention_faithfulness"]["SIAM"]
    for key in ("spatial_planted", "spatial_crows_feet", "temporal_correlation", "apex_share_ratio"):
        assert scores[key]["n"] > 0, key
    assert scores["spatial_planted"]["mean"] > 0


def foreach_items(stage: dict, params: dict) -> tuple[str, list]:
    """Return the placeholder of a foreach stage (${item} or ${key}) and its values."""
    value = params
    for part in stage["foreach"].strip("${}").split("."):
        value = value[part]
    if isinstance(value, dict):
        return "${key}", list(value)
    return "${item}", list(value)


def test_pipeline_writes_figures_and_notebooks(tiny_run):
    repository, _first, _second = tiny_run
    declared = yaml.safe_load((repository / "dvc.yaml").read_text())
    params = yaml.safe_load((repository / "params.yaml").read_text())
    expected_notebooks = 0
    for stage in declared["stages"].values():
        # A foreach stage declares its outputs once, with ${item} or ${key} for each instance.
        placeholder, items = foreach_items(stage, params) if "foreach" in stage else ("", [None])
        instance = stage["do"] if "foreach" in stage else stage
        expected_notebooks += len(items)
        for item in items:
            entries = instance.get("outs", []) + instance.get("plots", []) + instance.get("metrics", [])
            for entry in entries:
                name = entry if isinstance(entry, str) else next(iter(entry))
                if placeholder:
                    name = name.replace(placeholder, str(item))
                assert (repository / name).exists(), name
    notebooks = sorted((repository / "reports" / "notebooks").rglob("*.ipynb"))
    # One executed notebook per stage, and one per instance of a foreach stage.
    assert len(notebooks) == expected_notebooks
    for notebook in notebooks:
        text = notebook.read_text()
        assert '"start_time"' not in text, notebook.name
        assert '"duration"' not in text, notebook.name
        # No path of this machine: warnings that name a file would leak one.
        assert str(repository) not in text, notebook.name
        assert sys.prefix not in text, notebook.name


def test_pipeline_writes_ablation_and_learning_curve(tiny_run):
    repository, _first, _second = tiny_run
    variants = yaml.safe_load((repository / "params.yaml").read_text())["ablation"]["run"]
    table = pd.read_csv(repository / "reports" / "ablation.csv")
    assert list(table["variant"]) == variants
    assert (table["parameters"] > 0).all()
    assert table["MAE"].notna().all()
    curve = pd.read_csv(repository / "reports" / "learning_curve.csv")
    assert curve["method"].nunique() == 2
    assert sorted(curve["fraction"].unique()) == [0.5, 1.0]


def test_pipeline_second_repro_does_nothing(tiny_run):
    repository, _first, second = tiny_run
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in second
    # data.dvc (the user's UvA-NEMO folder) is absent in a fresh clone, so ask about dvc.yaml only.
    status = run([sys.executable, "-m", "dvc", "status", "dvc.yaml"], repository, pipeline_env())
    assert "up to date" in status


def test_pipeline_writes_report_page(tiny_run):
    repository, _first, _second = tiny_run
    reports = repository / "reports"
    text = (reports / "README.md").read_text()
    assert "synthetic benchmark" in text.splitlines()[0]
    assert "## By gender × age group" in text
    assert "Wilcoxon" in text
    # Every figure and page the README links to exists.
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert any(link.startswith("figures/") for link in links)
    assert any(link.startswith("html/") for link in links)
    for link in links:
        assert (reports / link).is_file(), link
    literature = pd.read_csv(reports / "literature.csv")
    assert set(literature["dataset"]) == {"UvA-NEMO Smile Database", "synthetic benchmark, not UvA-NEMO"}
    groups = pd.read_csv(reports / "tables" / "groups.csv")
    assert {"age_group", "gender", "smile_type", "gender_age_group"} == set(groups["grouping"])
    assert groups["few_subjects"].all()  # 8 subjects: every cell is small


def test_plots_show_writes_a_page(tiny_run):
    repository, _first, _second = tiny_run
    run([sys.executable, "-m", "dvc", "plots", "show", "-o", "plots_page"], repository, pipeline_env())
    page = (repository / "plots_page" / "index.html").read_text()
    declared = []
    for stage in yaml.safe_load((repository / "dvc.yaml").read_text())["stages"].values():
        for entry in stage.get("plots", []):
            declared.append(entry if isinstance(entry, str) else next(iter(entry)))
    assert len(declared) >= 15
    for name in declared:
        assert Path(name).name in page, name


def test_notebook_runs_from_the_notebooks_folder(tiny_run, monkeypatch):
    # JupyterLab starts the kernel in notebooks/; with its defaults (the tiny profile) the
    # report notebook runs there and rewrites the same page the pipeline wrote.
    import nbclient
    import nbformat

    repository, _first, _second = tiny_run
    readme = repository / "reports" / "README.md"
    before = readme.read_bytes()
    readme.unlink()
    monkeypatch.setenv("PATH", pipeline_env()["PATH"])
    notebook = nbformat.read(repository / "notebooks" / "11_report.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(repository / "notebooks")}}).execute()
    assert readme.read_bytes() == before


def test_experiment_with_a_changed_parameter(tiny_run, tmp_path):
    # `dvc exp run -S` reruns what the parameter reaches; `dvc exp show` lists the run and
    # `dvc metrics diff` compares it with the committed one. Done in a copy, with its own git
    # history, so the other tests keep the original.
    repository, _first, _second = tiny_run
    copy = tmp_path / "study"
    shutil.copytree(repository, copy, symlinks=True)
    env = pipeline_env()
    for key, value in (("user.name", "Test"), ("user.email", "test@example.invalid")):
        run(["git", "config", key, value], copy, env)
    run(["git", "add", "-A"], copy, env)
    run(["git", "commit", "-q", "-m", "tiny run"], copy, env)
    before = json.loads((copy / "reports" / "metrics.json").read_text())

    output = run([sys.executable, "-m", "dvc", "exp", "run", "-n", "ci90", "-S", "evaluation.confidence=0.9"],
                 copy, env)
    assert "Running stage 'evaluate'" in output
    assert "Running stage 'train'" not in output  # nothing upstream of the evaluation reruns
    after = json.loads((copy / "reports" / "metrics.json").read_text())
    siam_before, siam_after = before["methods"]["SIAM"], after["methods"]["SIAM"]
    assert siam_after["mae"] == siam_before["mae"]
    assert siam_after["mae_high"] - siam_after["mae_low"] < siam_before["mae_high"] - siam_before["mae_low"]
    assert after["evaluation"]["confidence"] == 0.9

    shown = json.loads(run_stdout([sys.executable, "-m", "dvc", "exp", "show", "--json"], copy, env))
    assert "ci90" in set(values_of(shown, "name"))
    diff = json.loads(run_stdout([sys.executable, "-m", "dvc", "metrics", "diff", "--json"], copy, env))
    changed = diff["reports/metrics.json"]
    assert changed["methods.SIAM.mae_low"]["old"] < changed["methods.SIAM.mae_low"]["new"]
    assert "methods.SIAM.mae" not in changed


def run_stdout(command: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def values_of(tree, key: str):
    """Yield every value stored under ``key`` anywhere in nested lists and dicts."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name == key:
                yield value
            yield from values_of(value, key)
    elif isinstance(tree, list):
        for value in tree:
            yield from values_of(value, key)


def test_pipeline_rerun_reproduces_outputs(tiny_run):
    # Runs last: it trains SIAM again from scratch with the same seed and checks that its
    # predictions, executed notebook and page are byte-identical, so nothing downstream reruns.
    repository, _first, _second = tiny_run
    outputs = [repository / "reports" / "predictions" / "siam.csv",
               repository / "reports" / "notebooks" / "04_train_siam.ipynb",
               repository / "reports" / "html" / "04_train_siam.html"]
    before = [path.read_bytes() for path in outputs]
    # The checkpoint folder persists across reruns and would be reused: remove it.
    shutil.rmtree(repository / "work" / "siam" / "checkpoints")

    output = run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "train"],
                 repository, pipeline_env())

    assert "loaded finished run" not in output
    for path, content in zip(outputs, before):
        assert path.read_bytes() == content, path.name
    status = run([sys.executable, "-m", "dvc", "status", "dvc.yaml"], repository, pipeline_env())
    assert "up to date" in status
