"""The FCNet energy model: species, positions and cell in, energy out."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ase_fcnet.model.base import EnergyModel
from ase_fcnet.nn import BesselBasis, EquivariantAttention, PolynomialEnvelope
from ase_fcnet.nn._e3nn import o3


def hidden_irreps(scalar_channels: int, tensor_channels: int, l_max: int) -> o3.Irreps:
    """Parity-correct hidden irreps ``S x0e + T x1o + T x2e + ...`` up to l_max."""
    parts = [f"{scalar_channels}x0e"]
    parts += [f"{tensor_channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(1, l_max + 1)]
    return o3.Irreps("+".join(parts))


class FCNet(EnergyModel):
    """E(3)-equivariant graph attention energy model.

    Total energy E = Σ_i [ε(h_i) + e_ref(Z_i)]: per-atom energies read out from
    the invariant (l = 0) channels after ``num_layers`` attention blocks, plus
    per-species reference energies (eV). Build it with
    :func:`ase_fcnet.model.build_model`; the arguments are those of
    :class:`ase_fcnet.model.ModelConfig`.
    """

    def __init__(
        self,
        species: Sequence[str],
        cutoff: float,
        num_layers: int,
        l_max: int,
        scalar_channels: int,
        tensor_channels: int,
        num_radial: int,
        radial_hidden: int,
        num_heads: int,
        readout_hidden: int,
        envelope_p: int,
        product_channels: int = 0,
    ):
        super().__init__()
        self.species = list(species)
        self.cutoff = float(cutoff)
        n_species = len(self.species)
        self.irreps_sh = o3.Irreps.spherical_harmonics(l_max)
        self.basis = BesselBasis(cutoff, num_radial)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)
        self.embedding = nn.Linear(n_species, scalar_channels, bias=False)

        hidden = hidden_irreps(scalar_channels, tensor_channels, l_max)
        scalars = o3.Irreps(f"{scalar_channels}x0e")
        irreps = [scalars] + [hidden] * (num_layers - 1) + [scalars]
        self.layers = nn.ModuleList(
            EquivariantAttention(
                irreps[k], irreps[k + 1], self.irreps_sh, n_species,
                num_radial, radial_hidden, num_heads, product_channels,
            )
            for k in range(num_layers)
        )
        self.readout = nn.Sequential(
            nn.Linear(scalar_channels, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, 1)
        )
        #: Per-species reference energies, eV (fitted to data before training).
        self.reference_energies = nn.Parameter(torch.zeros(n_species))
        #: Scale of the learned per-atom energy, eV.
        self.register_buffer("energy_scale", torch.ones(()))

    def species_parameters(self) -> dict[str, torch.Tensor]:
        """As :meth:`EnergyModel.species_parameters`, plus the species embedding's columns."""
        out = super().species_parameters()
        w = self.embedding.weight
        out["embedding.weight"] = torch.arange(w.shape[1], device=w.device)[None, :].expand(w.shape)
        return out

    def atomic_energies(
        self,
        positions: torch.Tensor,
        cell: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        shifts: torch.Tensor,
        batch: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom energies.

        Parameters
        ----------
        positions : Tensor, shape (N, 3), Å
        cell : Tensor, shape (B, 3, 3), Å
        species : Tensor, shape (N,), long
        edge_index : Tensor, shape (2, E), long
        shifts : Tensor, shape (E, 3)
        batch : Tensor, shape (N,), long

        Returns
        -------
        Tensor, shape (N,), eV
        """
        dtype = self.reference_energies.dtype
        vec = self.edge_vectors(positions, cell, edge_index, shifts, batch)
        r = torch.linalg.norm(vec, dim=-1)
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        basis = self.basis(r)
        env = self.envelope(r)
        onehot = nn.functional.one_hot(species, len(self.species)).to(dtype)
        h = self.embedding(onehot)
        for layer in self.layers:
            h = layer(h, onehot, edge_index, sh, basis, env)
        eps = self.readout(h).squeeze(-1)
        return self.energy_scale * eps + self.reference_energies[species]
