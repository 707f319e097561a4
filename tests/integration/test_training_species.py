"""training.train_species: fine-tuning one element leaves every structure without it untouched.

A small seeded two-element nequip model (Cu, Au) stored as a file is
fine-tuned on EMT copper and a Cu3Au cell (whose gold atoms give gold's
entries gradients) with ``train_species: [Cu]``, weight decay, the
L2-SP anchor and the EMA all on (each could move the entries of other
species if the restriction leaked). Gold is predicted bit for bit as before,
copper is not; the stored model has the adapters on and reloads.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_fcnet.data.sample import Sample
from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import load_model, read_model_file, save_model
from ase_fcnet.model import ModelConfig
from ase_fcnet.model.derivatives import energy_forces_stress
from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.model.registry import build
from ase_fcnet.training import TrainConfig, Trainer
from test_training import emt_samples

SMALL = NequIPConfig(species=("Au", "Cu"), cutoff=4.0, node_irreps=("4x0e", "4x0e+2x1e", "4x0e"),
                     num_basis=4, radial_hidden=(8,), denominators=(4.0, 4.0))
#: fcnet has no adapters: only its embedding columns and reference energies train.
FCNET = ModelConfig(species=["Au", "Cu"], cutoff=4.0, num_layers=1, l_max=1, scalar_channels=8,
                    tensor_channels=4, num_radial=4, radial_hidden=8, num_heads=1, readout_hidden=8)


def _store(config, folder):
    model = build(config, seed=3)
    with torch.no_grad():
        model.energy_scale.fill_(2.0)
    path = folder / "cuau.pt"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return _store(SMALL, tmp_path_factory.mktemp("stored"))


def config(out, init, **training) -> TrainConfig:
    return TrainConfig.from_dict({
        "data": {"validation_fraction": 0.0},
        "optimizer": {"lr": 2e-2, "weight_decay": 0.1, "anchor_decay": 0.5},
        "schedule": {"warmup_steps": 0},
        "training": {"init_model": str(init), "train_species": ["Cu"], "epochs": 10,
                     "max_steps": 4, "batch_size": 2, "output_dir": str(out),
                     "progress": False, "patience": None, **training}})


def alloy_sample() -> Sample:
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.symbols[0] = "Au"
    atoms.rattle(0.05, seed=2)
    atoms.calc = EMT()
    return Sample(atoms=atoms.copy(), energy=atoms.get_potential_energy(),
                  forces=atoms.get_forces(), source="emt-cu3au")


def predict(model, atoms) -> np.ndarray:
    out = energy_forces_stress(model, atoms_to_graph(atoms, model.cutoff, model.species),
                               forces=True, stress=True)
    return np.concatenate([out["energy"].detach().numpy(), out["forces"].detach().numpy().ravel(),
                           out["stress"].detach().numpy().ravel()])


def test_structures_without_the_element_are_predicted_exactly_as_before(stored, tmp_path):
    gold = bulk("Au", "fcc", a=4.08, cubic=True)
    gold.rattle(0.05, seed=1)
    alloy = bulk("Cu", "fcc", a=3.8, cubic=True)
    alloy.symbols[0] = "Au"
    copper = emt_samples(1, seed=5)[0].atoms
    before = load_model(stored)
    trainer = Trainer(config(tmp_path / "ft", stored), emt_samples(3) + [alloy_sample()])
    assert trainer.model.config.species_adapters
    assert all(n.split(".")[0] not in ("embedding", "adapters") for n in trainer.frozen)
    assert any(n.startswith("layers.") for n in trainer.frozen)
    result = trainer.fit()
    tuned = load_model(tmp_path / "ft" / "model.pt")
    assert read_model_file(tmp_path / "ft" / "model.pt")["model_config"]["species_adapters"]
    for model in (result.model, tuned):
        assert np.array_equal(predict(model, gold), predict(before, gold))
        assert not np.allclose(predict(model, alloy), predict(before, alloy))
        assert not np.allclose(predict(model, copper), predict(before, copper))
    gold_row = tuned.species.index("Au")
    assert not tuned.adapters[0].gain[gold_row].any()
    assert tuned.reference_energies[gold_row] == before.reference_energies[gold_row]


def test_fcnet_trains_its_embedding_columns_and_keeps_gold(tmp_path):
    gold = bulk("Au", "fcc", a=4.08, cubic=True)
    gold.rattle(0.05, seed=1)
    path = _store(FCNET, tmp_path)
    trainer = Trainer(config(tmp_path / "ft", path), emt_samples(3) + [alloy_sample()])
    assert sorted(p for p in dict(trainer.model.named_parameters())
                  if p not in trainer.frozen) == ["embedding.weight", "reference_energies"]
    tuned = trainer.fit().model
    before = load_model(path)
    assert np.array_equal(predict(tuned, gold), predict(before, gold))
    assert not torch.equal(tuned.embedding.weight, before.embedding.weight)


def test_an_element_absent_from_the_data_is_refused(stored, tmp_path):
    with pytest.raises(ValueError, match="no atom of Au in the training data"):
        Trainer(config(tmp_path, stored, train_species=["Cu", "Au"]), emt_samples(2))


@pytest.mark.parametrize("training, message", [
    ({"train_species": ["Ag"]}, "train_species: the model has no Ag"),
    ({"freeze": ["layers.0"]}, "excludes training.freeze"),
    ({"init_model": None}, "needs training.init_model"),
])
def test_bad_train_species_settings_are_refused_by_name(stored, tmp_path, training, message):
    with pytest.raises(ValueError, match=message):
        if training.get("init_model", "") is None:
            TrainConfig.from_dict({"model": SMALL.to_dict() | {"architecture": "nequip"},
                                   "training": {"train_species": ["Cu"]}})
        else:
            config(tmp_path, stored, **training)
