"""The architectures ase_fcnet can build, looked up by name.

Every model file records its architecture's name (file format ≥ 2), and
everything that builds a model (loading a file, the trainer, the converter)
goes through this table. An architecture is a typed, frozen config dataclass
with ``from_dict``/``to_dict`` and a builder
``build(config, dtype, device, seed) -> torch.nn.Module``; the module it
returns has ``species`` (list of str), ``cutoff`` (Å), ``energy(graph)`` and
``forward(positions, cell, species, edge_index, shifts, batch)`` → (B,) eV,
``energy_scale`` (eV) and ``reference_energies`` (per species, eV).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from ase_fcnet.model.config import ModelConfig, build_model, exact_wigner_3j
from ase_fcnet.model.nequip import NequIPConfig, build_nequip


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its typed config class and its builder."""

    name: str
    config_class: type
    builder: Callable[..., torch.nn.Module]
    description: str


#: name -> Architecture. Format-1 model files (no ``architecture`` key) are ``fcnet``.
ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (
        Architecture("fcnet", ModelConfig, build_model,
                     "equivariant graph attention (the distilled fcnet-small model)"),
        Architecture("nequip", NequIPConfig, build_nequip,
                     "NequIP convolution (the SevenNet universal potentials)"),
    )
}


def architecture(name: str) -> Architecture:
    """The registered architecture ``name``, or ValueError listing the known ones."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def config_architecture(config: Any) -> str:
    """The registered name of a typed model config's architecture (TypeError if none)."""
    for arch in ARCHITECTURES.values():
        if type(config) is arch.config_class:
            return arch.name
    raise TypeError(f"{type(config).__name__} is not the config of a registered architecture "
                    f"({sorted(ARCHITECTURES)})")


def architecture_name(model: torch.nn.Module) -> str:
    """The registered name of a model's architecture (from its ``config``'s type)."""
    try:
        return config_architecture(getattr(model, "config", None))
    except TypeError:
        raise TypeError(f"{type(model).__name__} is not a model of a registered architecture "
                        f"(no config of {sorted(ARCHITECTURES)})") from None


def config_from_dict(name: str, data: Mapping[str, Any]):
    """Typed config of architecture ``name`` from its plain mapping (ValueError if invalid)."""
    return architecture(name).config_class.from_dict(data)


def build(config: Any, dtype: torch.dtype = torch.float64,
          device: torch.device | str | None = None, seed: int | None = None) -> torch.nn.Module:
    """Build the model a typed config describes (its architecture from the config's type)."""
    builder = ARCHITECTURES[config_architecture(config)].builder
    return builder(config, dtype=dtype, device=device, seed=seed)
