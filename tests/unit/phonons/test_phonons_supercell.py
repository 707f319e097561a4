"""Supercell-matrix resolution: explicit forms, validation errors, the automatic plane-spacing rule."""

import numpy as np
import pytest
from ase.build import bulk

from ase_fcnet.phonons import phonopy_from_atoms, resolve_supercell_matrix
from ase_fcnet.phonopy_bridge import default_supercell_matrix, plane_spacings

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
def test_automatic_is_smallest_diagonal_meeting_min_spacing(cell, min_length):
    matrix = resolve_supercell_matrix(cell, None, min_length)
    mult = np.diag(matrix)
    assert np.array_equal(matrix, np.diag(mult))
    assert np.all(plane_spacings(matrix @ cell) >= min_length - 1e-9)
    shorter = (mult - 1) * plane_spacings(cell)
    assert np.all((shorter < min_length) | (mult == 1))


def test_automatic_values_for_known_cells():
    # fcc primitive: vectors a/sqrt(2) = 3.840 Å long, planes a/sqrt(3) = 3.136 Å apart;
    # hexagonal a = 3.08 Å (planes 2.667 Å apart), c = 5.04 Å.
    assert np.allclose(plane_spacings(FCC), 5.431 / np.sqrt(3))
    assert np.array_equal(np.diag(resolve_supercell_matrix(FCC, None, 10.0)), [4, 4, 4])
    assert np.array_equal(np.diag(resolve_supercell_matrix(HEX, None, 10.0)), [4, 4, 2])
    assert np.array_equal(default_supercell_matrix(np.diag([5.0, 2.5, 20.0]), 10.0), np.diag([2, 4, 1]))


def test_skewed_cell_gets_planes_not_just_vectors_min_length_apart():
    """A cell sheared to 20°: vector lengths call for 2x2x2, whose planes are only 3.4 Å apart."""
    skewed = np.array([[5.0, 0.0, 0.0], [5.0 * np.cos(np.radians(20)), 5.0 * np.sin(np.radians(20)), 0.0],
                       [0.0, 0.0, 5.0]])
    lengths_rule = np.diag([2, 2, 2])
    assert np.linalg.norm(lengths_rule @ skewed, axis=1).min() > 10.0 - 1e-9
    assert plane_spacings(lengths_rule @ skewed).min() < 3.5
    matrix = resolve_supercell_matrix(skewed, None, 10.0)
    assert np.array_equal(np.diag(matrix), [6, 6, 2])
    assert plane_spacings(matrix @ skewed).min() >= 10.0 - 1e-9


def test_data_generation_and_phonons_choose_the_same_supercell(tmp_path):
    from ase.calculators.emt import EMT

    from ase_fcnet.generation.generate import generate_structure

    cu = bulk("Cu", "fcc", a=3.615)  # primitive, skewed
    labels = generate_structure("cu", cu, EMT, tmp_path, supercell_min_length=6.0,
                                method="finite-displacement")
    assert labels["supercell_matrix"] == resolve_supercell_matrix(cu.cell[:], None, 6.0).tolist()
    assert labels["supercell_matrix"] == np.diag([3, 3, 3]).tolist()


def test_singular_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="singular"):
        resolve_supercell_matrix(np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]), None, 10.0)


def test_phonopy_from_atoms_automatic_supercell_meets_min_length(sw_calc):
    atoms = bulk("Si", "diamond", a=5.431)
    phonon = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=None, min_length=6.0, primitive_matrix="P")
    assert np.all(plane_spacings(np.array(phonon.supercell.cell)) >= 6.0)
    assert np.array_equal(phonon.supercell_matrix, 2 * np.eye(3, dtype=int))
    assert len(phonon.supercell) == 16
