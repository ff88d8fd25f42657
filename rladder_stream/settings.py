"""``key=value`` settings checked against the type of the field they set, so ``epochs=abc`` is refused
when it is typed, not as a ``TypeError`` deep inside training."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from .errors import UsageError


def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if tp in names:
        return names[tp]
    origin = get_origin(tp)
    if origin is dict:
        return 'a JSON object, e.g. {"key": 1}'
    if origin in (tuple, list):
        return "a JSON list, e.g. [1, 2]"
    return getattr(tp, "__name__", str(tp))


def get_origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def matches(value: Any, tp: Any) -> bool:
    """Whether a JSON-decoded ``value`` fits the annotation ``tp`` (unknown annotations: left to the class)."""
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict)
    if origin in (tuple, list):
        return isinstance(value, (list, tuple))
    return True


def check_setting(cls: type, key: str, value: Any) -> None:
    """Raise :class:`UsageError` when ``value`` does not fit the type of field ``key`` of dataclass ``cls``."""
    tp = typing.get_type_hints(cls).get(key, Any)
    if not matches(value, tp):
        raise UsageError(f"setting {key}={value!r}: expected {_type_name(tp)}")
