"""Periodic neighbour graphs for the energy model.

Neighbour pairs (i, j, integer image shift S) come from matscipy's compiled
neighbour list; the edge vectors themselves are built in torch from positions,
cell and shifts (:func:`edge_vectors`), so derivatives flow to positions and to
the strain.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from matscipy.neighbours import neighbour_list

#: Two atoms closer than this (Å) are treated as overlapping input.
MIN_DISTANCE = 0.4


class StructureError(ValueError):
    """A structure the model cannot evaluate (no atoms, overlap, unknown element, ...)."""


@dataclass
class AtomicGraph:
    """A batch of one or more structures as a graph.

    Attributes
    ----------
    positions : Tensor, shape (N, 3), Å
    cell : Tensor, shape (B, 3, 3), Å (rows are lattice vectors)
    species : Tensor, shape (N,), long — index into the model's species list
    edge_index : Tensor, shape (2, E), long — (centre i, neighbour j)
    shifts : Tensor, shape (E, 3) — integer image shifts S, so that
        r_ij = r_j - r_i + S @ cell
    batch : Tensor, shape (N,), long — structure index of each atom
    """

    positions: torch.Tensor
    cell: torch.Tensor
    species: torch.Tensor
    edge_index: torch.Tensor
    shifts: torch.Tensor
    batch: torch.Tensor

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def to(self, device=None, dtype=None) -> "AtomicGraph":
        """Move to a device; floating tensors take ``dtype`` if given."""

        def f(t):
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return AtomicGraph(*(f(getattr(self, k)) for k in _FIELDS))

    def with_positions(self, positions: torch.Tensor) -> "AtomicGraph":
        return replace(self, positions=positions)


_FIELDS = ("positions", "cell", "species", "edge_index", "shifts", "batch")


def _neighbour_cell(atoms: Atoms, cutoff: float) -> np.ndarray:
    """A non-singular cell for the neighbour search.

    Each non-periodic direction gets a vector orthogonal to the others (no
    shifts are ever produced along it, so the true cell still serves for the
    edge vectors; matscipy accepts atoms outside the box there).

    Returns
    -------
    ndarray, shape (3, 3), Å
    """
    cell = np.array(atoms.cell, dtype=float)
    if atoms.pbc.all():
        return cell
    length = np.ptp(atoms.positions, axis=0).max() + cutoff + 1.0
    new = np.where(atoms.pbc[:, None], cell, 0.0)
    for k in np.flatnonzero(~atoms.pbc):
        others = [new[m] for m in range(3) if m != k and np.linalg.norm(new[m]) > 0]
        if len(others) == 2:
            v = np.cross(others[0], others[1])
        elif len(others) == 1:
            a = others[0] / np.linalg.norm(others[0])
            v = np.eye(3)[np.argmin(np.abs(a))]
            v = v - v.dot(a) * a
        else:
            v = np.eye(3)[k]
        new[k] = v / np.linalg.norm(v) * length
    return new


def validate_structure(atoms: Atoms, source: str = "structure") -> None:
    """Raise :class:`StructureError` for input the model cannot evaluate."""
    if len(atoms) == 0:
        raise StructureError(f"{source}: contains no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        bad = int(np.where(~np.isfinite(atoms.positions).all(axis=1))[0][0])
        raise StructureError(f"{source}: atom {bad} has a non-finite position")
    if atoms.pbc.any():
        cell = np.array(atoms.cell)
        if any(np.linalg.norm(cell[k]) < 1e-8 for k in range(3) if atoms.pbc[k]):
            raise StructureError(f"{source}: periodic direction with a zero-length cell vector")


def neighbour_pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour pairs within ``cutoff`` for any cell.

    Works for triclinic cells, cells smaller than the cutoff sphere (several
    images of the same atom) and non-periodic directions.

    Returns
    -------
    i, j : ndarray, shape (E,), int — centre and neighbour atom indices
    S : ndarray, shape (E, 3), int — image shifts
    """
    validate_structure(atoms)
    tmp = Atoms(
        numbers=atoms.numbers, positions=atoms.positions,
        cell=_neighbour_cell(atoms, cutoff), pbc=atoms.pbc,
    )
    i, j, S, d = neighbour_list("ijSd", tmp, float(cutoff))
    close = d < MIN_DISTANCE
    if close.any():
        k = int(np.argmin(d))
        raise StructureError(
            f"atoms {i[k]} ({atoms[i[k]].symbol}) and {j[k]} ({atoms[j[k]].symbol}) are "
            f"{d[k]:.3f} Å apart (overlapping atoms; minimum allowed {MIN_DISTANCE} Å)"
        )
    return i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)


def species_indices(numbers: Sequence[int], species: Sequence[str]) -> np.ndarray:
    """Map atomic numbers to indices into ``species``; unknown elements raise.

    Returns
    -------
    ndarray, shape (N,), int
    """
    lookup = {chemical_symbols.index(s): k for k, s in enumerate(species)}
    numbers = np.asarray(numbers)
    unknown = sorted({int(z) for z in numbers if int(z) not in lookup})
    if unknown:
        names = ", ".join(chemical_symbols[z] for z in unknown)
        raise StructureError(
            f"element(s) {names} not supported by this model (it knows: {', '.join(species)})"
        )
    return np.array([lookup[int(z)] for z in numbers], dtype=np.int64)


def atoms_to_graph(
    atoms: Atoms,
    cutoff: float,
    species: Sequence[str],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> AtomicGraph:
    """Build the graph of one structure (a batch of size 1)."""
    idx = species_indices(atoms.numbers, species)
    i, j, S = neighbour_pairs(atoms, cutoff)
    n = len(atoms)
    return AtomicGraph(
        positions=torch.tensor(atoms.positions, dtype=dtype, device=device),
        cell=torch.tensor(np.array(atoms.cell)[None], dtype=dtype, device=device),
        species=torch.tensor(idx, device=device),
        edge_index=torch.tensor(np.stack([i, j]), device=device),
        shifts=torch.tensor(S, dtype=dtype, device=device),
        batch=torch.zeros(n, dtype=torch.long, device=device),
    )


def batch_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """Concatenate graphs into one batch (atom and structure indices offset)."""
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    soffsets = np.cumsum([0] + [g.n_structures for g in graphs[:-1]])
    return AtomicGraph(
        positions=torch.cat([g.positions for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        species=torch.cat([g.species for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        shifts=torch.cat([g.shifts for g in graphs]),
        batch=torch.cat([g.batch + int(o) for g, o in zip(graphs, soffsets)]),
    )


def edge_vectors(
    positions: torch.Tensor,
    cell: torch.Tensor,
    edge_index: torch.Tensor,
    shifts: torch.Tensor,
    batch: torch.Tensor,
) -> torch.Tensor:
    """Edge vectors r_ij = r_j - r_i + S @ cell, differentiable in positions and cell.

    Parameters
    ----------
    positions : Tensor, shape (N, 3), Å
    cell : Tensor, shape (B, 3, 3), Å
    edge_index : Tensor, shape (2, E)
    shifts : Tensor, shape (E, 3)
    batch : Tensor, shape (N,)

    Returns
    -------
    Tensor, shape (E, 3), Å
    """
    i, j = edge_index
    offset = torch.einsum("ek,ekl->el", shifts, cell.index_select(0, batch.index_select(0, i)))
    return positions.index_select(0, j) - positions.index_select(0, i) + offset
