"""The README's "Add a baseline" example runs as written and reaches the report."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from siamlib.baselines import dynamics
from siamlib.baselines.base import VideoSet, parse_methods, run_baselines
from siamlib.evaluation import figures
from siamlib.evaluation.metrics import parse_age_groups
from siamlib.evaluation.predictions import load_predictions, write_predictions
from siamlib.evaluation.report import build_metrics
from siamlib.evaluation.statistics import BootstrapSettings
from siamlib.evaluation.summary import evaluate, metrics_by_method

ROOT = Path(__file__).resolve().parents[1]


def readme_blocks() -> tuple[str, str]:
    """Return the Python and YAML blocks of the README's "Add a baseline" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Add a baseline", 1)[1].split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(python) == 1
    assert len(yaml_blocks) == 1
    return python[0], yaml_blocks[0]


def load_example(tmp_path: Path, monkeypatch, source: str, module_name: str) -> None:
    """Import the README's module under the name its YAML entry uses, from a temporary file."""
    path = tmp_path / "example_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)
    spec.loader.exec_module(module)


def toy_study(num_subjects: int = 30, seed: int = 0) -> tuple[VideoSet, np.ndarray]:
    """Videos whose dynamics features carry the age, two per subject, three folds."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(num_subjects), 2)
    ages = np.repeat(rng.integers(8, 70, num_subjects), 2)
    n = len(subjects)
    index = pd.DataFrame({
        "video": [f"{s:03d}_{kind}_smile_1.mp4" for s, kind in
                  zip(subjects, np.tile(["spontaneous", "deliberate"], num_subjects))],
        "subject": subjects,
        "age": ages,
        "gender": np.where(subjects % 2 == 0, "female", "male"),
        "smile_type": np.tile(["spontaneous", "posed"], num_subjects),
    })
    names = dynamics.feature_names()
    values = rng.normal(size=(n, len(names)))
    values[:, :10] += ages[:, None] / 5.0  # the first ten dynamics features carry the age
    # As extract_features writes them: the first two videos' tracks gave no dynamics.
    values[:2] = 0.0
    features = pd.DataFrame(values, columns=names)
    features.insert(0, "dynamics.unavailable", np.isin(np.arange(n), [0, 1]).astype(int))
    features.insert(0, "video", index["video"])
    clips = np.zeros((n, 2, 8, 8, 3), dtype=np.uint8)
    mask = np.ones((n, 2), dtype=bool)
    return VideoSet(index, clips, mask, features), subjects % 3


def test_readme_example_baseline_reaches_the_report(tmp_path, monkeypatch):
    source, entry = readme_blocks()
    methods = yaml.safe_load(entry)["baseline"]["methods"]
    (key, options), = methods.items()
    module_name = options["class"].rsplit(".", 1)[0]
    load_example(tmp_path, monkeypatch, source, module_name)

    data, folds = toy_study()
    registered = {"mean_age": {"class": "siamlib.baselines.reference.MeanAge"}, **methods}
    specs = parse_methods(registered)
    predictions = run_baselines(specs, data, folds, seed=0, work_dir=tmp_path / "work",
                                progress=False)
    predictions_dir = tmp_path / "predictions"
    write_predictions(predictions, predictions_dir / "baselines.csv")

    # The evaluation stage's steps, as notebooks/06_evaluate.ipynb runs them.
    loaded = load_predictions(predictions_dir)
    groups = parse_age_groups([8, 10, 20, 30, 40, 50, 60])
    result = evaluate(loaded, groups, BootstrapSettings(num_resamples=50))
    metrics = build_metrics(metrics_by_method(result), "synthetic", {}, result.describe())
    name = specs[1].name
    assert name == "Ridge (dynamics)"
    assert name in metrics["methods"]
    assert metrics["methods"][name]["num_videos"] == len(data)
    # The dynamics carry the age, so the example beats the mean age.
    assert metrics["methods"][name]["mae"] < metrics["methods"]["Mean training age"]["mae"]
    figure = figures.mae_by_group(result.groups, "age_group", "synthetic data")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert name in labels
