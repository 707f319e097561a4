"""Calculator protocol for analytic Hessians: hessian_vector_products, get_hessian, TypeError."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones

from ase_fcnet.phonons import (
    force_constants_full_hessian,
    calculator_hessian_vector_products,
    phonopy_from_atoms,
    phonopy_to_atoms,
)


def _rattled_si(repeat=1, seed=3):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _force(atoms, calc):
    work = atoms.copy()
    work.calc = calc
    return work.get_forces()


def test_full_hessian_matches_central_differences_of_forces(sw_calc):
    """H[i, j, a, b] = -dF_ia/dr_jb; checks the (N, N, 3, 3) layout on a cell without symmetry."""
    atoms = _rattled_si()
    fc = force_constants_full_hessian(atoms, sw_calc)
    n = len(atoms)
    assert fc.shape == (n, n, 3, 3)
    h = 1e-4
    numeric = np.zeros_like(fc)
    for j in range(n):
        for b in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[j, b] += h
            minus.positions[j, b] -= h
            numeric[:, j, :, b] = -(_force(plus, sw_calc) - _force(minus, sw_calc)) / (2 * h)
    # central-difference error ~ h^2 * third derivative: ~1e-7 of the largest entry
    assert np.abs(fc - numeric).max() < 1e-5 * np.abs(fc).max()
    assert np.allclose(fc, fc.transpose(1, 0, 3, 2), atol=1e-12 * np.abs(fc).max())


def test_get_hessian_route_is_not_fooled_by_previous_structure(sw_calc):
    """matscipy reuses the previous neighbour list unless updated; the protocol must refresh it."""
    big, small = _rattled_si(repeat=2, seed=1), _rattled_si(repeat=1, seed=2)
    force_constants_full_hessian(big, sw_calc)
    reused = force_constants_full_hessian(small, sw_calc)
    fresh = force_constants_full_hessian(small, type(sw_calc)(**_sw_kwargs()))
    assert reused.shape == (8, 8, 3, 3)
    np.testing.assert_allclose(reused, fresh, rtol=0, atol=1e-12 * np.abs(fresh).max())


def _sw_kwargs():
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
        StillingerWeber,
    )

    return StillingerWeber(Stillinger_Weber_PRB_31_5262_Si)


def test_chunked_products_equal_single_call(sw_calc):
    atoms = _rattled_si()
    np.testing.assert_array_equal(
        force_constants_full_hessian(atoms, sw_calc, chunk_size=5),
        force_constants_full_hessian(atoms, sw_calc, chunk_size=1000),
    )
    with pytest.raises(ValueError, match="chunk_size"):
        force_constants_full_hessian(atoms, sw_calc, chunk_size=0)


class HVPOnly:
    """Calculator exposing only hessian_vector_products, backed by a dense reference Hessian."""

    def __init__(self, hessian):
        self.hessian = hessian
        self.calls = []

    def hessian_vector_products(self, atoms, vectors):
        self.calls.append((len(atoms), np.array(vectors)))
        n = len(atoms)
        flat = self.hessian.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
        return (flat @ vectors.reshape(len(vectors), -1).T).T.reshape(vectors.shape)

    def get_hessian(self, atoms):
        raise AssertionError("hessian_vector_products must take precedence over get_hessian")


def test_hessian_vector_products_protocol_drives_analytic_route(sw_calc):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    reference = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=2)
    supercell = phonopy_to_atoms(reference.supercell)
    hessian = force_constants_full_hessian(supercell, sw_calc)
    calc = HVPOnly(hessian)
    phonon = phonopy_from_atoms(atoms, calc, supercell_matrix=2)
    assert len(calc.calls) == 1
    n_atoms, vectors = calc.calls[0]
    assert n_atoms == 64 and vectors.shape == (len(phonon.dataset["first_atoms"]), 64, 3)
    np.testing.assert_allclose(np.linalg.norm(vectors.reshape(len(vectors), -1), axis=1), 1.0, rtol=1e-14)
    scale = np.abs(reference.force_constants).max()
    np.testing.assert_allclose(phonon.force_constants, reference.force_constants, rtol=0, atol=1e-10 * scale)


def test_wrong_shape_from_calculator_is_an_error():
    class Bad:
        def hessian_vector_products(self, atoms, vectors):
            return np.zeros((len(vectors), len(atoms)))

    atoms = _rattled_si()
    with pytest.raises(RuntimeError, match="shape"):
        calculator_hessian_vector_products(Bad(), atoms, np.ones((2, len(atoms), 3)))


def test_get_hessian_returning_none_is_an_error():
    class NoneHessian(LennardJones):
        def get_hessian(self, atoms):
            return None

    with pytest.raises(RuntimeError, match="None"):
        calculator_hessian_vector_products(NoneHessian(), _rattled_si(), np.ones((1, 8, 3)))


def test_vectors_shape_is_validated(sw_calc):
    with pytest.raises(ValueError, match="vectors must have shape"):
        calculator_hessian_vector_products(sw_calc, _rattled_si(), np.ones((2, 7, 3)))


def test_calculator_without_hessian_gives_clear_type_error():
    atoms = bulk("Ar", "fcc", a=5.26)
    calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=8.0)
    with pytest.raises(TypeError, match='no analytic Hessian.*method="finite-displacement"'):
        phonopy_from_atoms(atoms, calc, supercell_matrix=2, method="analytic")
    phonon = phonopy_from_atoms(atoms, calc, supercell_matrix=2, method="finite-displacement")
    assert phonon.force_constants.shape == (1, 8, 3, 3)
