"""Build typed dataclasses from plain mappings (parsed YAML/JSON) with clear errors.

Only the field types this package uses are supported: ``int``, ``float``,
``str``, ``bool``, ``tuple[X, ...]``, ``Optional[X]``, ``Literal[...]``, nested
dataclasses, and classes with a ``from_dict(data, where)`` class method (a base class
that chooses its subclass from the data, such as a search space's family). Every error names the dotted path of the offending field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Mapping, TypeVar, Union

from .errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Construct dataclass ``cls`` from ``data``, checking keys and value types.

    Missing keys take the field's default; unknown keys are an error that lists
    the allowed ones. ``where`` prefixes every error message (e.g. ``"space"``).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], f"{where}.{name}" if where else name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where or 'config'}: missing required key {name!r}")
    return cls(**kwargs)


def to_mapping(obj: Any) -> Any:
    """Inverse of :func:`from_mapping`: dataclasses to dicts, tuples to lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (tuple, list)):
        return [to_mapping(v) for v in obj]
    return obj


def convert(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against type ``tp`` and return it in canonical form."""
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and not dataclasses.is_dataclass(tp) and hasattr(tp, "from_dict"):
        return tp.from_dict(value, where)  # a base class that picks its subclass from the data
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        non_none = [o for o in options if o is not type(None)]
        if len(non_none) == 1:
            return convert(non_none[0], value, where)
        raise TypeError(f"unsupported union {tp}")  # programming error, not user input
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
            )
        return value
    if origin is tuple:
        (item_tp, ellipsis) = typing.get_args(tp)
        assert ellipsis is Ellipsis, "only tuple[X, ...] is supported"
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of {item_tp.__name__}, got {_describe(value)}")
        return tuple(convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, str):
            # PyYAML (YAML 1.1) reads "5e-4" as a string; accept any text that is a number.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported field type {tp}")


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
