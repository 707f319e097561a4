"""Training end to end on small EMT copper data: learning, resume, files, evaluation.

Reference data: ASE's EMT copper, 4-atom cubic cells (strained and rattled),
with energies, forces, stress and the exact-to-O(h²) Hessian from central
differences of the forces (a fresh calculator per evaluation).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_fcnet.data.sample import Sample
from ase_fcnet.model import load_model, read_model_file
from ase_fcnet.training import TrainConfig, Trainer, evaluate, train
from ase_fcnet.training.checkpointing import CheckpointError, best_model_dict, read_checkpoint
from ase_fcnet.training.dataset import epoch_batches

TINY = dict(species=["Cu"], cutoff=4.0, num_layers=1, l_max=1, scalar_channels=8,
            tensor_channels=4, num_radial=4, radial_hidden=8, num_heads=1, readout_hidden=8)


def fd_force_constants(atoms, h=1e-3) -> np.ndarray:
    """Φ[i, j, a, b] = −∂F_jb/∂r_ia by central differences, shape (N, N, 3, 3), eV/Å²."""
    n = len(atoms)
    rows = np.zeros((n, 3, n, 3))
    for i in range(n):
        for a in range(3):
            forces = []
            for sign in (1.0, -1.0):
                work = atoms.copy()
                work.positions[i, a] += sign * h
                work.calc = EMT()
                forces.append(work.get_forces())
            rows[i, a] = -(forces[0] - forces[1]) / (2 * h)
    fc = rows.transpose(0, 2, 1, 3)
    return 0.5 * (fc + fc.transpose(1, 0, 3, 2))


def emt_samples(n: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + 0.02 * rng.standard_normal()), cubic=True)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        stress = atoms.get_stress()
        fc = fd_force_constants(atoms)
        assert fc.shape == (4, 4, 3, 3)
        out.append(Sample(atoms=atoms.copy(), energy=energy, forces=forces, stress=stress,
                          fc_atoms=np.arange(4), force_constants=fc, source=f"emt-cu-{k}"))
    return out


@pytest.fixture(scope="module")
def samples():
    return emt_samples(12)


def config(out, **sections) -> TrainConfig:
    """Tiny, short runs (30 steps). The learning rate is high because an untrained
    FCNet is almost flat in the positions: its curvature has to grow by orders of
    magnitude, and with lr 5e-3 thirty steps lowered the force-constant error by 2 %."""
    data = {"model": TINY, "data": {"validation_fraction": 0.25},
            "loss": {"fc_probes": 1}, "schedule": {"warmup_steps": 3},
            "optimizer": {"lr": 2e-2},
            "training": {"epochs": 10, "batch_size": 3, "output_dir": str(out), "progress": False}}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return TrainConfig.from_dict(data)


def test_training_lowers_force_constant_error_on_held_out_data(samples, tmp_path,
                                                                default_dtype_guard):
    trainer = Trainer(config(tmp_path / "run"), samples)
    held_out = [samples[i] for i in trainer.val_idx]
    assert len(held_out) == 3 and not set(trainer.val_idx) & set(trainer.train_idx)
    before = evaluate(copy.deepcopy(trainer.model), held_out)
    result = trainer.fit()
    after = evaluate(result.model, held_out)
    assert after["fc_mae_eV_per_A2"] < 0.7 * before["fc_mae_eV_per_A2"]
    assert after["forces_mae_eV_per_A"] < before["forces_mae_eV_per_A"]
    assert after["n_fc"] == 3 and "energy_mae_meV_per_atom" in after

    out = tmp_path / "run"
    for name in ("model.pt", "last.pt", "metrics.csv", "metrics.json", "loss_curves.png"):
        assert (out / name).is_file(), name
    meta = read_model_file(out / "model.pt")["metadata"]
    assert meta["elements"] == ["Cu"] and meta["dataset_size"] == 12 and meta["n_validation"] == 3
    assert meta["steps"] == 30 and "val_fc_mae" in meta["validation_metrics"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + len(result.history)
    reloaded = evaluate(load_model(out / "model.pt"), held_out)
    assert reloaded["fc_mae_eV_per_A2"] == pytest.approx(after["fc_mae_eV_per_A2"], rel=1e-12)
    # the finished run's checkpoint yields the weights model.pt holds
    exported = best_model_dict(read_checkpoint(out / "last.pt"))
    saved = read_model_file(out / "model.pt")
    assert exported["model_config"] == saved["model_config"]
    assert exported["state_dict"].keys() == saved["state_dict"].keys()
    for key, value in saved["state_dict"].items():
        assert torch.equal(value, exported["state_dict"][key]), key
    with pytest.raises(CheckpointError, match="no validated weights"):
        best_model_dict({**read_checkpoint(out / "last.pt"), "best_state": None})


class Interrupt(RuntimeError):
    pass


def test_resume_from_last_checkpoint_equals_uninterrupted_run(samples, tmp_path, monkeypatch):
    sections = dict(training={"max_steps": 7, "checkpoint_interval": 2, "epochs": 5},
                    loss={"fc_probe_mode": "random", "fc_probes": 2, "stress": 1.0})
    whole = train(config(tmp_path / "whole", **sections), samples[:9])
    assert whole.steps == 7

    cfg = config(tmp_path / "cut", **sections)
    original = Trainer.train_step
    calls = {"n": 0}

    def failing_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 6:                     # steps 1-5 done, checkpoint at step 4
            raise Interrupt("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", failing_step)
    with pytest.raises(Interrupt):
        train(cfg, samples[:9])
    monkeypatch.setattr(Trainer, "train_step", original)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["progress"]["step"] == 4
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, samples[:9])
    resumed = train(cfg, samples[:9], resume=True)

    assert resumed.steps == 7 and resumed.best_epoch == whole.best_epoch
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    strip = [{k: v for k, v in row.items() if k != "time_s"} for row in whole.history]
    assert strip == [{k: v for k, v in row.items() if k != "time_s"} for row in resumed.history]


def test_early_stopping_keeps_the_best_epoch(samples, tmp_path, monkeypatch):
    val_losses = iter([3.0, 2.0, 2.5, 2.4, 1.0, 0.5])
    best_weights = {}

    def fake_validate(self):
        loss = next(val_losses)
        if loss == 2.0:
            best_weights.update(self.ema.averaged_state(self.model))
        return {"val_loss": loss}

    monkeypatch.setattr(Trainer, "validate", fake_validate)
    cfg = config(tmp_path / "es", training={"patience": 2, "epochs": 6},
                 loss={"force_constants": 0.0})
    result = train(cfg, samples[:6])
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.steps == 8
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, best_weights[key]), key


def test_non_finite_gradient_stops_before_the_update(samples, tmp_path):
    trainer = Trainer(config(tmp_path / "nan"), samples[:4])
    with torch.no_grad():
        trainer.model.readout[0].weight[0, 0] = float("nan")
    before = copy.deepcopy(trainer.model.state_dict())
    with pytest.raises(FloatingPointError, match="non-finite gradient at step 1"):
        trainer.train_step(trainer.train_idx[:2])
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) or k == "readout.0.weight" for k in before)
    assert torch.isnan(after["readout.0.weight"][0, 0])


def test_fc_repeat_puts_force_constant_structures_in_more_batches(samples, tmp_path):
    mixed = [s if k % 3 == 0 else dataclasses.replace(s, force_constants=None, fc_atoms=None)
             for k, s in enumerate(samples)]
    plain = Trainer(config(tmp_path / "a", data={"validation_fraction": 0.0}), mixed)
    trainer = Trainer(config(tmp_path / "b", data={"validation_fraction": 0.0, "fc_repeat": 4},
                             training={"epochs": 2}), mixed)
    with_fc = [i for i in trainer.train_idx if mixed[i].force_constants is not None]
    assert len(with_fc) == 4 and len(trainer.train_idx) == 12
    assert len(trainer.epoch_idx) == 12 + 3 * 4
    assert trainer.steps_per_epoch == 8 and plain.steps_per_epoch == 4
    counts = np.bincount(np.concatenate(epoch_batches(trainer.epoch_idx, 3, 0, 0)), minlength=12)
    assert all(counts[i] == (4 if i in with_fc else 1) for i in range(12))
    assert "4 with force constants, each 4x per epoch" in trainer.data_summary()
    result = trainer.fit()
    assert result.steps == 2 * 8
    assert read_model_file(tmp_path / "b" / "model.pt")["metadata"]["train_config"]["data"][
        "fc_repeat"] == 4


def test_force_constants_only_drops_force_only_samples(samples, tmp_path):
    mixed = [s if k % 3 == 0 else dataclasses.replace(s, force_constants=None, fc_atoms=None)
             for k, s in enumerate(samples)]
    trainer = Trainer(config(tmp_path / "a", data={"validation_fraction": 0.0,
                                                   "force_constants_only": True}), mixed)
    assert len(trainer.train_idx) == 4
    assert all(trainer.data.has(i, "force_constants") for i in trainer.train_idx)
    none = [dataclasses.replace(s, force_constants=None, fc_atoms=None) for s in samples]
    with pytest.raises(ValueError, match="force_constants_only: none of the 12 samples"):
        Trainer(config(tmp_path / "b", data={"force_constants_only": True}), none)


def test_unknown_element_in_data_is_named(samples, tmp_path):
    atoms = bulk("Al", "fcc", a=4.05, cubic=True)
    bad = Sample(atoms=atoms, forces=np.zeros((4, 3)), source="al/phonopy_params.yaml#0")
    with pytest.raises(ValueError, match=r"al/phonopy_params.yaml#0: element\(s\) Al"):
        Trainer(config(tmp_path / "x"), samples[:3] + [bad])


def test_missing_data_paths_are_reported(tmp_path):
    with pytest.raises(ValueError, match="set data.paths"):
        Trainer(config(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Trainer(config(tmp_path / "x", data={"paths": [str(tmp_path / "nowhere")]}))
