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


def tiny_params() -> dict:
    """Return params.yaml with the tiny profile applied, as the pipeline test runs it."""
    return merge(
        yaml.safe_load((ROOT / "params.yaml").read_text()),
        yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text()),
    )


def expand_stages() -> dict:
    """Return the stages of dvc.yaml, a `foreach` stage as its instance for the first item or key.

    The item comes from the tiny profile, whose values the notebooks' defaults hold. The
    instance is named "<stage>@<item>", as DVC names it.
    """
    stages = {}
    params = tiny_params()
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        value = params
        for part in stage["foreach"].strip("${}").split("."):
            value = value[part]
        # A list gives ${item}; a mapping gives ${key} (and its value as ${item}).
        item = next(iter(value)) if isinstance(value, dict) else value[0]
        placeholder = "${key}" if isinstance(value, dict) else "${item}"
        text = yaml.safe_dump(stage["do"]).replace(placeholder, str(item))
        stages[f"{name}@{item}"] = yaml.safe_load(text)
    return stages


STAGES = expand_stages()


def stage_notebook(stage: dict) -> Path:
    name = next(dep for dep in stage["deps"] if dep.startswith("notebooks/"))
    return ROOT / name


def imported_names(source: str) -> list[tuple[str, list[str]]]:
    """Return the siamlib imports of `source` as (module, names imported from it) pairs."""
    imports = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("siamlib"):
            imports.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            imports.extend((a.name, []) for a in node.names if a.name.startswith("siamlib"))
    return imports


def siamlib_imports(notebook: Path) -> set[str]:
    """Return the siamlib modules a notebook imports, e.g. {"siamlib.video.clips"}."""
    modules = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for module, names in imported_names(cell.source):
            if not names:
                modules.add(module)
            for name in names:
                candidate = f"{module}.{name}"
                is_module = (ROOT / (candidate.replace(".", "/") + ".py")).exists()
                modules.add(candidate if is_module else module)
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


def module_file(module: str) -> Path | None:
    """Return the source file of a siamlib module or package, or None if there is none."""
    path = ROOT / module.replace(".", "/")
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(modules: set[str]) -> set[Path]:
    """Return every siamlib source file that importing `modules` executes.

    Follows imports recursively and includes the __init__.py of every package on the way,
    except empty ones and siamlib/__init__.py, which holds only the package docstring.
    """
    seen: set[Path] = set()
    pending = list(modules)
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(2, len(parts) + 1):
            path = module_file(".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            if path.name == "__init__.py" and not path.read_text().strip():
                continue
            for module, names in imported_names(path.read_text()):
                pending.append(module)
                pending.extend(f"{module}.{name}" for name in names)
    return seen


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_imported_files(name):
    # A stage must rerun when any siamlib file its notebook executes changes, including files
    # imported by the modules the notebook names.
    stage = STAGES[name]
    deps = [dep for dep in stage["deps"] if dep.startswith("siamlib")]
    missing = []
    for path in imported_files(siamlib_imports(stage_notebook(stage))):
        relative = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        if not any(relative == dep or relative.startswith(dep + "/") for dep in deps):
            missing.append(relative)
    assert not missing, f"stage {name}: its notebook runs {sorted(missing)}, not in deps"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_notebook_defaults_are_tiny_profile(name, tmp_path):
    # Opened in JupyterLab, a notebook runs the tiny profile with its parameter defaults.
    merged = tmp_path / "params.yaml"
    merged.write_text(yaml.safe_dump(tiny_params()))
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
