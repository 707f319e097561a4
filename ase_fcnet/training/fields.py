"""Conversion of one plain config value (from YAML) to its typed value, with clear errors."""
from __future__ import annotations

import math
from typing import Any

_NAMES = {
    "int": "integer", "optional_int": "integer or null", "float": "number", "str": "string",
    "bool": "true/false", "str_list": "list of strings", "betas": "two numbers",
    "auto_float": "'auto' or number", "optional_str": "string or null",
}


def type_name(kind: str, choices: tuple[str, ...] = ()) -> str:
    """Human-readable name of a value kind (for help texts and errors)."""
    if kind == "choice":
        return " | ".join(choices)
    return _NAMES[kind]


def _fail(where: str, expected: str, value: Any) -> None:
    raise ValueError(f"config key '{where}' must be {expected}, got {value!r} "
                     f"({type(value).__name__})")


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        _fail(where, "a number", value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            _fail(where, "a number", value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, "a finite number", value)
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, "an integer", value)
    if isinstance(value, float) and not value.is_integer():
        _fail(where, "an integer", value)
    return int(value)


def _check_range(value, where: str, low, high, low_open: bool) -> None:
    if low is not None and (value < low or (low_open and value == low)):
        sign = ">" if low_open else ">="
        raise ValueError(f"config key '{where}' must be {sign} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"config key '{where}' must be <= {high}, got {value}")


def convert(value: Any, where: str, kind: str, choices: tuple[str, ...] = (), low=None,
            high=None, low_open: bool = False, help: str = "") -> Any:
    """Typed value of one config entry.

    Parameters
    ----------
    value : any
        As read from YAML.
    where : str
        ``section.key``, used in error messages.
    kind : str
        One of ``int``, ``optional_int``, ``float``, ``str``, ``bool``,
        ``str_list``, ``betas``, ``auto_float``, ``optional_str``, ``choice``.
    choices : tuple of str
        Allowed values of a ``choice``.
    low, high : number, optional
        Allowed range (inclusive unless ``low_open``).
    help : str
        Unused here (the description travels in the same metadata).

    Raises
    ------
    ValueError
        Wrong type or out of range; the message names ``where``.
    """
    if kind == "optional_int":
        if value is None:
            return None
        kind = "int"
    if kind == "optional_str":
        if value is None:
            return None
        kind = "str"
    if kind == "auto_float" and value == "auto":
        return "auto"
    if kind == "int":
        out = _int(value, where)
    elif kind in ("float", "auto_float"):
        out = _float(value, where)
    elif kind == "bool":
        if not isinstance(value, bool):
            _fail(where, "true or false", value)
        return value
    elif kind in ("str", "choice"):
        if not isinstance(value, str):
            _fail(where, "a string", value)
        if kind == "choice" and value not in choices:
            raise ValueError(f"config key '{where}' must be one of {', '.join(choices)}, "
                             f"got {value!r}")
        return value
    elif kind == "str_list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            _fail(where, "a list of strings", value)
        return list(value)
    elif kind == "betas":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            _fail(where, "a list of two numbers [beta1, beta2]", value)
        out = [_float(v, where) for v in value]
        if not all(0.0 <= b < 1.0 for b in out):
            raise ValueError(f"config key '{where}' must have both betas in [0, 1), got {out}")
        return out
    else:
        raise ValueError(f"config key '{where}': unknown kind {kind!r}")
    _check_range(out, where, low, high, low_open)
    return out
