"""What every energy model shares: per-atom energies summed per structure."""
from __future__ import annotations

import torch
from torch import nn

from ase_fcnet.graph import AtomicGraph, edge_vectors


class EnergyModel(nn.Module):
    """Base of the registered architectures: a subclass defines :meth:`atomic_energies`.

    Attributes a subclass sets: ``species`` (list of str), ``cutoff`` (Å),
    ``energy_scale`` (eV) and ``reference_energies`` (per species, eV).
    """

    def atomic_energies(self, positions: torch.Tensor, cell: torch.Tensor, species: torch.Tensor,
                        edge_index: torch.Tensor, shifts: torch.Tensor,
                        batch: torch.Tensor) -> torch.Tensor:
        """Per-atom energies, Tensor shape (N,), eV (arguments as :meth:`forward`)."""
        raise NotImplementedError

    def edge_vectors(self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor,
                     shifts: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Edge vectors r_j − r_i + S·cell, Tensor shape (E, 3), Å, in the model's dtype.

        They are formed in the inputs' precision (float64 from ASE) and only then
        cast: r_j − r_i in float32 would lose ~1e-6 Å to cancellation.
        """
        vec = edge_vectors(positions, cell, edge_index, shifts, batch)
        return vec.to(self.reference_energies.dtype)

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, species: torch.Tensor,
                edge_index: torch.Tensor, shifts: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Total energy of each structure.

        Parameters
        ----------
        positions : Tensor, shape (N, 3), Å
        cell : Tensor, shape (B, 3, 3), Å
        species : Tensor, shape (N,), long — index into ``species``
        edge_index : Tensor, shape (2, E), long — (centre i, neighbour j)
        shifts : Tensor, shape (E, 3) — integer image shifts
        batch : Tensor, shape (N,), long — structure of each atom

        Returns
        -------
        Tensor, shape (B,), eV
        """
        e_atom = self.atomic_energies(positions, cell, species, edge_index, shifts, batch)
        out = torch.zeros(cell.shape[0], dtype=e_atom.dtype, device=e_atom.device)
        return out.index_add(0, batch, e_atom)

    def species_parameters(self) -> dict[str, torch.Tensor]:
        """The parameters that act on one species each, with the species of every entry.

        Used by ``training.train_species``: training only the entries of some
        species leaves every structure without them computed exactly as before.

        Returns
        -------
        dict — parameter name → long Tensor of the parameter's shape: the species
        index of each entry, −1 for entries of no species (e.g. modality inputs).
        This base class knows ``reference_energies``; architectures add theirs.
        """
        ref = self.reference_energies
        return {"reference_energies": torch.arange(ref.shape[0], device=ref.device)}

    def energy(self, graph: AtomicGraph) -> torch.Tensor:
        """Total energies of a graph batch, Tensor shape (B,), eV."""
        return self(graph.positions, graph.cell, graph.species, graph.edge_index,
                    graph.shifts, graph.batch)
