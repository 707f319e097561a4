"""Reference calculators, analytic Hessians and phonopy data generation."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import phonopy
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from phonopy.file_IO import parse_FORCE_CONSTANTS

from ase_fcnet.generation import generate as gen
from ase_fcnet.generation.prototypes import split_of
from ase_fcnet.generation.references import (
    REFERENCES,
    InaccurateHessianError,
    analytic_hessian,
    hessian_column_error,
    matscipy_hessian_cost,
    reference_calculator,
)

SW = functools.partial(reference_calculator, "sw-si")
QPOINTS = [[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3]]


def _fd_columns(atoms, make_calc, indices, h=1e-4):
    """Central differences -(F(+h) - F(-h)) / 2h, shape (3N, 3 len(indices)), eV/Å²."""
    cols = []
    for i in indices:
        for a in range(3):
            f = []
            for sign in (1, -1):
                work = atoms.copy()
                work.positions[i, a] += sign * h
                work.calc = make_calc()
                f.append(work.get_forces().ravel())
            cols.append(-(f[0] - f[1]) / (2 * h))
    return np.array(cols).T


def _frequencies(ph):
    ph.run_qpoints(QPOINTS)
    return ph.qpoints.frequencies


def _si_structures():
    ideal = bulk("Si", "diamond", a=5.431)
    rattled = ideal.copy()
    rattled.rattle(0.03, seed=4)
    strained = ideal.copy()
    strained.set_cell(ideal.cell.array * 1.02, scale_atoms=True)
    return [("si-ideal", ideal), ("si-rattled", rattled), ("si-strained", strained)]


class _Counter:
    """Calculator factory that counts how many calculators it made."""

    def __init__(self, name):
        self.name, self.calls = name, 0

    def __call__(self):
        self.calls += 1
        return reference_calculator(self.name)


class _FakeHessian(Calculator):
    implemented_properties = ("energy", "forces")

    def __init__(self, hessian):
        super().__init__()
        self.hessian = hessian

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}

    def get_hessian(self, atoms, format="sparse"):
        return self.hessian


def test_unknown_reference_lists_the_known_ones():
    with pytest.raises(ValueError, match="emt, sw-si, tersoff-sic"):
        reference_calculator("sw-sic")
    assert reference_calculator("sw-si") is not reference_calculator("sw-si")
    assert set(REFERENCES) == {"sw-si", "tersoff-sic", "emt"}
    assert not hasattr(reference_calculator("emt"), "get_hessian")


def test_sw_hessian_equals_central_differences():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(0.05, seed=1)
    hess = analytic_hessian(atoms, SW())
    assert hess.shape == (24, 24) and np.array_equal(hess, hess.T)
    fd = _fd_columns(atoms, SW, range(8))
    # central differences at h = 1e-4 Å agree to 6e-8 eV/Å² (max |H| = 19 eV/Å²)
    assert np.abs(hess - fd).max() < 1e-6


def test_second_cell_of_other_size_gets_its_own_hessian():
    calc = SW()
    first = bulk("Si", "diamond", a=5.431, cubic=True)
    assert analytic_hessian(first, calc).shape == (24, 24)
    big = bulk("Si", "diamond", a=5.431).repeat(3)
    big.rattle(0.03, seed=2)
    hess = analytic_hessian(big, calc)  # same calculator, last used on 8 atoms
    assert hess.shape == (162, 162)
    cols = [3 * i + a for i in (0, 17, 53) for a in range(3)]
    fd = _fd_columns(big, SW, (0, 17, 53))
    assert np.abs(hess[:, cols] - fd).max() < 1e-6


def test_shape_and_symmetry_checks():
    atoms = bulk("Si", "diamond", a=5.431).repeat((3, 3, 3))
    with pytest.raises(RuntimeError, match="neighbour list"):
        analytic_hessian(atoms, _FakeHessian(np.eye(3 * 64)))  # stale 64-atom list
    with pytest.raises(InaccurateHessianError, match="not symmetric"):
        analytic_hessian(atoms, _FakeHessian(np.triu(np.ones((162, 162)))))
    with pytest.raises(TypeError, match="get_hessian"):
        analytic_hessian(atoms, reference_calculator("emt"))


def test_column_check_flags_a_wrong_hessian():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(0.04, seed=3)
    calc = SW()
    hess = analytic_hessian(atoms, calc)
    directions = [(0, [1, 0, 0]), (5, [1, 1, 1])]
    assert hessian_column_error(atoms, calc, hess, directions) < 1e-4
    bad = hess.copy()
    bad[0:3, 9:12] += 0.05
    bad[9:12, 0:3] += 0.05
    assert hessian_column_error(atoms, calc, bad, directions) == pytest.approx(0.05, rel=0.01)


def test_matscipy_hessian_cost_counts_neighbours():
    diamond = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    assert matscipy_hessian_cost(diamond, SW()) == 64 * 4 * 3**2
    diamond.set_cell(diamond.cell.array * 0.97, scale_atoms=True)  # 2nd shell inside 3.77 Å
    assert matscipy_hessian_cost(diamond, SW()) == 64 * 16 * 15**2
    assert matscipy_hessian_cost(diamond, reference_calculator("emt")) is None


@pytest.fixture(scope="module")
def si_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("sw_si")
    counter = _Counter("sw-si")
    entries = gen.generate_reference_data(
        _si_structures(), counter, out, supercell_min_length=6.0, progress=False
    )
    return out, entries, counter


def test_generated_files_round_trip_through_phonopy(si_data, monkeypatch):
    out, entries, counter = si_data
    monkeypatch.chdir(out)  # phonopy.load must not pick up files from elsewhere
    assert counter.calls == 3
    index = json.loads((out / "index.json").read_text())
    assert [e["label"] for e in index["structures"]] == ["si-ideal", "si-rattled", "si-strained"]
    assert all(e["method"] == "analytic" and e["n_supercell_atoms"] == 16 for e in entries)
    assert all(e["split"] == split_of(e["label"]) and e["formula"] == "Si2" for e in entries)
    calc = SW()
    for entry in entries:
        folder = out / entry["folder"]
        ph = phonopy.load(folder / "phonopy_params.yaml", log_level=0)
        assert ph.force_constants.shape == (2, 16, 3, 3)
        fc_file = parse_FORCE_CONSTANTS(folder / "FORCE_CONSTANTS", p2s_map=ph.primitive.p2s_map)
        assert np.allclose(fc_file, ph.force_constants, rtol=0, atol=1e-12)
        supercell = Atoms(ph.supercell.symbols, cell=ph.supercell.cell, pbc=True)
        supercell.positions = ph.supercell.positions
        supercell.calc = calc
        labels = json.loads((folder / "labels.json").read_text())
        assert labels["energy"] == pytest.approx(supercell.get_potential_energy(), abs=1e-10)
        assert np.allclose(labels["forces"], supercell.get_forces(), atol=1e-10)
        assert np.allclose(labels["stress"], supercell.get_stress(), atol=1e-10)
        disp = ph.supercells_with_displacements[-1]
        displaced = Atoms(disp.symbols, cell=disp.cell, positions=disp.positions, pbc=True)
        displaced.calc = calc
        assert ph.supercell_energies[-1] == pytest.approx(displaced.get_potential_energy())
        assert np.allclose(ph.forces[-1], displaced.get_forces(), atol=1e-10)


def test_analytic_frequencies_match_finite_displacements_from_the_dataset(si_data, monkeypatch):
    out, entries, _ = si_data
    monkeypatch.chdir(out)
    for entry in entries:
        path = out / entry["folder"] / "phonopy_params.yaml"
        analytic = phonopy.load(path, log_level=0)
        fd = phonopy.load(path, log_level=0)
        fd.produce_force_constants(show_drift=False)  # from the stored 0.01 Å dataset
        nu_a, nu_fd = (_frequencies(ph) for ph in (analytic, fd))
        # Symmetric (or explicit +/-) 0.01 Å displacements leave an O(d^2) error:
        # measured 0.5-1.0e-3 THz of 18 THz; twice the step gives ~4x (next test).
        assert np.abs(nu_a - nu_fd).max() < 3e-3
        assert nu_a.max() > 15.0


def test_finite_displacement_error_is_second_order(si_data, tmp_path):
    out, _, _ = si_data
    atoms = dict(_si_structures())["si-ideal"]
    exact = phonopy.load(out / "train" / "si-ideal" / "phonopy_params.yaml", log_level=0).force_constants
    errors = []
    for d in (0.02, 0.01):
        labels = gen.generate_structure(
            "si-ideal", atoms, SW, tmp_path / f"d{d}", 6.0, "finite-displacement", distance=d
        )
        assert labels["force_constants_method"] == "finite-displacement"
        fc = phonopy.load(tmp_path / f"d{d}" / "phonopy_params.yaml", log_level=0).force_constants
        errors.append(np.abs(fc - exact).max())
    assert 2.5 < errors[0] / errors[1] < 6.0 and errors[1] < 1e-3  # measured 2.5e-4


def test_auto_uses_finite_displacements_when_the_hessian_is_expensive(tmp_path):
    atoms = dict(_si_structures())["si-ideal"]
    cheap = gen.generate_structure("a", atoms, SW, tmp_path / "a", 6.0, max_hessian_cost=10**6)
    costly = gen.generate_structure("b", atoms, SW, tmp_path / "b", 6.0, max_hessian_cost=0)
    assert cheap["force_constants_method"] == "analytic"
    assert costly["force_constants_method"] == "finite-displacement"
    assert cheap["hessian_cost_estimate"] == costly["hessian_cost_estimate"] == 16 * 4 * 9


def test_relax_removes_residual_forces(tmp_path):
    atoms = dict(_si_structures())["si-rattled"]
    raw = gen.generate_structure("r", atoms, SW, tmp_path / "raw", 6.0)
    relaxed = gen.generate_structure("r", atoms, SW, tmp_path / "relaxed", 6.0, relax=True)
    assert np.abs(raw["forces"]).max() > 0.3 and raw["relaxed"] is False
    assert np.abs(relaxed["forces"]).max() < 1e-4 and relaxed["relaxed"] is True


def test_tersoff_mixed_species_hessian_falls_back_to_finite_displacements(tmp_path):
    # A Si with both C and Si neighbours: matscipy 1.3 gets this Hessian wrong.
    positions = [[0, 0, 0], [1.25, 1.3, 0.2], [2.5, 0.1, 0.3], [1.2, -1.2, 0.9]]
    cluster = Atoms("SiCSiC", positions=positions, cell=[12.0] * 3, pbc=True)
    factory = functools.partial(reference_calculator, "tersoff-sic")
    with pytest.raises(InaccurateHessianError):
        gen.generate_structure("x", cluster, factory, tmp_path / "x", 5.0, "analytic")
    labels = gen.generate_structure("x", cluster, factory, tmp_path / "x", 5.0, "auto")
    assert labels["force_constants_method"] == "finite-displacement"
    fc = phonopy.load(tmp_path / "x" / "phonopy_params.yaml", log_level=0).force_constants
    fd = _fd_columns(cluster, factory, range(4)).reshape(4, 3, 4, 3).transpose(2, 0, 3, 1)
    # phonopy's +/-0.01 Å fit: 2.7e-3 eV/Å² off (max |fc| = 34); the matscipy Hessian is ~10 off
    assert np.abs(fc - fd).max() < 1e-2


def test_calculator_without_hessian_uses_phonopy_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cu = bulk("Cu", "fcc", a=3.615, cubic=True)
    cu.rattle(0.03, seed=5)
    emt = functools.partial(reference_calculator, "emt")
    with pytest.raises(ValueError, match="get_hessian"):
        gen.generate_structure("cu", cu, emt, tmp_path / "bad", 5.0, "analytic")
    labels = gen.generate_structure("cu", cu, emt, tmp_path / "cu", 5.0)
    assert labels["force_constants_method"] == "finite-displacement"
    assert labels["n_displacements"] == 24  # P1: 4 atoms x 3 directions x +/-
    ph = phonopy.load(tmp_path / "cu" / "phonopy_params.yaml", log_level=0)
    stored = ph.force_constants.copy()
    ph.forces = ph.forces - np.array(labels["forces"])[None]  # remove the residual forces
    ph.produce_force_constants(calculate_full_force_constants=False, show_drift=False)
    assert np.allclose(stored, ph.force_constants, rtol=0, atol=1e-8)
    assert np.abs(np.array(labels["forces"])).max() > 0.01


def test_resume_skips_finished_structures(tmp_path):
    structures = [("cu-1", bulk("Cu", "fcc", a=3.615)), ("cu-2", bulk("Cu", "fcc", a=3.7))]
    counter = _Counter("emt")
    gen.generate_reference_data(structures, counter, tmp_path, 5.0, progress=False)
    assert counter.calls == 2
    files = sorted(p for p in tmp_path.glob("*/cu-*/*"))
    assert {p.name for p in files} == {"phonopy_params.yaml", "FORCE_CONSTANTS", "labels.json"}
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    gen.generate_reference_data(structures, counter, tmp_path, 5.0, progress=False)
    assert counter.calls == 2
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    cu2 = tmp_path / split_of("cu-2") / "cu-2"
    os.remove(cu2 / "phonopy_params.yaml")  # as if killed before the last write
    (cu2 / ".phonopy_params.yaml.tmp").write_text("partial")
    entries = gen.generate_reference_data(structures, counter, tmp_path, 5.0, progress=False)
    assert counter.calls == 3
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.parent.name == "cu-1")
    assert [e["n_supercell_atoms"] for e in entries] == [27, 27]


def test_parallel_workers_write_the_same_data(tmp_path):
    structures = [("cu-1", bulk("Cu", "fcc", a=3.615)), ("cu-2", bulk("Cu", "bcc", a=2.87))]
    emt = functools.partial(reference_calculator, "emt")
    serial = gen.generate_reference_data(structures, emt, tmp_path / "s", 5.0, progress=False)
    parallel = gen.generate_reference_data(
        structures, emt, tmp_path / "p", 5.0, progress=False, workers=2
    )
    assert serial == parallel
    for label, _ in structures:
        a = phonopy.load(tmp_path / "s" / split_of(label) / label / "phonopy_params.yaml", log_level=0)
        b = phonopy.load(tmp_path / "p" / split_of(label) / label / "phonopy_params.yaml", log_level=0)
        assert np.array_equal(a.force_constants, b.force_constants)


def test_command_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ase_fcnet.cli import main
    from ase_fcnet.generation import prototypes

    monkeypatch.setattr(prototypes, "structure_set", lambda name, seed: _si_structures()[:2])
    out = tmp_path / "cli"
    args = ["data", "generate", "--set", "si", "--reference", "sw-si", "--out", str(out), "--seed", "3"]
    res = CliRunner().invoke(main, [*args, "--supercell-min-length", "6", "--no-progress"])
    assert res.exit_code == 0, res.output
    index = json.loads((out / "index.json").read_text())
    assert index["metadata"]["reference"] == "sw-si" and index["metadata"]["seed"] == 3
    assert len(index["structures"]) == 2
    bad = CliRunner().invoke(main, ["data", "generate", "--set", "si", "--reference", "dft",
                                    "--out", str(out)])
    assert bad.exit_code == 2 and "sw-si" in bad.output


def test_generated_data_keeps_the_structures_masses(tmp_path):
    from ase.calculators.emt import EMT

    from ase_fcnet.data import load_dataset

    cu = bulk("Cu", "fcc", a=3.615)
    cu.set_masses([65.0])  # an isotope, not the table's 63.546
    gen.generate_structure("cu65", cu, EMT, tmp_path, supercell_min_length=5.0,
                           method="finite-displacement")
    ph = phonopy.load(tmp_path / "phonopy_params.yaml", log_level=0)
    assert np.allclose(ph.unitcell.masses, 65.0)
    assert all(np.allclose(s.atoms.get_masses(), 65.0) for s in load_dataset(tmp_path))
