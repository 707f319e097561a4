"""The bundled distilled model ``fcnet-small``: loads offline by name, knows the documented elements,
gives finite, symmetric, sum-rule-respecting force constants, rejects unknown elements by name, and
carries its measured accuracy (a caution while it is below target) into Python and the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.spacegroup import crystal
from click.testing import CliRunner

import ase_fcnet.pretrained
from ase_fcnet import FCNetCalculator, ModelCautionWarning
from ase_fcnet.cli import main
from ase_fcnet.generation.universal import ELEMENTS
from ase_fcnet.graph import StructureError

ROOT = Path(__file__).resolve().parents[2]


def _structures():
    yield "Si", bulk("Si", "diamond", a=5.45)
    yield "NaCl", bulk("NaCl", "rocksalt", a=5.70)
    yield "MgO", bulk("MgO", "rocksalt", a=4.25)
    yield "Cu", bulk("Cu", "fcc", a=3.63)
    yield "GaN", bulk("GaN", "wurtzite", a=3.22, c=5.24)
    yield "TiO2", crystal(["Ti", "O"], [(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                          cellpar=[4.65, 4.65, 2.97, 90, 90, 90])


def _info():
    return next(i for i in ase_fcnet.pretrained.describe_bundled() if i["name"] == "fcnet-small")


def test_fcnet_small_is_bundled_with_the_documented_elements_and_metrics():
    models = ase_fcnet.pretrained.bundled_models()
    assert "fcnet-small" in models
    path = models["fcnet-small"]
    assert path.parent == ase_fcnet.pretrained.MODEL_DIR and path.stat().st_size < 10e6
    info = _info()
    assert info["default"] is False and info["architecture"] == "fcnet"
    assert info["species"] == list(ELEMENTS)
    assert info["model_card"] == "docs/default_model.md"
    card = (ROOT / info["model_card"]).read_text()
    metrics = info["metrics"]
    assert {"forces_mae_eV_per_A", "fc_mae_eV_per_A2", "mean_mesh_mae_THz"} <= set(metrics)
    assert f"{metrics['mean_mesh_mae_THz']:.2f} THz" in card  # the card quotes the stored number
    stored = json.loads((ROOT / "docs/default_model/metrics.json").read_text())["headline"]
    assert stored == pytest.approx(metrics)


def test_the_caution_states_the_measured_error_while_above_target():
    info = _info()
    above = info["metrics"]["mean_mesh_mae_THz"] > 0.3
    assert ("caution" in info) == above
    if above:
        assert f"{info['metrics']['mean_mesh_mae_THz']:.2f} THz" in info["caution"]
        assert "docs/default_model.md" in info["caution"]


@pytest.fixture(scope="module")
def calc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelCautionWarning)
        return FCNetCalculator("fcnet-small")  # by name, float64


def test_the_name_loads_it_in_float64(calc):
    assert calc.species == list(ELEMENTS) and calc.dtype.is_floating_point
    assert str(calc.dtype) == "torch.float64"


@pytest.mark.parametrize("name,atoms", list(_structures()), ids=[n for n, _ in _structures()])
def test_force_constants_are_finite_symmetric_and_sum_to_zero(calc, name, atoms):
    cell = atoms.repeat((2, 2, 2)) if len(atoms) < 4 else atoms.copy()
    cell.rattle(0.01, seed=1)
    cell.calc = calc
    energy = cell.get_potential_energy()
    assert np.isfinite(energy) and np.isfinite(cell.get_forces()).all()
    assert np.isfinite(cell.get_stress()).all()
    hessian = calc.get_hessian(cell)
    assert hessian.shape == (3 * len(cell), 3 * len(cell)) and np.isfinite(hessian).all()
    scale = np.abs(hessian).max()
    assert scale > 0.1  # bonds are stiff: eV/Å² on the diagonal
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10 * scale)
    asr = hessian.reshape(len(cell), 3, len(cell), 3).sum(axis=2)
    assert np.abs(asr).max() < 1e-10 * scale


@pytest.mark.parametrize("symbol", ["Xe", "Ce", "Po"])
def test_elements_outside_the_model_are_named(calc, symbol):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.symbols[0] = symbol
    atoms.calc = calc
    with pytest.raises(StructureError, match=symbol):
        atoms.get_potential_energy()


def test_fcnet_phonons_runs_with_model_fcnet_small(tmp_path):
    cif = tmp_path / "NaCl.cif"
    bulk("NaCl", "rocksalt", a=5.64).write(cif)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["phonons", str(cif), "--out", str(out), "--model", "fcnet-small",
                                    "--supercell", "2", "2", "2", "--mesh", "10"])
    assert res.exit_code == 0, res.output
    assert "64 elements" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_atoms_supercell"] == 16
    assert summary["model_caution"] == _info().get("caution")
    assert (out / "band_dos.png").is_file() and (out / "thermal_properties.png").is_file()
