"""species_parameters(): each listed entry acts on its species only, for every architecture.

Changing the entries of one species must leave a structure without that
species bit for bit as it was, and change one with it: the guarantee
``training.train_species`` rests on.
"""
from __future__ import annotations

import pytest
import torch
from ase.build import bulk

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import ModelConfig
from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.model.registry import build

NEQUIP = dict(species=("Na", "Cl", "K"), cutoff=4.0, node_irreps=("8x0e", "8x0e+4x1e", "8x0e"),
              num_basis=4, radial_hidden=(8,), denominators=(3.0, 3.0))
CONFIGS = {
    "nequip+adapters": NequIPConfig(**NEQUIP, species_adapters=True),
    "nequip+modality": NequIPConfig(**NEQUIP, species_adapters=True, modalities=("a", "b"),
                                    modality="b", modal_inputs=("embedding", "readout")),
    "fcnet": ModelConfig(species=["Na", "Cl", "K"], cutoff=4.0, num_layers=2, l_max=1,
                         scalar_channels=8, tensor_channels=4, num_radial=4, radial_hidden=8,
                         num_heads=1, readout_hidden=8),
}


def _energy(model, atoms) -> torch.Tensor:
    graph = atoms_to_graph(atoms, model.cutoff, model.species)
    return model.energy(graph).detach()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_entries_of_one_species_act_on_that_species_only(name):
    model = build(CONFIGS[name], seed=1)
    nacl = bulk("NaCl", "rocksalt", a=5.0)
    kcl = bulk("KCl", "rocksalt", a=5.5)
    before = {"nacl": _energy(model, nacl), "kcl": _energy(model, kcl)}
    owners = model.species_parameters()
    params = dict(model.named_parameters())
    assert {"reference_energies", "embedding.weight"} <= set(owners)
    assert ("adapters.0.gain" in owners) == ("nequip" in name)
    k = model.species.index("K")
    with torch.no_grad():
        for pname, owner in owners.items():
            assert owner.shape == params[pname].shape
            params[pname][owner == k] += 0.3
    assert torch.equal(_energy(model, nacl), before["nacl"])      # no K: not a bit moved
    assert not torch.allclose(_energy(model, kcl), before["kcl"])


def test_modality_inputs_of_the_embedding_belong_to_no_species():
    model = build(CONFIGS["nequip+modality"], seed=1)
    owner = model.species_parameters()["embedding.weight"]
    assert (owner == -1).sum() == 2 * 8       # two modality inputs x 8 channels
    assert torch.equal(torch.bincount(owner[owner >= 0]), torch.full((3,), 8))
