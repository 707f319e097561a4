"""Every training-config key with its type, default and meaning (``fcnet train --help``)."""
from __future__ import annotations

import re
import textwrap
from dataclasses import MISSING, fields
from typing import Any

from ase_fcnet.model import registry
from ase_fcnet.training.config import DEFAULT_ARCHITECTURE, SECTIONS
from ase_fcnet.training.fields import type_name

#: Readable names of the field annotations of the architectures' config classes.
_ANNOTATION_NAMES = {
    "int": "integer", "float": "number", "bool": "true/false", "str": "string",
    "tuple[str, ...]": "list of strings", "tuple[int, ...]": "list of integers",
    "tuple[float, ...]": "list of numbers",
}


def _model_help(config_class: type) -> dict[str, str]:
    """Key descriptions from the numpy docstring of an architecture's config class.

    An entry may describe several keys (``act_scalars, act_gates : tuple of str``).
    """
    doc = config_class.__doc__ or ""
    out: dict[str, str] = {}
    for match in re.finditer(r"^    (\w+(?:, \w+)*) : ([^\n]*)\n((?:        [^\n]*\n?)+)", doc, re.M):
        text = " ".join(line.strip() for line in match.group(3).splitlines())
        for name in match.group(1).split(", "):
            out[name] = text
    return out


def describe_config(width: int = 96) -> str:
    """Every config key with its type, default and description, as plain text.

    Parameters
    ----------
    width : int
        Line width the descriptions are wrapped to.

    Returns
    -------
    str
        One block per section (separated by blank lines), one entry per key
        (``key (type, default ...): description``).
    """
    lines: list[str] = []

    def entry(text: str) -> None:
        lines.extend(textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      "))

    lines.append("model: (the model's architecture and its keys; may be left out when "
                 "training.init_model is set)")
    entry(f"architecture ({' | '.join(registry.ARCHITECTURES)}, default "
          f"{DEFAULT_ARCHITECTURE!r}): which registered architecture the other keys describe.")
    for arch in registry.ARCHITECTURES.values():
        cls = arch.config_class
        lines += ["", f"model, architecture {arch.name}: ({arch.description}; keys of "
                      f"{cls.__module__}.{cls.__name__})"]
        help_text = _model_help(cls)
        for f in fields(cls):
            text = help_text.get(f.name, "")
            default = "required" if f.default is MISSING else f"default {_plain(f.default)!r}"
            if len(default) > 40:  # long lists: after the description
                default, text = "default below", f"{text} Default: {_plain(f.default)!r}."
            kind = _ANNOTATION_NAMES.get(str(f.type), str(f.type))
            entry(f"{f.name} ({kind}, {default}): {text}")
    for name, cls in SECTIONS.items():
        lines += ["", f"{name}: ({(cls.__doc__ or '').strip()})"]
        for f in fields(cls):
            default = f.default_factory() if f.default is MISSING else f.default
            kind = type_name(f.metadata["kind"], f.metadata["choices"])
            entry(f"{f.name} ({kind}, default {default!r}): {f.metadata['help']}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """Tuples as lists (how a default is written in YAML)."""
    return list(value) if isinstance(value, tuple) else value
