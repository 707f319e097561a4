"""Checks made before any model evaluation: settings ranges, occupancy, supercell size, cost estimate."""
import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from ase_fcnet.phonons.nac import BornFileError
from ase_fcnet.phonons.estimate import CostEstimate, estimate_cost, probe_cell
from ase_fcnet.phonons.validate import (
    SettingsError,
    check_settings,
    occupancy_problems,
    shortest_translation,
    supercell_notes,
)
from ase_fcnet.phonons.workflow import CostLimitError, PhononSettings, _check_memory, run_phonons


@pytest.mark.parametrize("change, key", [
    (dict(mesh=0.0), "mesh"), (dict(mesh=-5.0), "mesh"), (dict(mesh=[0, 0, 0]), "mesh"),
    (dict(mesh=[4, 4]), "mesh"), (dict(symprec=-1.0), "symprec"), (dict(symprec=0.0), "symprec"),
    (dict(symprec=float("nan")), "symprec"), (dict(t_step=5000.0), "t_step"),
    (dict(t_step=0.0), "t_step"), (dict(t_min=-1.0), "t_min"), (dict(t_max=-5.0), "t_max"),
    (dict(npoints=1), "npoints"), (dict(min_length=0.0), "min_length"),
    (dict(supercell_matrix=[1, 0, 1]), "supercell_matrix"),
])
def test_settings_out_of_range_name_the_field(change, key):
    with pytest.raises(SettingsError) as err:
        check_settings(PhononSettings(**change))
    assert err.value.key == key


def test_valid_settings_pass():
    assert check_settings(PhononSettings()) is None
    matrix = check_settings(PhononSettings(supercell_matrix=[2, 2, 2], mesh=[8, 8, 8], t_min=300,
                                           t_max=300, t_step=10))
    assert np.array_equal(matrix, np.diag([2, 2, 2]))


def test_run_phonons_checks_settings_before_the_model(tmp_path):
    class NoModel:  # any call would fail loudly
        def hessian_vector_products(self, atoms, vectors):
            raise AssertionError("the model was called")

    with pytest.raises(SettingsError, match="mesh"):
        run_phonons(bulk("Al"), NoModel(), PhononSettings(mesh=0.0))
    with pytest.raises(CostLimitError, match="--max-atoms"):
        run_phonons(bulk("Al"), NoModel(), PhononSettings(supercell_matrix=[5, 5, 5], max_atoms=100))
    (tmp_path / "BORN").write_text("not a BORN file\n")
    with pytest.raises(BornFileError, match="not a BORN file"):
        run_phonons(bulk("NaCl", "rocksalt", a=5.64), NoModel(),
                    PhononSettings(supercell_matrix=[2, 2, 2], born=tmp_path / "BORN"))


@pytest.mark.parametrize("sites, words", [
    ("Na1 Na 0 0 0 0.5\nK1 K 0 0 0 0.5", "mixed occupancy Na 0.5 + K 0.5"),
    ("Na1 Na 0 0 0 0.8", "partial occupancy Na 0.8"),
    ("Na1 Na 0 0 0 1.0\nCl2 Cl 0 0 0 1.0", "2 atoms on one position"),
])
def test_occupancy_problems_name_the_site(tmp_path, write_rocksalt_cif, sites, words):
    problems = occupancy_problems(read(write_rocksalt_cif(tmp_path / "x.cif", sites)))
    assert problems and words in problems[0]
    assert problems[0].startswith("site 0 (atom 0") and "[0.0, 0.0, 0.0]" in problems[0]


def test_ordered_cif_and_plain_atoms_have_no_problems(tmp_path, write_rocksalt_cif):
    path = write_rocksalt_cif(tmp_path / "x.cif", "Na1 Na 0 0 0 1.0")
    assert occupancy_problems(read(path)) == []
    assert occupancy_problems(bulk("NaCl", "rocksalt", a=5.64)) == []


def test_supercell_notes():
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    n, length, notes = supercell_notes(nacl, np.eye(3, dtype=int), cutoff=5.0)
    assert n == 8 and length == pytest.approx(5.64)
    assert len(notes) == 1 and "5.64 Å" in notes[0] and "2 × 5 Å" in notes[0]
    n, length, notes = supercell_notes(nacl, 2 * np.eye(3, dtype=int), cutoff=5.0)
    assert n == 64 and length == pytest.approx(11.28) and notes == []
    with pytest.raises(ValueError, match="single atom"):
        supercell_notes(bulk("Al", "fcc", a=4.05), np.eye(3, dtype=int), cutoff=5.0)
    # fcc primitive 4x4x4: its shortest translation is the vector length, 4 * a / sqrt(2)
    assert shortest_translation(4 * bulk("Al", "fcc", a=4.05).cell[:]) == pytest.approx(4 * 4.05 / 2**0.5)


def test_cost_estimate_scales_a_probe(helpers):
    from ase_fcnet.calculator import FCNetCalculator

    calc = FCNetCalculator(helpers.make_model(), device="cpu")
    si = bulk("Si", "diamond", a=5.43)
    assert estimate_cost(si, calc, n_super=128, n_directions=1) is None  # small: no probe
    probe = probe_cell(si)
    est = estimate_cost(si, calc, n_super=1000, n_directions=3)
    assert isinstance(est, CostEstimate) and est.probe_atoms == len(probe) >= 64
    assert est.seconds > 0 and est.memory_bytes > 8 * 3 * 1000 * 3
    with pytest.raises(CostLimitError, match="--max-memory"):
        _check_memory(est, max_memory_gb=est.memory_bytes / 2e9)
    _check_memory(est, max_memory_gb=est.memory_bytes / 0.5e9)
