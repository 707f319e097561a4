"""Typed model configuration and the builder function.

This is the one place where plain config (a YAML mapping, CLI options, a
checkpoint's stored arguments) becomes typed builder arguments.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
from ase.data import chemical_symbols

from ase_fcnet.model.fcnet import FCNet
from ase_fcnet.nn._e3nn import o3, plain_einsums


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
    product_channels : int
        Channels of each block's node-wise product of aggregated messages
        (:class:`~ase_fcnet.nn.product.NodeProduct`, three-body terms at per-node
        cost); 0 (default) leaves it out. Its output starts at zero, so a
        trained model can be grown by adding it (``training.init_model``).
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
    product_channels: int = 0

    def __post_init__(self):
        object.__setattr__(self, "species", check_species(self.species))
        if not (math.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"model config: cutoff must be a finite number > 0 Å, got {self.cutoff}")
        if self.envelope_p < 2:
            raise ValueError(f"model config: envelope_p must be >= 2 (C² energy), got {self.envelope_p}")
        for name in ("num_layers", "scalar_channels", "num_radial", "radial_hidden",
                     "num_heads", "readout_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if self.l_max < 0 or self.tensor_channels < 0 or self.product_channels < 0:
            raise ValueError("model config: l_max, tensor_channels and product_channels must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Typed config from a plain mapping; unknown keys raise ValueError."""
        return config_from_mapping(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists, numbers) that :meth:`from_dict` reads back."""
        data = asdict(self)
        data["species"] = list(self.species)
        return data


def check_species(species: Any) -> tuple[str, ...]:
    """The species as a tuple of known, distinct element symbols, or ValueError."""
    if isinstance(species, str):
        raise ValueError(f"model config: species must be a list of element symbols, "
                         f"got the string {species!r}")
    species = tuple(species)
    if not species:
        raise ValueError("model config: 'species' must list at least one element")
    bad = [s for s in species if s not in chemical_symbols[1:]]
    if bad:
        raise ValueError(f"model config: unknown element symbol(s) {bad}")
    if len(set(species)) != len(species):
        raise ValueError(f"model config: duplicate species in {list(species)}")
    return species


def config_from_mapping(cls: type, data: Mapping[str, Any]):
    """A frozen config dataclass from a plain mapping (YAML, a model file's stored arguments).

    Each value is converted by its field's annotation (``int``, ``float``,
    ``bool``, ``str`` or ``tuple[T, ...]`` of those); unknown keys, a missing
    ``species`` and values of the wrong kind raise ValueError naming the key.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"model config: must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"model config: unknown key(s) {unknown}; known keys: {sorted(known)}")
    if "species" not in data:
        raise ValueError("model config: 'species' is required")
    kwargs = {}
    for key, value in data.items():
        kind = known[key]
        if kind.startswith("tuple["):
            item = kind[len("tuple["):].split(",")[0].strip()
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                if key == "species":
                    check_species(value)
                raise ValueError(f"model config: {key} must be a list, got {value!r}")
            kwargs[key] = tuple(_scalar(f"{key}[{i}]", v, item) for i, v in enumerate(value))
        else:
            kwargs[key] = _scalar(key, value, kind)
    return cls(**kwargs)


def _scalar(key: str, value: Any, kind: str) -> Any:
    if kind == "int":
        return _integer(key, value)
    if kind == "float":
        return _number(key, value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"model config: {key}={value!r} is not true/false")
        return value
    return str(value)


def _number(key: str, value: Any) -> float:
    """A float from a number or a numeric string (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"model config: {key}={value!r} is not a number")
    try:
        return float(value)
    except ValueError as err:
        raise ValueError(f"model config: {key}={value!r} is not a number") from err


def _integer(key: str, value: Any) -> int:
    """An int from an integral number or string; 2.5 or True are refused."""
    number = _number(key, value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"model config: {key}={value!r} is not an integer")
    return int(number)


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
    with plain_einsums(), torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = FCNet(**_kwargs(config))
    model.config = config
    exact_wigner_3j(model)
    return model.to(device=device, dtype=dtype)


def exact_wigner_3j(model: torch.nn.Module) -> None:
    """Recompute e3nn's Wigner-3j buffers in float64.

    e3nn builds them in torch's default dtype (float32 here), which leaves
    ~6e-9 rounding in a float64 model and breaks equivariance at that level.
    The buffers are not part of model files, so this also fixes loaded models.
    """
    for name, buf in model.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("_w3j_"):
            l1, l2, l3 = (int(x) for x in leaf[len("_w3j_"):].split("_"))
            buf.data = o3.wigner_3j(l1, l2, l3, dtype=torch.float64, device=buf.device)


def _kwargs(config: ModelConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}
