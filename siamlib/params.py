"""Reading params.yaml with a profile's overrides, for scripts and commands outside DVC.

A profile (``profiles/NAME.yaml``) contains overrides of params.yaml, merged key by key: a
mapping in the profile updates the mapping of the same key, any other value replaces it.
DVC itself reads params.yaml alone; to run the pipeline on a profile, copy its values into
params.yaml (README, "Profiles").
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = "profiles"


def merge_params(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``base`` updated by ``overrides``, recursing into mappings in both.

    Any other value of ``overrides``, a list too, replaces the value in ``base``. The result
    shares no mutable value with either argument.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_params(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} not found") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {path} is not valid YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{what} {path} must hold a mapping of sections, got {type(values).__name__}")
    return values


def load_params(
    params_path: str | os.PathLike[str] = "params.yaml", profile: str | None = None
) -> dict[str, Any]:
    """Read ``params_path`` and merge the overrides of ``profile`` over it.

    Args:
        params_path: The params file, usually params.yaml at the project root.
        profile: None for params.yaml as it is; a name such as "tiny" for
            ``profiles/tiny.yaml`` beside the params file; or the path of a YAML file.

    Raises:
        FileNotFoundError: If the params file or the profile is missing; the message lists the
            profiles there are.
        ValueError: If a file is not YAML holding a mapping.
    """
    params_path = Path(params_path)
    params = _read_mapping(params_path, "params file")
    if profile is None:
        return params
    profile_path = Path(profile)
    if profile_path.suffix not in (".yaml", ".yml"):
        profile_path = params_path.parent / PROFILES_DIR / f"{profile}.yaml"
    if not profile_path.is_file():
        known = sorted(path.stem for path in (params_path.parent / PROFILES_DIR).glob("*.yaml"))
        raise FileNotFoundError(
            f"profile {profile_path} not found; profiles beside {params_path}: "
            f"{', '.join(known) or 'none'}"
        )
    return merge_params(params, _read_mapping(profile_path, "profile"))
