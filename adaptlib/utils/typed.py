"""Option values checked against a config dataclass's declared types, with clear errors naming the option.

Values come from YAML files, JSON and the command line, so a number may arrive as a string ("2e-4" quoted in a
file): a numeric string is read as the number a numeric field needs, and anything else that does not fit is an
``OptionTypeError`` naming the option, the value and the expected type. Numbers that already fit are kept as
they are (an ``int`` stays an ``int`` in a ``float`` field), so a run's configuration, and its hash, never
change by being checked.
"""

from __future__ import annotations

import math
import re
import types
import typing
from functools import lru_cache
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml


class OptionTypeError(ValueError):
    """A value of the wrong type (or out of its range) for an option; the message says what it expects."""


_MISMATCH = object()


@lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of dataclass ``cls`` (modules use ``from __future__ import annotations``,
    so the annotations are strings until resolved here)."""
    return get_type_hints(cls)


def describe(hint: Any) -> str:
    """``int | None`` -> "an integer or null"."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return "any value"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if hint is type(None):
        return "null"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if args and all(a is args[0] for a in args):
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list [{', '.join(describe(a) for a in args)}]"
    if origin in (list, typing.List):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin in (dict, typing.Dict):
        return f"a mapping of {_plural(args[0])} to {_plural(args[1])}" if args else "a mapping"
    return getattr(hint, "__name__", str(hint))


def _plural(hint: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(hint, describe(hint))


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace("_", ""))
    except ValueError:
        return None


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` needs it, or ``_MISMATCH``."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in args:  # a value that already fits one member is kept as it is
            if _coerce_strict(value, arg):
                return value
        for arg in args:
            out = _coerce(value, arg)
            if out is not _MISMATCH:
                return out
        return _MISMATCH
    if hint is type(None):
        return None if value is None else _MISMATCH
    if hint is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if hint is int:
        if isinstance(value, bool):
            return _MISMATCH
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            number = _number(value)
            if number is not None and math.isfinite(number) and number.is_integer():
                return int(number)
        return _MISMATCH
    if hint is float:
        if isinstance(value, bool):
            return _MISMATCH
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            number = _number(value)
            return _MISMATCH if number is None else number
        return _MISMATCH
    if hint is str:
        return value if isinstance(value, str) else _MISMATCH
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0]) for v in value]
        else:
            if len(value) != len(args):
                return _MISMATCH
            items = [_coerce(v, a) for v, a in zip(value, args)]
        return _MISMATCH if any(i is _MISMATCH for i in items) else type(value)(items)
    if origin in (list, typing.List):
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        items = [_coerce(v, args[0]) if args else v for v in value]
        return _MISMATCH if any(i is _MISMATCH for i in items) else list(items)
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            return _MISMATCH
        if not args:
            return value
        out = {}
        for k, v in value.items():
            ck, cv = _coerce(k, args[0]), _coerce(v, args[1])
            if ck is _MISMATCH or cv is _MISMATCH:
                return _MISMATCH
            out[ck] = cv
        return out
    if isinstance(hint, type):
        return value if isinstance(value, hint) else _MISMATCH
    return value


def _coerce_strict(value: Any, hint: Any) -> bool:
    """Whether ``value`` already is a ``hint`` (no conversion needed)."""
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return False


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked (and a numeric string read) for type ``hint``; ``where`` names the option in errors:
    ``"part 'coop_prompt': option 'n_ctx'"`` -> "... = 'abc' has the wrong type: expected an integer"."""
    out = _coerce(value, hint)
    if out is _MISMATCH:
        raise OptionTypeError(f"{where} = {value!r} has the wrong type: expected {describe(hint)}")
    return out


def coerce_fields(cls: type, values: dict[str, Any], where: str, special: dict[str, Any] | None = None) -> dict:
    """Each of ``values`` checked against the type of its field in dataclass ``cls``; ``special`` gives other
    types for some fields (e.g. ``epochs`` may be one number or a table). Unknown keys are the caller's."""
    hints = {**field_types(cls), **(special or {})}
    return {key: coerce(value, hints[key], f"{where}: option {key!r}") if key in hints else value
            for key, value in values.items()}


# ------------------------------------------------------------------------------------------------ YAML
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.X)


class NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``2e-4`` and ``1e3`` as numbers (YAML 1.1 wants ``2.0e-4``)."""


NumberLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that reads numbers written as the papers write them (``lr: 2e-4``)."""
    return yaml.load(text, Loader=NumberLoader)  # noqa: S506 - a SafeLoader subclass
