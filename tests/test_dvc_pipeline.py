"""dvc.yaml, params.yaml and the notebooks agree on what each stage reads."""

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from siamlib.notebook import select_parameters
from test_pipeline import merge

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_notebook(stage: dict) -> Path:
    name = next(dep for dep in stage["deps"] if dep.startswith("notebooks/"))
    return ROOT / name


def siamlib_imports(notebook: Path) -> set[str]:
    """Return the siamlib modules a notebook imports, e.g. {"siamlib.video.clips"}."""
    modules = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("siamlib"):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    is_module = (ROOT / (candidate.replace(".", "/") + ".py")).exists()
                    modules.add(candidate if is_module else node.module)
            elif isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if a.name.startswith("siamlib"))
    return modules


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_command_passes_declared_params(name):
    stage = STAGES[name]
    match = re.search(r"params params\.yaml ([\w. ]+)\)", stage["cmd"])
    assert match, f"stage {name} does not select its parameters"
    assert match.group(1).split() == stage["params"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_imported_modules(name):
    stage = STAGES[name]
    deps = [dep for dep in stage["deps"] if dep.startswith("siamlib")]
    for module in siamlib_imports(stage_notebook(stage)):
        path = module.replace(".", "/")
        candidates = (f"{path}.py", path)
        covered = any(c == dep or c.startswith(dep + "/") for c in candidates for dep in deps)
        assert covered, f"stage {name}: its notebook imports {module}, not in deps {deps}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_notebook_defaults_are_tiny_profile(name, tmp_path):
    # Opened in JupyterLab, a notebook runs the tiny profile with its parameter defaults.
    params = merge(
        yaml.safe_load((ROOT / "params.yaml").read_text()),
        yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text()),
    )
    merged = tmp_path / "params.yaml"
    merged.write_text(yaml.safe_dump(params))
    expected = select_parameters(merged, STAGES[name]["params"])

    notebook = nbformat.read(stage_notebook(STAGES[name]), as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    defaults: dict = {}
    exec(cells[0].source, {}, defaults)
    for key, value in expected.items():
        assert defaults.get(key) == value, f"{name}: default of {key}"


def test_every_params_section_is_read():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    read = {key.split(".")[0] for stage in STAGES.values() for key in stage["params"]}
    assert set(params) == read
