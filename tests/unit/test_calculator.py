"""FCNetCalculator: ASE properties, units/sign conventions, caching, errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.optimize import BFGS

import ase_fcnet.calculator as calc_module
from ase_fcnet import FCNetCalculator, save_model
from ase_fcnet.graph import StructureError
from ase_fcnet.model.derivatives import VOIGT


@pytest.fixture
def calc(model):
    return FCNetCalculator(model, device="cpu")


def _with_calc(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms


def test_implemented_properties(calc):
    assert set(calc.implemented_properties) >= {"energy", "free_energy", "forces", "stress", "hessian"}
    assert calc.species == ["Si", "C"]


def test_properties_match_model_and_conventions(calc, sic_cubic, helpers):
    atoms = _with_calc(sic_cubic, calc)
    ref = helpers.evaluate(calc.model, sic_cubic)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"], rel=1e-14)
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()
    assert calc.get_property("free_energy", atoms) == calc.get_property("energy", atoms)
    forces = atoms.get_forces()
    assert forces.shape == (len(atoms), 3) and forces.dtype == np.float64
    np.testing.assert_allclose(forces, ref["forces"], rtol=1e-14, atol=1e-15)
    stress = atoms.get_stress()
    assert stress.shape == (6,)  # Voigt xx yy zz yz xz xy
    np.testing.assert_allclose(stress, ref["stress"], rtol=1e-14, atol=1e-16)
    full = atoms.get_stress(voigt=False)
    for k, (a, b) in enumerate(VOIGT):
        assert full[a, b] == full[b, a] == stress[k]


def test_stress_matches_ase_numerical_stress(calc, sic_prim, record_max, helpers):
    """ASE's own finite-difference stress (its sign convention) agrees with ours."""
    atoms = _with_calc(sic_prim, calc)
    atoms.set_cell(atoms.cell.array * 1.015, scale_atoms=True)
    stress = atoms.get_stress()
    assert np.abs(stress).max() > 1e-2
    numerical = calculate_numerical_stress(atoms, eps=1e-5)
    err = helpers.rel_err(stress, numerical)
    assert record_max("calculator stress vs ASE calculate_numerical_stress, relative", err) < 1e-6


@pytest.mark.parametrize("pbc", [False, [True, True, False], [False, False, True]])
def test_stress_needs_full_periodicity(calc, molecule_sic, pbc):
    atoms = molecule_sic.copy()
    atoms.set_cell([30.0, 30.0, 30.0])
    atoms.pbc = pbc
    atoms.positions -= atoms.positions.min(axis=0) - 5.0
    atoms.calc = calc
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()
    assert atoms.get_forces().shape == (4, 3)  # the rest still works


def test_forces_match_ase_numerical_forces(calc, molecule_sic, helpers, record_max):
    atoms = _with_calc(molecule_sic, calc)
    err = helpers.rel_err(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-4))
    assert record_max("calculator forces vs ASE calculate_numerical_forces, relative", err) < 1e-6


def test_hessian_shape_and_force_constant_rows(calc, sic_prim, helpers):
    atoms = _with_calc(sic_prim.repeat((2, 1, 1)), calc)
    n = len(atoms)
    hess = calc.get_hessian(atoms)
    assert hess.shape == (3 * n, 3 * n) and hess.dtype == np.float64
    np.testing.assert_allclose(hess, helpers.model_hessian(calc.model, atoms), rtol=0, atol=1e-13)
    rows = calc.force_constant_rows(atoms, [2, 0])
    assert rows.shape == (2, n, 3, 3)
    phi = hess.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(rows, phi[[2, 0]], rtol=0, atol=1e-12)
    assert np.abs(rows).max() > 1.0


def test_hessian_vector_products(calc, sic_cubic):
    atoms = _with_calc(sic_cubic, calc)
    hess = calc.get_hessian(atoms)
    v = np.random.default_rng(0).normal(size=(3, len(atoms), 3))
    done = []
    hv = calc.hessian_vector_products(atoms, v, progress=lambda d, t: done.append(d))
    np.testing.assert_allclose(hv.reshape(3, -1), v.reshape(3, -1) @ hess.T, rtol=0,
                               atol=1e-12 * np.abs(hess).max())
    assert done[-1] == 3
    with pytest.raises(ValueError, match=r"\(K, 8, 3\)"):
        calc.hessian_vector_products(atoms, v[:, :5])


def test_results_are_cached(calc, sic_cubic, monkeypatch):
    calls = []
    original = calc_module.energy_forces_stress

    def counting(*args, **kwargs):
        calls.append(kwargs.get("stress"))
        return original(*args, **kwargs)

    monkeypatch.setattr(calc_module, "energy_forces_stress", counting)
    atoms = _with_calc(sic_cubic, calc)
    f1 = atoms.get_forces()
    f2 = atoms.get_forces()
    atoms.get_potential_energy()
    assert len(calls) == 1 and np.array_equal(f1, f2)
    atoms.get_stress()  # not computed yet: one more evaluation
    atoms.get_stress()
    assert len(calls) == 2
    atoms.positions[3, 0] += 0.01  # changed positions: recompute
    f3 = atoms.get_forces()
    assert len(calls) == 3 and not np.allclose(f3, f1)
    atoms.set_cell(atoms.cell.array * 1.01, scale_atoms=True)
    atoms.get_potential_energy()
    assert len(calls) == 4


def test_hessian_cached_and_reset(calc, sic_prim, monkeypatch):
    calls = []
    original = calc_module.hessian
    monkeypatch.setattr(calc_module, "hessian", lambda *a, **k: calls.append(1) or original(*a, **k))
    atoms = _with_calc(sic_prim, calc)
    h1 = calc.get_hessian(atoms)
    h2 = calc.get_hessian(atoms)
    assert len(calls) == 1 and np.array_equal(h1, h2)
    atoms.rattle(0.01, seed=9)
    assert not np.allclose(calc.get_hessian(atoms), h1) and len(calls) == 2


def test_no_model_error_says_how_to_pass_one(monkeypatch, tmp_path):
    import ase_fcnet.pretrained

    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", tmp_path)  # no bundled model files
    with pytest.raises(FileNotFoundError) as info:
        FCNetCalculator()
    msg = str(info.value)
    assert "FCNetCalculator(model=" in msg


def test_model_from_file_and_bad_model(model, tmp_path, sic_cubic, helpers):
    save_model(model, tmp_path / "m.pt")
    atoms = _with_calc(sic_cubic, FCNetCalculator(str(tmp_path / "m.pt"), device="cpu"))
    assert atoms.get_potential_energy() == pytest.approx(helpers.energy(model, sic_cubic), rel=1e-14)
    with pytest.raises(TypeError, match="ase_fcnet model, got dict"):
        FCNetCalculator(model={"not": "a model"}, device="cpu")
    with pytest.raises(TypeError, match="registered architecture"):
        FCNetCalculator(model=torch.nn.Linear(2, 2), device="cpu")


def test_structure_errors_surface_through_calculator(calc):
    atoms = Atoms("SiGe", positions=[[0, 0, 0], [2.0, 0, 0]], calculator=calc)
    with pytest.raises(StructureError, match="Ge"):
        atoms.get_potential_energy()
    atoms = Atoms("SiC", positions=[[0, 0, 0], [0.1, 0, 0]], calculator=calc)
    with pytest.raises(StructureError, match="atoms 0 .* and 1"):
        atoms.get_forces()


def test_bfgs_lowers_the_energy(calc, sic_cubic):
    atoms = _with_calc(sic_cubic, calc)
    atoms.rattle(0.05, seed=4)
    e0 = atoms.get_potential_energy()
    energies = []
    opt = BFGS(atoms, logfile=None, maxstep=0.04)
    opt.attach(lambda: energies.append(atoms.get_potential_energy()))
    opt.run(fmax=1e-4, steps=6)
    assert opt.nsteps == 6 and len(energies) == 7
    assert energies[-1] < e0 - 1e-2
    assert min(energies[1:]) < energies[0]


def test_model_is_frozen_in_eval_mode(calc):
    assert not calc.model.training
    assert not any(p.requires_grad for p in calc.model.parameters())


def test_calculator_leaves_callers_model_alone(model):
    FCNetCalculator(model, device="cpu", dtype="float32")
    assert next(model.parameters()).dtype == torch.float64
    assert all(p.requires_grad for p in model.parameters())


def test_two_calculators_on_one_model_are_independent(model, sic_cubic):
    c64 = FCNetCalculator(copy.deepcopy(model), device="cpu")
    c32 = FCNetCalculator(copy.deepcopy(model), device="cpu", dtype="float32")
    e64 = _with_calc(sic_cubic, c64).get_potential_energy()
    e32 = _with_calc(sic_cubic, c32).get_potential_energy()
    assert e64 != e32 and e32 == pytest.approx(e64, rel=1e-5)
