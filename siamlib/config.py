"""Building the typed config dataclasses from sections of params.yaml."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


def config_from_mapping(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
    """Build the dataclass ``cls`` from ``values``, with its defaults for absent keys.

    Raises:
        ValueError: If a key is not a field of ``cls`` (a typo in params.yaml would otherwise
            be ignored silently), or the dataclass rejects a value.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(known)}")
    return cls(**values)
