"""The fast symmetry set-up gives exactly phonopy's permutations and point groups."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.spacegroup import crystal
from phonopy import Phonopy
from phonopy.harmonic import force_constants
from phonopy.structure import cells, symmetry
from phonopy.structure.cells import compute_all_sg_permutations
from phonopy.structure.symmetry import collect_unique_rotations

from ase_fcnet.phonons.adapter import atoms_to_phonopy
from ase_fcnet.phonons.symmetry import (
    atomic_permutations,
    fast_phonopy_symmetry,
    site_rotations,
    unique_rotations,
)


def _structures():
    quartz = crystal(["Si", "O"], basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)],
                     spacegroup=154, cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    p1 = bulk("SiC", "zincblende", a=4.36)
    p1.rattle(0.02, seed=3)
    return {
        "NaCl conventional 2x2x2": (bulk("NaCl", "rocksalt", a=5.64, cubic=True), np.diag([2, 2, 2])),
        "Si primitive, non-diagonal supercell": (bulk("Si", "diamond", a=5.43),
                                                 np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) * 2),
        "wurtzite GaN 3x3x2": (bulk("GaN", "wurtzite", a=3.19, c=5.19), np.diag([3, 3, 2])),
        "alpha-quartz 2x2x2": (quartz, np.diag([2, 2, 2])),
        "rattled SiC (P1) 3x3x3": (p1, np.diag([3, 3, 3])),
    }


def _phonopy(atoms, matrix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Phonopy(atoms_to_phonopy(atoms), supercell_matrix=matrix, primitive_matrix="auto")


@pytest.fixture(scope="module", params=list(_structures()))
def case(request):
    atoms, matrix = _structures()[request.param]
    return atoms, matrix, _phonopy(atoms, matrix)


@pytest.fixture(scope="module")
def stock(case):
    return case[2]


def _args(phonon):
    sc, ops = phonon.supercell, phonon.symmetry.symmetry_operations
    return (sc.scaled_positions, ops["rotations"], ops["translations"],
            np.array(sc.cell.T, dtype="double", order="C"), phonon.symmetry.tolerance, sc.numbers)


def test_permutations_equal_phonopys(stock):
    args = _args(stock)
    ours = atomic_permutations(*args)
    assert ours is not None and ours.dtype == np.int64 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, compute_all_sg_permutations(*args))
    # matching by position alone gives the same bijections here
    np.testing.assert_array_equal(atomic_permutations(*args[:5]), ours)


def test_unique_rotations_equal_phonopys(stock):
    rotations = stock.symmetry.symmetry_operations["rotations"]
    ours = unique_rotations(rotations)
    np.testing.assert_array_equal(ours, collect_unique_rotations(rotations))
    assert unique_rotations(np.zeros((0, 3, 3), dtype=int)).shape == (0, 3, 3)


def test_operations_that_do_not_hold_are_refused(stock):
    positions, rotations, translations, lattice, prec, types = _args(stock)
    moved = positions.copy()
    moved[0] += 10 * prec / np.linalg.norm(lattice, axis=0)   # atom 0 off its site by ~17 symprec
    if len(rotations) > 1:
        assert atomic_permutations(moved, rotations, translations, lattice, prec, types) is None
    # a type that no operation can map (atom 0 alone of its kind) cannot give a bijection
    odd = np.array(types)
    odd[0] = 999
    if len(rotations) > 1:
        assert atomic_permutations(positions, rotations, translations, lattice, prec, odd) is None


def test_phonopy_built_inside_the_block_is_identical(case):
    atoms, matrix, stock = case
    with fast_phonopy_symmetry():
        fast = _phonopy(atoms, matrix)
    for a, b in ((fast.symmetry, stock.symmetry), (fast.primitive_symmetry, stock.primitive_symmetry)):
        np.testing.assert_array_equal(a.atomic_permutations, b.atomic_permutations)
        np.testing.assert_array_equal(a.pointgroup_operations, b.pointgroup_operations)
        np.testing.assert_array_equal(a.reciprocal_operations, b.reciprocal_operations)
        np.testing.assert_array_equal(a.get_map_atoms(), b.get_map_atoms())
        np.testing.assert_array_equal(a.get_map_operations(), b.get_map_operations())
    np.testing.assert_array_equal(fast.primitive.atomic_permutations,
                                  stock.primitive.atomic_permutations)


def test_block_restores_phonopy_even_after_errors_and_nesting():
    originals = (cells.compute_all_sg_permutations, symmetry.compute_all_sg_permutations,
                 symmetry.collect_unique_rotations, symmetry.Symmetry._get_site_symmetry,
                 force_constants.similarity_transformation)
    with fast_phonopy_symmetry():
        with fast_phonopy_symmetry():
            assert symmetry.collect_unique_rotations is unique_rotations
        assert symmetry.collect_unique_rotations is unique_rotations
        assert cells.compute_all_sg_permutations is not originals[0]
    with pytest.raises(RuntimeError, match="inside"):
        with fast_phonopy_symmetry():
            raise RuntimeError("inside")
    assert (cells.compute_all_sg_permutations, symmetry.compute_all_sg_permutations,
            symmetry.collect_unique_rotations, symmetry.Symmetry._get_site_symmetry,
            force_constants.similarity_transformation) == originals


def test_threads_entering_and_leaving_leave_phonopy_as_it_was():
    original = cells.compute_all_sg_permutations
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        for _ in range(50):
            with fast_phonopy_symmetry():
                assert cells.compute_all_sg_permutations is not original

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cells.compute_all_sg_permutations is original


def test_site_rotations_equal_phonopys(stock):
    sym, cell = stock.symmetry, stock.supercell
    ops = sym.symmetry_operations
    for atom in range(0, len(cell), max(1, len(cell) // 7)):
        ours = site_rotations(cell.scaled_positions[atom], cell.cell, ops["rotations"],
                              ops["translations"], sym.tolerance)
        np.testing.assert_array_equal(ours, sym.get_site_symmetry(atom))
        with fast_phonopy_symmetry():
            np.testing.assert_array_equal(sym.get_site_symmetry(atom), ours)


def test_force_constants_distributed_inside_the_block_are_bitwise_phonopys(case):
    atoms, matrix, _ = case
    results = []
    for fast in (False, True):
        phonon = _phonopy(atoms, matrix)
        phonon.generate_displacements(distance=0.01, is_plusminus=False)
        n = len(phonon.supercell)
        phonon.forces = np.random.default_rng(1).standard_normal((len(phonon.displacements), n, 3))
        if fast:
            with fast_phonopy_symmetry():
                phonon.produce_force_constants(calculate_full_force_constants=False,
                                               fc_calculator="traditional")
        else:
            phonon.produce_force_constants(calculate_full_force_constants=False,
                                           fc_calculator="traditional")
        results.append(phonon.force_constants)
    assert np.abs(results[0]).max() > 0
    np.testing.assert_array_equal(results[1], results[0])
