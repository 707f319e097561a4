"""NequIP-convolution energy model (the architecture of the SevenNet universal potentials).

Built by :func:`build_nequip` from a typed :class:`NequIPConfig`; registered
as architecture ``"nequip"`` in :mod:`ase_fcnet.model.registry`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import nn

from ase_fcnet.model.base import EnergyModel
from ase_fcnet.model.config import check_species, config_from_mapping, exact_wigner_3j
from ase_fcnet.nn._e3nn import o3, plain_einsums
from ase_fcnet.nn.adapters import SpeciesAdapter
from ase_fcnet.nn.nequip import ACTIVATIONS, NequIPInteraction, TrainableBessel, XPLORSwitch
from ase_fcnet.nn.radial import PolynomialEnvelope

#: Where the modality one-hot may enter (``NequIPConfig.modal_inputs``).
MODAL_INPUTS = ("embedding", "interaction_in", "interaction_out", "readout")


@dataclass(frozen=True)
class NequIPConfig:
    """Architecture of a :class:`NequIPNet`.

    Parameters
    ----------
    species : tuple of str
        Chemical symbols, in the order of the one-hot species index.
    cutoff : float
        Neighbour cutoff r_c, Å.
    node_irreps : tuple of str
        Node-feature irreps before the first and after each interaction block
        (so ``len - 1`` blocks), e.g. ``("128x0e", "128x0e+64x1e+32x2e", ..., "128x0e")``.
        The last must be scalars only.
    num_basis : int
        Size of the trainable Bessel radial basis.
    radial_hidden : tuple of int
        Hidden widths of the MLP that maps the radial embedding to path weights.
    radial_activation : str
        Its activation (``silu``, ``tanh``, ...).
    cutoff_function : str
        ``polynomial`` (NequIP envelope of order ``polynomial_p``, C² at r_c) or
        ``xplor`` (switch from ``cutoff_on`` to r_c, C¹ there).
    polynomial_p : int
        Order of the polynomial envelope.
    cutoff_on : float
        Inner radius of the XPLOR switch, Å.
    lmax_edge : int
        Highest degree of the edge spherical harmonics (−1: the highest node degree).
    parity : bool
        Whether edge harmonics carry parity (−1)^l (False: all even, as in SevenNet).
    act_scalars, act_gates : tuple of str
        Activations of (even, odd) scalars and of the (even, odd) gates.
    denominators : tuple of float
        Per block: aggregated messages are divided by it (about √(neighbours)).
    readout_hidden : int
        Width of the linear readout's hidden layer (0: half the last node dimension).
    modalities : tuple of str
        Names of a multi-fidelity model's data modalities (empty: none).
    modality : str
        The modality this model evaluates (one of ``modalities``).
    modal_inputs : tuple of str
        Where the modality one-hot enters: any of ``embedding``, ``interaction_in``,
        ``interaction_out``, ``readout``.
    species_adapters : bool
        A :class:`~ase_fcnet.nn.adapters.SpeciesAdapter` after every block:
        per-species channel gains and scalar offsets, zero (the identity) until
        trained. ``training.train_species`` switches them on for fine-tuning.
    """

    species: tuple[str, ...]
    cutoff: float = 5.0
    node_irreps: tuple[str, ...] = ("128x0e",) + ("128x0e+64x1e+32x2e",) * 4 + ("128x0e",)
    num_basis: int = 8
    radial_hidden: tuple[int, ...] = (64, 64)
    radial_activation: str = "silu"
    cutoff_function: str = "polynomial"
    polynomial_p: int = 6
    cutoff_on: float = 4.5
    lmax_edge: int = -1
    parity: bool = False
    act_scalars: tuple[str, ...] = ("silu", "tanh")
    act_gates: tuple[str, ...] = ("silu", "tanh")
    denominators: tuple[float, ...] = (6.0,) * 5
    readout_hidden: int = 0
    modalities: tuple[str, ...] = ()
    modality: str = ""
    modal_inputs: tuple[str, ...] = ()
    species_adapters: bool = False

    def __post_init__(self):
        object.__setattr__(self, "species", check_species(self.species))
        blocks = len(self.node_irreps) - 1
        if blocks < 1:
            raise ValueError("model config: node_irreps needs at least two entries (one block)")
        for text in self.node_irreps:
            try:
                o3.Irreps(text)
            except (ValueError, AssertionError) as err:
                raise ValueError(f"model config: node_irreps entry {text!r} is not irreps") from err
        if any(ir.l > 0 for _, ir in o3.Irreps(self.node_irreps[-1])):
            raise ValueError("model config: the last node_irreps must be scalars (e.g. 128x0e)")
        if len(self.denominators) != blocks:
            raise ValueError(f"model config: {blocks} blocks need {blocks} denominators, "
                             f"got {len(self.denominators)}")
        if not self.cutoff > 0 or any(not d > 0 for d in self.denominators):
            raise ValueError("model config: cutoff and denominators must be > 0")
        if self.cutoff_function not in ("polynomial", "xplor"):
            raise ValueError(f"model config: cutoff_function must be 'polynomial' or 'xplor', "
                             f"got {self.cutoff_function!r}")
        if self.cutoff_function == "xplor" and not 0 < self.cutoff_on < self.cutoff:
            raise ValueError(f"model config: cutoff_on must lie in (0, cutoff), got {self.cutoff_on}")
        for name in (self.radial_activation, *self.act_scalars, *self.act_gates):
            if name not in ACTIVATIONS:
                raise ValueError(f"model config: unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
        if len(self.act_scalars) != 2 or len(self.act_gates) != 2:
            raise ValueError("model config: act_scalars and act_gates are (even, odd) pairs")
        bad = sorted(set(self.modal_inputs) - set(MODAL_INPUTS))
        if bad:
            raise ValueError(f"model config: unknown modal_inputs {bad}; known: {list(MODAL_INPUTS)}")
        if self.modalities and self.modality not in self.modalities:
            raise ValueError(f"model config: modality {self.modality!r} is not one of "
                             f"{list(self.modalities)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NequIPConfig":
        """Typed config from a plain mapping; unknown keys raise ValueError."""
        return config_from_mapping(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists, numbers, strings) that :meth:`from_dict` reads back."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}


class NequIPNet(EnergyModel):
    """NequIP-convolution energy model; arguments as :class:`NequIPConfig`.

    Per-atom energy ε_i = s(Z_i) · (W₂ W₁ h_i) + e_ref(Z_i) from the final
    scalar features h_i, with species-wise scale s and shift e_ref (eV).
    Energies are twice differentiable in positions except where a switching
    function is only C¹ (``cutoff_function: xplor``).
    """

    def __init__(self, config: NequIPConfig):
        super().__init__()
        c = config
        self.species = list(c.species)
        self.cutoff = float(c.cutoff)
        n_species, n_modal = len(self.species), len(c.modalities)
        irreps = [o3.Irreps(text) for text in c.node_irreps]
        lmax_edge = c.lmax_edge if c.lmax_edge >= 0 else max(ir.lmax for ir in irreps)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax_edge, p=-1 if c.parity else 1)
        self.basis = TrainableBessel(c.cutoff, c.num_basis)
        self.switch = (XPLORSwitch(c.cutoff_on, c.cutoff) if c.cutoff_function == "xplor"
                       else PolynomialEnvelope(c.cutoff, c.polynomial_p))
        modal = o3.Irreps(f"{n_modal}x0e") if n_modal else o3.Irreps("")
        self.modal_inputs = set(c.modal_inputs) if n_modal else set()

        def with_modal(where: str, ir: o3.Irreps) -> o3.Irreps:
            return ir + modal if where in self.modal_inputs else ir

        self.embedding = o3.Linear(with_modal("embedding", o3.Irreps(f"{n_species}x0e")), irreps[0])
        acts = {1: c.act_scalars[0], -1: c.act_scalars[1]}
        gates = {1: c.act_gates[0], -1: c.act_gates[1]}
        self.layers = nn.ModuleList(
            NequIPInteraction(irreps[k], irreps[k + 1], self.irreps_sh,
                              [c.num_basis, *c.radial_hidden], c.radial_activation,
                              c.denominators[k], acts, gates, n_modal,
                              "interaction_in" in self.modal_inputs,
                              "interaction_out" in self.modal_inputs)
            for k in range(len(irreps) - 1)
        )
        #: Per-species adapters after each block (``species_adapters``), or None.
        self.adapters = nn.ModuleList(SpeciesAdapter(ir, n_species) for ir in irreps[1:]
                                      ) if c.species_adapters else None
        hidden = c.readout_hidden or irreps[-1].dim // 2
        self.readout_hidden = o3.Linear(with_modal("readout", irreps[-1]), o3.Irreps(f"{hidden}x0e"))
        self.readout_out = o3.Linear(o3.Irreps(f"{hidden}x0e"), o3.Irreps("1x0e"))
        #: Per-species energy scale s(Z), eV.
        self.register_buffer("energy_scale", torch.ones(n_species, dtype=torch.float64))
        #: Per-species reference energies (shift) e_ref(Z), eV.
        self.reference_energies = nn.Parameter(torch.zeros(n_species, dtype=torch.float64))
        onehot = torch.zeros(n_modal, dtype=torch.float64)
        if n_modal:
            onehot[list(c.modalities).index(c.modality)] = 1.0
        self.register_buffer("modal_onehot", onehot, persistent=False)

    def species_parameters(self) -> dict[str, torch.Tensor]:
        """As :meth:`EnergyModel.species_parameters`, plus embedding rows and adapters."""
        out = super().species_parameters()
        w = self.embedding.weight
        index = torch.full(w.shape, -1, dtype=torch.long, device=w.device)
        start = 0
        for ins in self.embedding.instructions:   # e3nn: one (mul_in, mul_out) block per path
            mul_in, mul_out = ins.path_shape
            if ins.i_in == 0:   # the species one-hot (a modality one-hot comes after it)
                rows = torch.arange(mul_in, device=w.device).repeat_interleave(mul_out)
                index[start:start + mul_in * mul_out] = rows
            start += mul_in * mul_out
        out["embedding.weight"] = index
        for k, adapter in enumerate(self.adapters or ()):
            out.update({f"adapters.{k}.{name}": v
                        for name, v in adapter.species_of_entries().items()})
        return out

    def atomic_energies(self, positions: torch.Tensor, cell: torch.Tensor, species: torch.Tensor,
                        edge_index: torch.Tensor, shifts: torch.Tensor,
                        batch: torch.Tensor) -> torch.Tensor:
        """Per-atom energies.

        Parameters
        ----------
        positions : Tensor, shape (N, 3), Å — any float dtype (float64 keeps
            edge vectors exact in a float32 model)
        cell : Tensor, shape (B, 3, 3), Å — the dtype of ``positions``
        species : Tensor, shape (N,), long
        edge_index : Tensor, shape (2, E), long
        shifts : Tensor, shape (E, 3)
        batch : Tensor, shape (N,), long

        Returns
        -------
        Tensor, shape (N,), eV, in the model's dtype
        """
        dtype = self.reference_energies.dtype
        vec = self.edge_vectors(positions, cell, edge_index, shifts, batch)
        r = torch.linalg.norm(vec, dim=-1)
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        embedding = self.basis(r) * self.switch(r)[:, None]
        h = nn.functional.one_hot(species, len(self.species)).to(dtype)
        modal = self.modal_onehot.to(dtype).expand(h.shape[0], -1)
        if "embedding" in self.modal_inputs:
            h = torch.cat([h, modal], dim=1)
        h = self.embedding(h)
        for k, layer in enumerate(self.layers):
            h = layer(h, edge_index, sh, embedding, modal)
            if self.adapters is not None:
                h = self.adapters[k](h, species)
        if "readout" in self.modal_inputs:
            h = torch.cat([h, modal], dim=1)
        eps = self.readout_out(self.readout_hidden(h)).squeeze(-1)
        return self.energy_scale[species] * eps + self.reference_energies[species]


def build_nequip(config: NequIPConfig, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, seed: int | None = None) -> NequIPNet:
    """Build a :class:`NequIPNet` (float64 by default; torch's default dtype untouched).

    Wigner-3j buffers are recomputed in float64 (e3nn builds them in torch's
    default dtype), so a float64 model is exactly equivariant.

    Parameters
    ----------
    config : NequIPConfig
    dtype : torch.dtype
    device : torch.device or str, optional
    seed : int, optional
        Seed of the initial weights (a private generator state).
    """
    with plain_einsums(), torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = NequIPNet(config)
    model.config = config
    exact_wigner_3j(model)
    return model.to(device=device, dtype=dtype)
