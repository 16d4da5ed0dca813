"""The pins in pyproject.toml, requirements.lock and environment.yml agree."""

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
