"""Fine-tuning: training.init_model starts from a model file's weights."""
from __future__ import annotations

import copy

import pytest
import torch

from ase_fcnet.model import load_model
from ase_fcnet.training import Trainer, evaluate, train
from test_training import TINY, config, emt_samples


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    samples = emt_samples(6, seed=1)
    # a scale other than what ``auto`` picks for the fine-tuning data (1 eV), to see it kept
    train(config(out, training={"max_steps": 6, "energy_scale": 3.5}), samples)
    return out / "model.pt", samples


def _shifted(samples, shift):
    """Same structures, energies with another zero (as DFT after a classical potential)."""
    out = copy.deepcopy(samples)
    for s in out:
        s.energy += shift * s.n_atoms
    return out


def test_init_model_loads_weights_and_refits_reference_energies(pretrained, tmp_path):
    path, samples = pretrained
    base = load_model(path)
    cfg = config(tmp_path / "ft", training={"init_model": str(path), "max_steps": 2})
    trainer = Trainer(cfg, _shifted(samples, -1.5))
    state, ref = trainer.model.state_dict(), base.state_dict()
    for key in ref:
        if key != "reference_energies":
            assert torch.equal(state[key], ref[key]), key
    assert trainer.model.energy_scale.item() == base.energy_scale.item() != 1.0
    same_zero = Trainer(config(tmp_path / "ft0", training={"init_model": str(path)}), samples)
    shift = trainer.model.reference_energies - same_zero.model.reference_energies
    assert shift.item() == pytest.approx(-1.5, abs=1e-9)  # the new energy zero, absorbed exactly
    trainer.fit()
    assert (tmp_path / "ft" / "model.pt").is_file()


def test_init_model_with_other_architecture_is_refused(pretrained, tmp_path):
    path, samples = pretrained
    cfg = config(tmp_path / "x", model={**TINY, "scalar_channels": 12},
                 training={"init_model": str(path)})
    with pytest.raises(ValueError, match="init_model.*scalar_channels"):
        Trainer(cfg, samples)


def test_fine_tuning_lowers_force_constant_error_on_new_data(pretrained, tmp_path):
    path, _ = pretrained
    new = emt_samples(6, seed=7)
    before = evaluate(load_model(path), new)["fc_mae_eV_per_A2"]
    cfg = config(tmp_path / "b", data={"validation_fraction": 0.0},
                 training={"init_model": str(path), "epochs": 100, "max_steps": 40})
    after = evaluate(train(cfg, new).model, new)["fc_mae_eV_per_A2"]
    assert after < 0.8 * before, (before, after)
