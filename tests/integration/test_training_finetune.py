"""Fine-tuning: training.init_model starts from a model file's weights."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ase_fcnet import FCNetCalculator
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


def test_init_model_can_be_grown_by_node_products(pretrained, tmp_path):
    """Adding product_channels to a stored model starts from exactly its energies and forces,
    and the products then train (their output weights leave zero)."""
    path, samples = pretrained
    base = load_model(path)
    cfg = config(tmp_path / "g", model={**TINY, "product_channels": 4},
                 training={"init_model": str(path), "max_steps": 3})
    trainer = Trainer(cfg, samples)
    assert "product_channels added" in trainer.scale_source
    grown = copy.deepcopy(trainer.model).double()
    assert all(layer.product is not None for layer in grown.layers)
    with torch.no_grad():  # refitted to the data at start, as in any fine-tuning
        grown.reference_energies.copy_(base.reference_energies)
    for s in samples[:2]:
        before, after = FCNetCalculator(model=base), FCNetCalculator(model=grown)
        atoms = s.atoms.copy()
        assert after.get_potential_energy(atoms) == before.get_potential_energy(atoms)
        assert np.array_equal(after.get_forces(atoms), before.get_forces(atoms))
    trainer.fit()
    moved = [float(layer.product.out.weight.abs().max()) for layer in trainer.model.layers]
    assert min(moved) > 0, moved


def test_init_model_cannot_drop_node_products(pretrained, tmp_path):
    path, samples = pretrained
    grown = tmp_path / "grown"
    train(config(grown, model={**TINY, "product_channels": 4},
                 training={"init_model": str(path), "max_steps": 1}), samples)
    cfg = config(tmp_path / "x", training={"init_model": str(grown / "model.pt")})
    with pytest.raises(ValueError, match="init_model.*product_channels"):
        Trainer(cfg, samples)
