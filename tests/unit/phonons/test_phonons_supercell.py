"""Supercell-matrix resolution: explicit forms, validation errors, automatic minimum length."""

import numpy as np
import pytest
from ase.build import bulk

from ase_fcnet.phonons import phonopy_from_atoms, resolve_supercell_matrix

FCC = bulk("Si", "diamond", a=5.431).cell[:]
HEX = bulk("SiC", "wurtzite", a=3.08, c=5.04).cell[:]
TRICLINIC = np.array([[4.1, 0.0, 0.0], [1.3, 5.2, 0.0], [0.7, -0.9, 6.3]])


def test_explicit_forms():
    assert np.array_equal(resolve_supercell_matrix(FCC, 3), 3 * np.eye(3, dtype=int))
    assert np.array_equal(resolve_supercell_matrix(FCC, (2, 3, 4)), np.diag([2, 3, 4]))
    nondiag = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]
    assert np.array_equal(resolve_supercell_matrix(FCC, nondiag), np.array(nondiag))
    assert np.array_equal(resolve_supercell_matrix(FCC, np.diag([2.0, 2.0, 1.0])), np.diag([2, 2, 1]))


@pytest.mark.parametrize(
    "matrix, message",
    [
        ([[1, 0, 0], [0, 1, 0], [1, 1, 0]], "singular"),
        (0, "singular"),
        ([[0, 1, 0], [1, 0, 0], [0, 0, 1]], "negative determinant"),
        ([2, 2], "3 ints or a 3x3"),
        ([2.5, 2, 2], "integer"),
        ("abc", "numeric"),
    ],
)
def test_invalid_matrices(matrix, message):
    with pytest.raises(ValueError, match=message):
        resolve_supercell_matrix(FCC, matrix)


@pytest.mark.parametrize("min_length", [0.0, -3.0, float("nan")])
def test_invalid_min_length(min_length):
    with pytest.raises(ValueError, match="min_length"):
        resolve_supercell_matrix(FCC, None, min_length)


@pytest.mark.parametrize("cell", [FCC, HEX, TRICLINIC], ids=["fcc", "hexagonal", "triclinic"])
@pytest.mark.parametrize("min_length", [6.0, 10.0, 12.5])
def test_automatic_is_smallest_diagonal_meeting_min_length(cell, min_length):
    matrix = resolve_supercell_matrix(cell, None, min_length)
    mult = np.diag(matrix)
    assert np.array_equal(matrix, np.diag(mult))
    lengths = np.linalg.norm(matrix @ cell, axis=1)
    assert np.all(lengths >= min_length)
    shorter = (mult - 1) * np.linalg.norm(cell, axis=1)
    assert np.all((shorter < min_length) | (mult == 1))


def test_automatic_values_for_known_cells():
    # fcc primitive vectors are a/sqrt(2) = 3.840 Å; hexagonal a = 3.08, c = 5.04 Å.
    assert np.array_equal(np.diag(resolve_supercell_matrix(FCC, None, 10.0)), [3, 3, 3])
    assert np.array_equal(np.diag(resolve_supercell_matrix(HEX, None, 10.0)), [4, 4, 2])


def test_phonopy_from_atoms_automatic_supercell_meets_min_length(sw_calc):
    atoms = bulk("Si", "diamond", a=5.431)
    phonon = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=None, min_length=7.0, primitive_matrix="P")
    lengths = np.linalg.norm(np.array(phonon.supercell.cell), axis=1)
    assert np.all(lengths >= 7.0)
    assert np.array_equal(phonon.supercell_matrix, 2 * np.eye(3, dtype=int))
    assert len(phonon.supercell) == 16
