"""Building frozen config dataclasses from user-supplied values, with clear errors.

Used wherever parameters arrive as text or loose mappings (``--set stage.param=value``,
remover options, HTTP JSON): each value is checked against the field's type and a
wrong name or value raises ``InvalidConfigError`` naming it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import InvalidConfigError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(value: Any, kind: Any, where: str) -> Any:
    """Convert ``value`` (often a string from the command line) to the type ``kind``."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, where)
            except InvalidConfigError as exc:
                errors.append(str(exc))
        raise InvalidConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if kind is Any or origin in (dict, Mapping) or kind is dict:
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            text = str(value).lower() if isinstance(value, str) else ""
            return int(float(value)) if "." in text or "e" in text else int(value)
        if kind is float:
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: int("inf"), int(1e400)
        name = getattr(kind, "__name__", str(kind))
        finite = " (a finite number)" if kind in (int, float) else ""
        raise InvalidConfigError(f"{where}: expected {name}{finite}, got {value!r}") from None
    return value


def build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """``cls(**values)`` with names checked and values coerced; ``where`` prefixes errors."""
    return replace(cls(), values, where)


def replace(instance: T, values: Mapping[str, Any], where: str) -> T:
    """``dataclasses.replace`` with names checked and values coerced."""
    types = field_types(type(instance))
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise InvalidConfigError(
            f"{where}: unknown parameter {unknown[0]!r}; known: {', '.join(sorted(types)) or 'none'}"
        )
    converted = {name: coerce(value, types[name], f"{where}.{name}") for name, value in values.items()}
    try:
        return dataclasses.replace(instance, **converted)
    except (TypeError, ValueError) as exc:
        message = str(exc)  # most configs name their section already ("crop.padding must be ...")
        raise InvalidConfigError(message if message.startswith(f"{where}.") else f"{where}: {message}") from None


def check_range(name: str, value: float, low: float, high: float) -> None:
    """For a config's ``__post_init__``: ValueError naming ``name`` unless low <= value <= high
    (NaN included). The upper ends keep one setting from asking for terabytes."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
