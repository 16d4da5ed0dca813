"""The pins in pyproject.toml, requirements.lock and environment.yml agree."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def direct_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, version = requirement.split("==")
        pins[name.lower()] = version
    return pins


def test_direct_dependencies_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unpinned = [r for r in project["dependencies"] if "==" not in r]
    assert unpinned == []


def test_lock_matches_pyproject():
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for name, version in direct_pins().items():
        assert lock.get(name.replace("_", "-")) == version, name


def test_environment_yml_matches_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item for item in environment["dependencies"] if isinstance(item, dict))
    listed = {}
    for entry in pip_section["pip"]:
        if "==" in entry:
            name, version = entry.split("==")
            listed[name.lower()] = version
    assert listed == direct_pins()
    assert "python=3.11" in environment["dependencies"]


def test_dvc_config_disables_analytics():
    config = (ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in config
    assert "check_update = false" in config


def test_make_lab_uses_this_environment_as_kernel(tmp_path):
    # `make lab` installs the python3 kernel into the environment with an absolute path to
    # its Python, and every make target puts the environment's Jupyter folder first, before
    # a python3 kernel in the user's own folder (here a decoy that runs /bin/false).
    recipe = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "ipykernel install --sys-prefix --name python3" in recipe
    database = subprocess.run(["make", "-n", "-p", "lab"], cwd=ROOT, capture_output=True, text=True).stdout
    assert f"JUPYTER_PATH := {ROOT}/.venv/share/jupyter" in database
    assert "export JUPYTER_PATH" in (ROOT / "Makefile").read_text()

    prefix, home = tmp_path / "prefix", tmp_path / "home"
    decoy = home / ".local" / "share" / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(json.dumps({"argv": ["/bin/false"], "display_name": "decoy", "language": "python"}))
    env = {**os.environ, "HOME": str(home), "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    env.pop("JUPYTER_DATA_DIR", None)
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "python3"],
                   env=env, check=True, capture_output=True)
    listed = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"], env=env,
                            check=True, capture_output=True, text=True).stdout
    spec = json.loads(listed)["kernelspecs"]["python3"]
    assert Path(spec["resource_dir"]).is_relative_to(prefix)
    assert spec["spec"]["argv"][0] == sys.executable
