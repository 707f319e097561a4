"""Analytic route: phonopy's symmetry expansion of -H.u reproduces the exact supercell Hessian."""

import copy

import numpy as np
import pytest
from ase.build import bulk
from phonopy.harmonic.force_constants import compact_fc_to_full_fc

from ase_fcnet.phonons import (
    displacement_vectors,
    force_constants_full_hessian,
    phonopy_from_atoms,
    phonopy_to_atoms,
)


@pytest.fixture(scope="module")
def analytic(system):
    name, atoms, calc, matrix = system
    phonon = phonopy_from_atoms(atoms, calc, supercell_matrix=matrix)
    hessian = force_constants_full_hessian(phonopy_to_atoms(phonon.supercell), calc)
    return name, phonon, hessian


def test_compact_fc_equal_hessian_rows(analytic):
    name, phonon, hessian = analytic
    fc = phonon.force_constants
    p2s = phonon.primitive.p2s_map
    assert fc.shape == (len(phonon.primitive), len(phonon.supercell), 3, 3)
    scale = np.abs(hessian).max()
    assert np.abs(fc - hessian[p2s]).max() < 1e-10 * scale, name


def test_full_fc_equal_hessian(analytic):
    name, phonon, hessian = analytic
    scale = np.abs(hessian).max()
    expanded = compact_fc_to_full_fc(phonon.primitive, phonon.force_constants)
    assert np.abs(expanded - hessian).max() < 1e-10 * scale, name
    full = phonon.replicate()
    full.dataset = copy.deepcopy(phonon.dataset)
    full.produce_force_constants(calculate_full_force_constants=True, fc_calculator="traditional")
    assert full.force_constants.shape == hessian.shape
    assert np.abs(full.force_constants - hessian).max() < 1e-10 * scale, name


def test_acoustic_sum_rule_and_gamma_acoustic_modes(analytic):
    name, phonon, _ = analytic
    fc = phonon.force_constants
    assert np.abs(fc.sum(axis=1)).max() < 1e-10 * np.abs(fc).max(), name
    freqs = phonon.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0]
    assert np.abs(freqs[:3]).max() < 1e-4, name
    assert freqs[3:].min() > 1.0, name


def test_minimal_displacement_set_has_no_plus_minus_pairs(analytic):
    name, phonon, _ = analytic
    u = displacement_vectors(phonon)
    atoms_displaced = [entry["number"] for entry in phonon.dataset["first_atoms"]]
    for k in range(len(u)):
        for m in range(k + 1, len(u)):
            same_atom = atoms_displaced[k] == atoms_displaced[m]
            assert not (same_atom and np.allclose(u[k], -u[m])), name
    # at most 3 displacements per symmetry-inequivalent atom of the primitive cell
    assert len(u) <= 3 * len(phonon.primitive)


def test_result_is_independent_of_displacement_amplitude(sw_calc, si_phonon):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    other = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=2, displacement_distance=0.2)
    scale = np.abs(si_phonon.force_constants).max()
    assert np.abs(other.force_constants - si_phonon.force_constants).max() < 1e-12 * scale


def test_progress_lines(sw_calc):
    lines = []
    phonopy_from_atoms(bulk("Si", "diamond", a=5.431, cubic=True), sw_calc, supercell_matrix=2, progress=lines.append)
    assert any(line.startswith("analytic force constants: 1 direction on 64-atom supercell") for line in lines)
    assert all(isinstance(line, str) and "\n" not in line for line in lines)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "newton"}, "unknown method"),
        ({"displacement_distance": 0.0}, "displacement_distance"),
        ({"supercell_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}, "singular"),
    ],
)
def test_bad_arguments(sw_calc, kwargs, message):
    with pytest.raises(ValueError, match=message):
        phonopy_from_atoms(bulk("Si", "diamond", a=5.431), sw_calc, **kwargs)


def test_non_periodic_atoms_rejected(sw_calc):
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.pbc = [True, True, False]
    with pytest.raises(ValueError, match="periodic"):
        phonopy_from_atoms(atoms, sw_calc, supercell_matrix=2)


def test_masses_come_from_ase(sw_calc):
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.set_masses([30.0, 30.0])
    phonon = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=2, primitive_matrix="P")
    np.testing.assert_allclose(phonon.primitive.masses, [30.0, 30.0])
    np.testing.assert_allclose(phonopy_to_atoms(phonon.supercell).get_masses(), 30.0)
