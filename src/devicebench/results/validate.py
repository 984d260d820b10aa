"""Checking what a file handed back to us holds against the record types, field by field.

``from_dict`` builds records from whatever JSON it is given; :func:`check_fields` then walks
the record and its parts and compares each value with its field's type hint, so that a
results file or a store row with a string where a number belongs is one error naming that
field (``records[0].latency_ms.n: expected int, got str``) rather than a value that crashes
a report later or reaches a page unescaped.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

__all__ = ["check_fields", "first_line"]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _fits(value: Any, tp: Any, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when ``value`` is not of type ``tp``."""
    if tp is Any or tp is object:
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                _fits(value, arm, where)
                return
            except ValueError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ValueError(
            f"{where}: expected {' or '.join(_name(a) for a in args)}, got {type(value).__name__}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: expected one of {', '.join(map(repr, args))}, got {value!r}"[:300])
        return
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp in (str, bool):
        ok = isinstance(value, tp)
    elif origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if args and not (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            if origin is tuple and len(args) != len(value):
                raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
            arms = args if origin is tuple else args * len(value)
        else:
            arms = (args[0],) * len(value) if args else ()
        for i, (item, arm) in enumerate(zip(value, arms)):
            _fits(item, arm, f"{where}[{i}]")
        return
    elif origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        if args:
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"{where}: a key is not a string")  # noqa: TRY004 - one error type for every misfit
                _fits(item, args[1], f"{where}.{key}")
        return
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            raise ValueError(f"{where}: expected an object ({tp.__name__}), got {type(value).__name__}")
        check_fields(value, where)
        return
    elif isinstance(tp, type):
        ok = isinstance(value, tp)
    else:
        return  # a hint this checker does not know: accepted
    if not ok:
        raise ValueError(f"{where}: expected {_name(tp)}, got {type(value).__name__}")


def check_fields(obj: Any, where: str = "") -> None:
    """Check every field of the dataclass ``obj`` (and of its parts) against its type hint.

    Raises:
        ValueError: the first field whose value does not fit, named by its path
            (``record 0.latency_ms.n: expected int, got str``).
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        _fits(getattr(obj, f.name), hints.get(f.name, Any), f"{where}.{f.name}" if where else f.name)
