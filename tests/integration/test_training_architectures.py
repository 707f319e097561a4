"""Training and fine-tuning a nequip model (the SevenNet architecture) end to end.

A tiny nequip model is trained from scratch on EMT copper phonopy files through
the CLI, fine-tuned from its model file with the model section left out,
evaluated with ``fcnet evaluate``; the bundled SevenNet-0 is fine-tuned by
name for one step with frozen layers.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml
from ase.build import bulk
from click.testing import CliRunner

from ase_fcnet.cli import main
from ase_fcnet.data.sample import Sample
from ase_fcnet.model import load_model, read_model_file
from ase_fcnet.pretrained import model_file
from ase_fcnet.training import TrainConfig, Trainer, train
from test_training_phonopy import write_emt_phonopy

NEQUIP = {"architecture": "nequip", "species": ["Cu"], "cutoff": 4.0,
          "node_irreps": ["4x0e", "4x0e+2x1e", "4x0e"], "num_basis": 4,
          "radial_hidden": [8], "denominators": [4.0, 4.0]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cu_phonopy")
    for a in (3.55, 3.61):
        write_emt_phonopy(root / f"a{a}", a)
    return root


def _write(path, **sections):
    path.write_text(yaml.safe_dump(sections))
    return path


def test_nequip_from_scratch_then_fine_tuned_from_its_file_then_evaluated(data_dir, tmp_path):
    runner = CliRunner()
    common = {"data": {"paths": [str(data_dir)], "validation_fraction": 0.0},
              "loss": {"energy": 0.01, "fc_probes": 1}}
    scratch = _write(tmp_path / "scratch.yaml", model=NEQUIP, **common,
                     training={"max_steps": 3, "batch_size": 2, "output_dir": "scratch",
                               "progress": False})
    result = runner.invoke(main, ["train", str(scratch)])
    assert result.exit_code == 0, result.output
    assert "nequip model, species Cu" in result.output
    first = tmp_path / "scratch" / "model.pt"
    assert read_model_file(first)["architecture"] == "nequip"

    # no model section: architecture and config come from the init model's file
    tune = _write(tmp_path / "tune.yaml", **common,
                  optimizer={"backbone_lr_factor": 0.1},
                  training={"init_model": "scratch/model.pt", "freeze": ["embedding"],
                            "max_steps": 2, "batch_size": 2, "output_dir": "tune",
                            "progress": False})
    cfg = TrainConfig.from_yaml(tune)
    assert cfg.model == load_model(first).config
    result = runner.invoke(main, ["train", str(tune)])
    assert result.exit_code == 0, result.output
    tuned = load_model(tmp_path / "tune" / "model.pt")
    assert torch.equal(tuned.embedding.weight, load_model(first).embedding.weight)  # frozen
    stored = read_model_file(tmp_path / "tune" / "model.pt")["metadata"]
    assert stored["architecture"] == "nequip"
    assert stored["fine_tuned_from"]["model"] == "model.pt"
    assert stored["train_config"]["model"]["architecture"] == "nequip"
    assert stored["train_config"]["training"]["freeze"] == ["embedding"]

    report = tmp_path / "eval.json"
    result = runner.invoke(main, ["evaluate", str(tmp_path / "tune" / "model.pt"), str(data_dir),
                                  "--json", str(report), "--frequencies", "--mesh", "4", "4", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["metrics"]["n_fc"] == 2 and np.isfinite(data["metrics"]["fc_mae_eV_per_A2"])
    assert all(np.isfinite(v["mesh_mae_THz"]) for v in data["frequencies"].values())


def test_init_model_of_another_architecture_is_refused(data_dir, tmp_path):
    cfg = TrainConfig.from_dict({"model": {"species": ["Cu"], "num_layers": 1},
                                 "data": {"paths": [str(data_dir)]},
                                 "training": {"init_model": "sevennet-0",
                                              "output_dir": str(tmp_path / "x")}})
    with pytest.raises(ValueError, match="init_model sevennet-0: it is a 'nequip' model, the "
                                         "model section a 'fcnet' one"):
        Trainer(cfg)


def test_sevennet_0_fine_tuned_by_name_keeps_its_weights_and_other_shifts(tmp_path):
    """One step on two small Si cells: loaded weights, 88 species' shifts untouched,
    frozen blocks unchanged, the trained ones moved; provenance in the metadata."""
    rng = np.random.default_rng(0)
    samples = []
    for k in range(2):
        atoms = bulk("Si", "diamond", a=5.45)
        atoms.positions += 0.03 * rng.standard_normal(atoms.positions.shape)
        samples.append(Sample(atoms=atoms, energy=-11.0 + 0.01 * k,
                              forces=0.1 * rng.standard_normal((2, 3)), source=f"si-{k}"))
    cfg = TrainConfig.from_dict({
        "data": {"validation_fraction": 0.0}, "loss": {"force_constants": 0.0},
        "optimizer": {"lr": 1e-3, "backbone_lr_factor": 0.5},
        "training": {"init_model": "sevennet-0", "max_steps": 1, "batch_size": 2,
                     "freeze": ["embedding", "layers.0", "layers.1", "layers.2"],
                     "output_dir": str(tmp_path / "ft"), "progress": False}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = load_model(model_file("sevennet-0"))
    trainer = Trainer(cfg, samples)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for key, value in original.state_dict().items():
        if key != "reference_energies":
            assert torch.equal(start[key], value), key
    si = original.species.index("Si")
    others = [i for i in range(len(original.species)) if i != si]
    shift = start["reference_energies"] - original.reference_energies.detach()
    assert torch.equal(shift[others], torch.zeros(len(others), dtype=shift.dtype))
    assert shift[si].abs() > 0  # Si absorbed the data's energy zero
    result = trainer.fit()
    after = trainer.model.state_dict()
    for name in trainer.frozen:
        assert torch.equal(after[name], start[name]), name
    assert not torch.equal(after["layers.4.linear_out.weight"], start["layers.4.linear_out.weight"])
    meta = read_model_file(tmp_path / "ft" / "model.pt")["metadata"]
    assert meta["fine_tuned_from"]["model"] == "sevennet-0"
    assert "license" in meta["fine_tuned_from"] and "caution" not in meta
    assert result.model.config == original.config
