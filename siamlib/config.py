"""Building the typed config dataclasses from sections of params.yaml."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


def _check_value(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation``, or raise ValueError naming the field."""
    origin = typing.get_origin(annotation)
    where = f"{owner}.{name}"
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        options = tuple(option for option in options if option is not type(None))
        if len(options) > 1:
            # e.g. bool | str for a setting that is true, false or "auto"
            for option in options:
                try:
                    return _check_value(owner, name, value, option)
                except ValueError:
                    continue
            names = " or ".join(getattr(option, "__name__", str(option)) for option in options)
            raise ValueError(f"{where} must be a {names}, got {value!r}")
        (annotation,) = options
        origin = typing.get_origin(annotation)

    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        # YAML reads 1e-3 (no dot) as the string "1e-3", so numeric strings are accepted.
        if isinstance(value, bool):
            raise ValueError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {value!r}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(
            _check_value(owner, f"{name}[{index}]", item, item_type)
            for index, item in enumerate(value)
        )
    return value


def config_from_mapping(cls: type[ConfigT], values: Mapping[str, Any] | None) -> ConfigT:
    """Build the dataclass ``cls`` from ``values``, with its defaults for absent keys.

    Values are checked against the fields' type annotations (bool, int, float, str, optional
    and tuple types), so a wrong type in params.yaml fails here with the key's name rather than
    later in arithmetic.

    Raises:
        ValueError: If ``values`` is not a mapping, a key is not a field of ``cls`` (a typo in
            params.yaml would otherwise be ignored silently), a value has the wrong type, or
            the dataclass rejects a value.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"{cls.__name__} settings must be a mapping of keys to values, got {values!r}")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(known)}")
    hints = typing.get_type_hints(cls)
    checked = {
        name: _check_value(cls.__name__, name, value, hints[name]) for name, value in values.items()
    }
    return cls(**checked)
