"""Neighbour graphs (ase_fcnet.graph) against ASE's own neighbour list."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list

from ase_fcnet.graph import (
    MIN_DISTANCE,
    StructureError,
    atoms_to_graph,
    batch_graphs,
    edge_vectors,
    neighbour_pairs,
    species_indices,
)


def _graph_edges(atoms, cutoff):
    """(i, j, D) from atoms_to_graph + edge_vectors, as numpy."""
    species = sorted(set(atoms.get_chemical_symbols()))
    g = atoms_to_graph(atoms, cutoff, species)
    vec = edge_vectors(g.positions, g.cell, g.edge_index, g.shifts, g.batch)
    return g.edge_index[0].numpy(), g.edge_index[1].numpy(), vec.numpy()


def _as_sorted(i, j, d, D):
    """Rows (i, j, d, Dx, Dy, Dz) in a canonical order (sorted on rounded values)."""
    rows = np.column_stack([i, j, d, D])
    return rows[np.lexsort(np.round(rows, 6).T[::-1])]


def _assert_same_as_ase(atoms, cutoff, min_edges=1):
    i, j, d, D = neighbor_list("ijdD", atoms, cutoff)
    gi, gj, gD = _graph_edges(atoms, cutoff)
    assert len(i) >= min_edges, "test structure too sparse to be a meaningful check"
    assert len(gi) == len(i), f"{len(gi)} edges, ASE finds {len(i)}"
    ours = _as_sorted(gi, gj, np.linalg.norm(gD, axis=1), gD)
    ref = _as_sorted(i, j, d, D)
    np.testing.assert_array_equal(ours[:, :2], ref[:, :2])  # same (i, j) pairs
    np.testing.assert_allclose(ours[:, 2:], ref[:, 2:], rtol=0, atol=1e-10)  # same d and D
    # and matscipy's pairs (before edge vectors) are the same set
    pi, pj, S = neighbour_pairs(atoms, cutoff)
    assert sorted(zip(pi.tolist(), pj.tolist())) == sorted(zip(i.tolist(), j.tolist()))
    assert np.all(np.asarray(S)[:, ~atoms.pbc] == 0), "image shift along a non-periodic direction"


def _triclinic():
    atoms = Atoms("SiC", scaled_positions=[[0.0, 0.0, 0.0], [0.3, 0.4, 0.6]],
                  cell=[[3.0, 0.0, 0.0], [1.2, 2.8, 0.0], [0.7, -0.9, 3.1]], pbc=True)
    atoms.rattle(0.02, seed=3)
    return atoms


def _slab(tilt=0.0, shift_z=0.0):
    atoms = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    cell = atoms.cell.array.copy()
    cell[2, :2] += tilt
    atoms.set_cell(cell)
    atoms.positions[:, 2] += shift_z
    atoms.rattle(0.02, seed=1)
    return atoms


def _wire(pbc=(False, False, True), cell=(10.0, 10.0, 8.0)):
    pos = [[0, 0, 0], [0, 1.2, 2.0], [0, -1, 4.2], [0.5, 0, 6.0]]
    return Atoms("Si4", positions=pos, cell=cell, pbc=pbc)


def _molecule(cell=None):
    atoms = molecule("C6H6")
    atoms.positions += [-20.0, 5.0, 50.0]  # far outside any cell
    if cell is not None:
        atoms.set_cell(cell)
    return atoms


CASES = {
    "fcc-1atom-cutoff-2.5nn": (lambda: bulk("Cu", "fcc", a=3.6), 2.5 * 3.6 / np.sqrt(2)),
    "triclinic-small-cell": (_triclinic, 4.0),
    "triclinic-rattled-supercell": (lambda: _triclinic().repeat((2, 1, 1)), 3.5),
    "hexagonal": (lambda: bulk("Mg", "hcp", a=3.2, c=5.2), 6.0),
    "slab": (_slab, 4.0),
    "slab-tilted-c-outside-box": (lambda: _slab(tilt=1.3, shift_z=30.0), 4.0),
    "slab-mixed-pbc": (lambda: Atoms(_slab(), pbc=[True, False, True]), 4.0),
    "slab-zero-c-vector": (lambda: Atoms(_slab(), cell=_slab().cell.array * [[1], [1], [0]],
                                         pbc=[True, True, False]), 4.0),
    "wire": (_wire, 3.5),
    "wire-tilted": (lambda: _wire(cell=[[10, 0, 0], [0, 10, 0], [1, 1, 8.0]]), 3.5),
    "wire-along-a-short": (lambda: _wire(pbc=(True, False, False), cell=[2.5, 0, 0]), 3.5),
    "molecule-no-cell": (lambda: _molecule(), 3.0),
    "molecule-small-cell": (lambda: _molecule([4.0, 4.0, 4.0]), 3.0),
}


@pytest.mark.parametrize("name", CASES)
def test_neighbours_match_ase(name):
    make, cutoff = CASES[name]
    _assert_same_as_ase(make(), cutoff, min_edges=4)


def test_small_cell_has_several_images_of_same_atom():
    """1-atom fcc cell, cutoff 2.5 × NN distance d: shells d·√(1,2,3,4,5,6), all images."""
    atoms = bulk("Cu", "fcc", a=3.6)
    i, j, S = neighbour_pairs(atoms, 2.5 * 3.6 / np.sqrt(2))
    assert np.all(i == 0) and np.all(j == 0)
    assert len(i) == 12 + 6 + 24 + 12 + 24 + 8
    assert len({tuple(s) for s in S}) == len(S)
    assert not np.any(np.all(S == 0, axis=1)), "self-pair without shift"


def test_edge_vectors_differentiable_in_positions_and_cell():
    atoms = _triclinic()
    g = atoms_to_graph(atoms, 4.0, ["Si", "C"])
    pos = g.positions.clone().requires_grad_(True)
    cell = g.cell.clone().requires_grad_(True)
    vec = edge_vectors(pos, cell, g.edge_index, g.shifts, g.batch)
    w = torch.randn(vec.shape, dtype=vec.dtype, generator=torch.Generator().manual_seed(0))
    gp, gc = torch.autograd.grad((vec * w).sum(), [pos, cell])
    i, j = g.edge_index
    ref_p = torch.zeros_like(pos).index_add(0, j, w).index_add(0, i, -w)
    ref_c = torch.einsum("ek,el->kl", g.shifts, w)[None]
    torch.testing.assert_close(gp, ref_p, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gc, ref_c, rtol=1e-12, atol=1e-12)


def test_graph_dtypes_and_batching():
    a, b = _triclinic(), bulk("Si", "diamond", a=5.43)
    ga = atoms_to_graph(a, 4.0, ["Si", "C"])
    gb = atoms_to_graph(b, 4.0, ["Si", "C"], dtype=torch.float32)
    assert ga.positions.dtype == torch.float64 and gb.positions.dtype == torch.float32
    assert ga.species.dtype == torch.long and ga.edge_index.dtype == torch.long
    batch = batch_graphs([ga, gb.to(dtype=torch.float64)])
    assert batch.n_structures == 2 and batch.n_atoms == len(a) + len(b)
    assert batch.batch.tolist() == [0] * len(a) + [1] * len(b)
    vec = edge_vectors(batch.positions, batch.cell, batch.edge_index, batch.shifts, batch.batch)
    va = edge_vectors(ga.positions, ga.cell, ga.edge_index, ga.shifts, ga.batch)
    vb = edge_vectors(gb.positions, gb.cell, gb.edge_index, gb.shifts, gb.batch).double()
    torch.testing.assert_close(vec, torch.cat([va, vb]), rtol=0, atol=1e-6)
    assert int(batch.edge_index[:, ga.edge_index.shape[1]:].min()) == len(a)


def test_species_indices():
    assert species_indices([14, 6, 6, 14], ["Si", "C"]).tolist() == [0, 1, 1, 0]


# ----------------------------------------------------------------------------- bad input


def _error(atoms, species=("Si", "C"), cutoff=3.5) -> str:
    with pytest.raises(StructureError) as info:
        atoms_to_graph(atoms, cutoff, species)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_no_atoms_is_an_error():
    assert "no atoms" in _error(Atoms(cell=[5, 5, 5], pbc=True))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_position_names_the_atom(value):
    atoms = bulk("SiC", "zincblende", a=4.36, cubic=True)
    atoms.positions[5, 1] = value
    msg = _error(atoms)
    assert "atom 5" in msg and "finite" in msg


@pytest.mark.parametrize("pbc", [True, False])
def test_overlapping_atoms_names_both(pbc):
    atoms = Atoms("Si3C", positions=[[0, 0, 0], [2.0, 0, 0], [4.0, 0, 0], [2.1, 0.1, 0.0]],
                  cell=[8, 8, 8], pbc=pbc)
    msg = _error(atoms)
    assert "atoms 1" in msg and "and 3" in msg and "overlap" in msg


def test_identical_positions_are_overlap():
    atoms = Atoms("SiC", positions=[[1, 1, 1], [1, 1, 1]], cell=[5, 5, 5], pbc=True)
    msg = _error(atoms)
    assert "atoms 0" in msg and "and 1" in msg


def test_just_above_min_distance_is_accepted():
    atoms = Atoms("SiC", positions=[[0, 0, 0], [MIN_DISTANCE + 1e-3, 0, 0]])
    assert atoms_to_graph(atoms, 3.5, ["Si", "C"]).edge_index.shape == (2, 2)


def test_unknown_element_is_named():
    atoms = Atoms("SiCGe", positions=[[0, 0, 0], [1.9, 0, 0], [0, 1.9, 0]])
    msg = _error(atoms)
    assert "Ge" in msg and "Si" in msg  # names the bad element and the known ones


def test_zero_length_periodic_cell_vector():
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]],
                  pbc=True)
    assert "zero-length" in _error(atoms)
