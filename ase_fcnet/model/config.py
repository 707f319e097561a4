"""Typed model configuration and the builder function.

This is the one place where plain config (a YAML mapping, CLI options, a
checkpoint's stored arguments) becomes typed builder arguments.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
from ase.data import chemical_symbols

from ase_fcnet.model.fcnet import FCNet


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an :class:`FCNet`.

    Parameters
    ----------
    species : tuple of str
        Chemical symbols the model knows, e.g. ``("Si", "C")``.
    cutoff : float
        Neighbour cutoff r_c, Å.
    num_layers : int
        Interaction (attention) blocks.
    l_max : int
        Highest spherical-harmonic degree of edges and hidden features.
    scalar_channels : int
        Multiplicity of the invariant (0e) hidden channels.
    tensor_channels : int
        Multiplicity of each l > 0 hidden irrep.
    num_radial : int
        Bessel radial basis size.
    radial_hidden : int
        Width of the radial and attention MLPs.
    num_heads : int
        Attention heads.
    readout_hidden : int
        Width of the per-atom energy readout MLP.
    envelope_p : int
        Order of the polynomial cutoff envelope (≥ 2; energy is C² in positions).
    """

    species: tuple[str, ...]
    cutoff: float = 5.0
    num_layers: int = 2
    l_max: int = 2
    scalar_channels: int = 32
    tensor_channels: int = 8
    num_radial: int = 8
    radial_hidden: int = 32
    num_heads: int = 2
    readout_hidden: int = 32
    envelope_p: int = 6

    def __post_init__(self):
        species = tuple(self.species)
        object.__setattr__(self, "species", species)
        if not species:
            raise ValueError("model config: 'species' must list at least one element")
        bad = [s for s in species if s not in chemical_symbols[1:]]
        if bad:
            raise ValueError(f"model config: unknown element symbol(s) {bad}")
        if len(set(species)) != len(species):
            raise ValueError(f"model config: duplicate species in {list(species)}")
        if self.cutoff <= 0:
            raise ValueError(f"model config: cutoff must be > 0 Å, got {self.cutoff}")
        for name in ("num_layers", "scalar_channels", "num_radial", "radial_hidden",
                     "num_heads", "readout_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if self.l_max < 0 or self.tensor_channels < 0:
            raise ValueError("model config: l_max and tensor_channels must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Typed config from a plain mapping; unknown keys raise ValueError."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"model config: unknown key(s) {unknown}; known keys: {sorted(known)}"
            )
        if "species" not in data:
            raise ValueError("model config: 'species' is required")
        kwargs = {}
        for key, value in data.items():
            if key == "species":
                kwargs[key] = tuple(str(s) for s in value)
            else:
                typ = int if known[key].type in ("int", int) else float
                try:
                    kwargs[key] = typ(value)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"model config: {key}={value!r} is not a number") from err
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists, numbers) that :meth:`from_dict` reads back."""
        data = asdict(self)
        data["species"] = list(self.species)
        return data


def build_model(
    config: ModelConfig,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    seed: int | None = None,
) -> FCNet:
    """Build an :class:`FCNet` from its typed configuration.

    Parameters
    ----------
    config : ModelConfig
    dtype : torch.dtype
        Parameter dtype (float64 by default; torch's global default is untouched).
    device : torch.device or str, optional
    seed : int, optional
        Seed for the initial weights (a private generator state; the global
        RNG is restored afterwards).
    """
    if seed is None:
        model = FCNet(**_kwargs(config))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FCNet(**_kwargs(config))
    model.config = config
    return model.to(device=device, dtype=dtype)


def _kwargs(config: ModelConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}
