"""`fcnet phonons` through click's CliRunner: outputs, summary, and clear errors on bad input."""
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from click.testing import CliRunner
from phonopy.file_IO import parse_FORCE_CONSTANTS

from ase_fcnet.cli import main
from ase_fcnet.model import ModelConfig, build_model, save_model

FAST = ["--supercell", "2", "2", "2", "--mesh", "6 6 6", "--npoints", "11", "--tstep", "100"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    cfg = ModelConfig(species=("Si", "C"), cutoff=3.5, scalar_channels=8, tensor_channels=4,
                      num_radial=6, radial_hidden=16, readout_hidden=16)
    model = build_model(cfg, seed=3)
    model.energy_scale.fill_(50.0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(model, path)
    return path


@pytest.fixture()
def sic_cif(tmp_path):
    path = tmp_path / "SiC.cif"
    bulk("SiC", "zincblende", a=4.36).write(path)
    return path


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_phonons_writes_all_outputs(model_file, sic_cif, tmp_path):
    out = tmp_path / "out"
    res = run(["phonons", str(sic_cif), "--model", str(model_file), "--out", str(out),
               "--compare-fd", *FAST])
    assert res.exit_code == 0, res.output
    expected = {"FORCE_CONSTANTS", "phonopy.yaml", "band.yaml", "band_dos.png", "summary.json",
                "thermal_properties.dat", "thermal_properties.yaml", "thermal_properties.png"}
    assert expected <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["formula"] == "CSi" and summary["space_group"] == "F-43m (216)"
    assert summary["n_atoms_supercell"] == 16 and summary["n_atoms_primitive"] == 2
    assert summary["n_hessian_directions"] == 2  # one per species in zinc blende
    assert summary["max_frequency_THz"] > summary["min_frequency_THz"]
    assert isinstance(summary["has_imaginary_modes"], bool)
    assert "force constants (analytic)" in summary["timings_s"]
    fd = summary["finite_displacement_comparison"]
    assert fd["max_abs_diff_THz"] < 0.05  # FD error of a 0.01 Å displacement
    fc = parse_FORCE_CONSTANTS(str(out / "FORCE_CONSTANTS"))
    assert fc.shape == (2, 16, 3, 3)
    assert np.abs(fc.sum(axis=1)).max() < 1e-8  # acoustic sum rule of the exact Hessian
    assert "frequencies" in res.output
    if summary["has_imaginary_modes"]:
        assert "WARNING: imaginary modes found" in res.output


def test_imaginary_modes_are_reported(model_file, tmp_path):
    # Strongly compressed silicon: an untrained model gives no minimum here, and
    # whatever the spectrum, the report must match summary.json.
    path = tmp_path / "Si.cif"
    bulk("Si", "diamond", a=4.9).write(path)
    out = tmp_path / "o"
    res = run(["phonons", str(path), "--model", str(model_file), "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert ("WARNING: imaginary modes found" in res.output) == summary["has_imaginary_modes"]
    assert ("no imaginary modes" in res.output) != summary["has_imaginary_modes"]


def _bad(args, tmp_path, *fragments):
    out = tmp_path / "never"
    res = CliRunner().invoke(main, ["phonons", *args, "--out", str(out), *FAST])
    assert res.exit_code != 0
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    for fragment in fragments:
        assert fragment in res.output, res.output
    assert "Traceback" not in res.output
    assert not out.exists(), "partial output written"
    assert not any(p.name.startswith(".never") for p in tmp_path.iterdir())


def test_unreadable_structure(model_file, tmp_path):
    path = tmp_path / "garbage.cif"
    path.write_text("this is not a crystal\n\x00\x01")
    _bad([str(path), "--model", str(model_file)], tmp_path, "cannot read structure", "garbage.cif")


def test_missing_structure(model_file, tmp_path):
    _bad([str(tmp_path / "nope.cif"), "--model", str(model_file)], tmp_path, "not found")


def test_unknown_element(model_file, tmp_path):
    path = tmp_path / "NaCl.cif"
    bulk("NaCl", "rocksalt", a=5.64).write(path)
    _bad([str(path), "--model", str(model_file)], tmp_path, "Na", "Cl", "not supported")


def test_overlapping_atoms(model_file, tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] = atoms.positions[0] + [0.05, 0.0, 0.0]
    path = tmp_path / "overlap.xyz"
    atoms.write(path, format="extxyz")
    _bad([str(path), "--model", str(model_file)], tmp_path, "overlapping", "atoms 0")


def test_no_atoms(model_file, tmp_path):
    path = tmp_path / "empty.xyz"
    Atoms(cell=[3, 3, 3], pbc=True).write(path, format="extxyz")
    _bad([str(path), "--model", str(model_file)], tmp_path, "no atoms")


def test_not_periodic(model_file, tmp_path):
    path = tmp_path / "mol.xyz"
    Atoms("SiC", positions=[[0, 0, 0], [1.9, 0, 0]]).write(path, format="extxyz")
    _bad([str(path), "--model", str(model_file)], tmp_path, "periodic")


def test_missing_model(sic_cif, tmp_path):
    _bad([str(sic_cif), "--model", str(tmp_path / "missing.pt")], tmp_path, "model file not found")


def test_corrupt_model(sic_cif, tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 definitely not a model")
    _bad([str(sic_cif), "--model", str(bad)], tmp_path, "not a readable ase_fcnet model file")


def test_bad_mesh_option(model_file, sic_cif, tmp_path):
    res = CliRunner().invoke(main, ["phonons", str(sic_cif), "--model", str(model_file),
                                    "--mesh", "1 2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "three integers" in res.output
    assert not (tmp_path / "x").exists()


def test_help_lists_options():
    res = run(["phonons", "--help"])
    assert res.exit_code == 0
    for opt in ("--model", "--supercell", "--relax", "--compare-fd", "--device", "--dtype", "--mesh"):
        assert opt in res.output


def test_no_model_says_how_to_pass_one(sic_cif, tmp_path, monkeypatch):
    import ase_fcnet.pretrained

    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", empty)  # as if none were bundled
    _bad([str(sic_cif)], tmp_path, "no model given", "--model")
