"""Training from phonopy files: the CLI, data parallelism over 2 processes, phonon frequencies.

Data: phonopy_params.yaml files for EMT copper (4-atom cubic supercell of the
fcc cell, 1-atom primitive cell) at three lattice constants, each with one
displaced supercell (forces, energy) and compact force constants.
"""
from __future__ import annotations

import json
from pathlib import Path
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from click.testing import CliRunner
from phonopy import Phonopy

from ase_fcnet.calculator import FCNetCalculator
from ase_fcnet.cli import main
from ase_fcnet.data import load_dataset
from ase_fcnet.model import ModelConfig, build_model
from ase_fcnet.phonons.adapter import (
    atoms_to_phonopy,
    phonopy_from_atoms,
    phonopy_to_atoms,
)
from ase_fcnet.training import (
    TrainConfig,
    evaluate,
    evaluate_folder,
    frequency_errors,
    train,
)

TINY = dict(species=["Cu"], cutoff=4.0, num_layers=1, l_max=1, scalar_channels=8,
            tensor_channels=4, num_radial=4, radial_hidden=8, num_heads=1, readout_hidden=8)
FCC_PRIMITIVE = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def write_emt_phonopy(folder, a: float):
    unit = bulk("Cu", "fcc", a=a, cubic=True)
    phonon = Phonopy(atoms_to_phonopy(unit), supercell_matrix=np.eye(3, dtype=int),
                     primitive_matrix=FCC_PRIMITIVE, log_level=0)
    phonon.generate_displacements(distance=0.03)
    forces, energies = [], []
    for cell in phonon.supercells_with_displacements:
        atoms = phonopy_to_atoms(cell)
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
        energies.append(atoms.get_potential_energy())
    phonon.forces = np.array(forces)
    phonon.supercell_energies = np.array(energies)
    phonon.produce_force_constants(calculate_full_force_constants=False)
    folder.mkdir(parents=True)
    phonon.save(str(folder / "phonopy_params.yaml"), settings={"force_constants": True})
    return folder / "phonopy_params.yaml"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cu_phonopy")
    for a in (3.55, 3.61, 3.68):
        write_emt_phonopy(root / f"a{a}", a)
    return root


def write_config(path, data_dir, out, **training):
    cfg = {"model": TINY, "data": {"paths": [str(data_dir)], "validation_fraction": 0.0},
           "loss": {"energy": 0.01, "fc_probes": 1},
           "training": {"epochs": 2, "batch_size": 4, "output_dir": str(out), "progress": False,
                        "checkpoint_interval": 1, **training}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_processes_gloo_match_one_process(data_dir, tmp_path):
    """torchrun, 2 CPU processes (gloo), global batch 4 split 2 + 2: same weights as 1 process."""
    cfg_path = write_config(tmp_path / "ddp.yaml", data_dir, tmp_path / "ddp")
    script = tmp_path / "launch.py"
    script.write_text("import sys\nfrom ase_fcnet.cli import main\nmain(sys.argv[1:])\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), "train", str(cfg_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    single = train(TrainConfig.from_yaml(write_config(tmp_path / "one.yaml", data_dir,
                                                      tmp_path / "one")))
    assert single.steps == 4
    ddp = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert ddp["metadata"]["world_size"] == 2 and ddp["metadata"]["steps"] == 4
    start = build_model(ModelConfig.from_dict(TINY), seed=0).state_dict()
    moved = 0.0
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp["state_dict"][key], value, rtol=1e-7, atol=1e-9)
        if value.numel() and key not in ("energy_scale", "reference_energies"):
            moved = max(moved, float((value - start[key]).abs().max()))
    assert moved > 1e-4                                     # the weights did train
    ddp_rows = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    for row, ref in zip(ddp_rows, single.history):
        assert row["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-7)


def test_cli_train_then_evaluate(data_dir, tmp_path):
    cfg_path = write_config(tmp_path / "cfg.yaml", data_dir, "run", max_steps=3)
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(cfg_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "run"                                  # relative to the config's folder
    assert {"model.pt", "last.pt", "metrics.csv", "metrics.json", "loss_curves.png"} <= {
        p.name for p in out.iterdir()}

    again = runner.invoke(main, ["train", str(cfg_path)])
    assert again.exit_code != 0 and "--resume" in again.output
    resumed = runner.invoke(main, ["train", str(cfg_path), "--resume"])
    assert resumed.exit_code == 0, resumed.output

    report = tmp_path / "eval.json"
    result = runner.invoke(main, ["evaluate", str(out / "model.pt"), str(data_dir), "--json",
                                  str(report), "--frequencies", "--mesh", "4", "4", "4"])
    assert result.exit_code == 0, result.output
    assert "fc_mae_eV_per_A2" in result.output and "mesh_mae_THz" in result.output
    data = json.loads(report.read_text())
    assert data["metrics"]["n_structures"] == 6 and data["metrics"]["n_fc"] == 3
    assert len(data["frequencies"]) == 3
    for values in data["frequencies"].values():
        assert values["n_commensurate"] == 4 and np.isfinite(values["mesh_mae_THz"])

    from ase_fcnet.data import pack_folder                  # the same data, packed
    packed = tmp_path / "data.tar.xz"
    pack_folder(data_dir, packed)
    result = runner.invoke(main, ["evaluate", str(out / "model.pt"), str(packed), "--json",
                                  str(report), "--frequencies", "--mesh", "4", "4", "4"])
    assert result.exit_code == 0, result.output
    again = json.loads(report.read_text())["frequencies"]
    assert sorted(again) == sorted(str(packed / Path(k).relative_to(data_dir))
                                   for k in data["frequencies"])
    for key, values in data["frequencies"].items():
        shown = str(packed / Path(key).relative_to(data_dir))
        assert again[shown]["mesh_mae_THz"] == pytest.approx(values["mesh_mae_THz"], rel=1e-12)


@pytest.mark.filterwarnings("ignore:Warning. Point group symmetries:UserWarning")
def test_frequency_errors_vanish_against_the_models_own_force_constants(tmp_path):
    model = build_model(ModelConfig.from_dict(TINY), seed=3)
    with torch.no_grad():
        model.energy_scale.fill_(2000.0)
    unit = bulk("Cu", "fcc", a=3.6, cubic=True)
    phonon = phonopy_from_atoms(unit, FCNetCalculator(model), supercell_matrix=[2, 1, 1],
                                primitive_matrix=FCC_PRIMITIVE)
    path = tmp_path / "phonopy_params.yaml"
    phonon.save(str(path), settings={"force_constants": True})
    errors = frequency_errors(model, path, mesh=(3, 3, 3))
    assert errors["n_commensurate"] == 8 and errors["n_bands"] == 3
    assert errors["commensurate_max_THz"] < 1e-6 and errors["mesh_max_THz"] < 1e-6
    assert errors["mesh_min_THz"] == pytest.approx(errors["reference_mesh_min_THz"], abs=1e-6)

    other = build_model(ModelConfig.from_dict(TINY), seed=4)
    with torch.no_grad():
        other.energy_scale.fill_(2000.0)
    assert frequency_errors(other, path, mesh=(3, 3, 3))["commensurate_mae_THz"] > 1e-2


@pytest.mark.filterwarnings("ignore:Warning. Point group symmetries:UserWarning")
def test_evaluate_folder_gathers_label_and_frequency_errors_per_structure(data_dir):
    model = build_model(ModelConfig.from_dict(TINY), seed=5)
    with torch.no_grad():
        model.energy_scale.fill_(2000.0)
    out = evaluate_folder(model, data_dir, mesh=(3, 3, 3))
    assert out["n_structures"] == out["n_datasets"] == 3
    assert sorted(out["per_structure"]) == ["a3.55", "a3.61", "a3.68"]
    one = frequency_errors(model, data_dir / "a3.61" / "phonopy_params.yaml", mesh=(3, 3, 3))
    assert out["per_structure"]["a3.61"] == one
    means = np.mean([v["mesh_mae_THz"] for v in out["per_structure"].values()])
    assert out["mean_mesh_mae_THz"] == pytest.approx(means) and means > 1e-3
    labels = evaluate(model, load_dataset([data_dir]))
    assert labels["fc_mae_eV_per_A2"] > 0
    assert out["fc_mae_eV_per_A2"] == pytest.approx(labels["fc_mae_eV_per_A2"])


def test_cli_help_explains_every_key():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    config = TrainConfig.from_dict({"model": {"species": ["Si"]}}).to_dict()
    for section, keys in config.items():
        assert f"{section}:" in result.output
        for key in keys:
            assert f"  {key} (" in result.output, key


def test_cli_reports_bad_config_and_bad_data(data_dir, tmp_path):
    runner = CliRunner()
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("model: {species: [Cu]}\ntraining:\n  batchsize: 4\n")
    result = runner.invoke(main, ["train", str(bad_key)])
    assert result.exit_code == 1
    assert "unknown key 'batchsize' in config section 'training'" in result.output
    assert "did you mean 'batch_size'" in result.output

    broken = tmp_path / "broken" / "phonopy_params.yaml"
    broken.parent.mkdir()
    broken.write_text("unit_cell: [this is not, a phonopy file\n")
    cfg = write_config(tmp_path / "cfg.yaml", broken.parent, tmp_path / "out")
    result = runner.invoke(main, ["train", str(cfg)])
    assert result.exit_code == 1 and str(broken) in result.output

    cfg = write_config(tmp_path / "cfg2.yaml", tmp_path / "absent", tmp_path / "out2")
    result = runner.invoke(main, ["train", str(cfg)])
    assert result.exit_code == 1 and "absent" in result.output and "no such" in result.output

    result = runner.invoke(main, ["evaluate", str(tmp_path / "none.pt"), str(data_dir)])
    assert result.exit_code == 1 and "model file not found" in result.output


def test_evaluate_errors_are_hand_checkable(data_dir):
    """evaluate() of a model against its own labels is 0; a known offset shows up exactly."""
    from ase_fcnet.data import load_dataset
    from ase_fcnet.training import evaluate

    model = build_model(ModelConfig.from_dict(TINY), seed=1)
    samples = load_dataset(data_dir)
    calc = FCNetCalculator(build_model(ModelConfig.from_dict(TINY), seed=1))
    for s in samples:
        atoms = s.atoms.copy()
        atoms.calc = calc
        if s.energy is not None:
            s.energy = atoms.get_potential_energy() + 0.002 * len(atoms)   # +2 meV/atom
            s.forces = atoms.get_forces()
        if s.force_constants is not None:
            s.force_constants = calc.force_constant_rows(atoms, s.fc_atoms)
    out = evaluate(model, samples)
    assert out["energy_mae_meV_per_atom"] == pytest.approx(2.0, abs=1e-9)
    assert out["forces_mae_eV_per_A"] < 1e-12 and out["fc_mae_eV_per_A2"] < 1e-10
