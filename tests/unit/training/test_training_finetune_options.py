"""Any architecture in training, frozen layers, the backbone learning-rate factor and the
anchor to the initial weights (L2-SP)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_fcnet.data.sample import Sample
from ase_fcnet.model import ModelConfig, read_model_file, registry, save_model
from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.pretrained import model_file
from ase_fcnet.training import TrainConfig, Trainer
from ase_fcnet.training.config import OptimizerConfig, ScheduleConfig, model_section
from ase_fcnet.training.optim import (Anchor, WarmupCosine, freeze_parameters, is_head,
                                      make_optimizer)

NEQUIP = {"architecture": "nequip", "species": ["Cu"], "cutoff": 4.0,
          "node_irreps": ["4x0e", "4x0e+2x1e", "4x0e+2x1e", "4x0e"], "num_basis": 4,
          "radial_hidden": [8], "denominators": [4.0, 4.0, 4.0]}


def samples(n: int = 4) -> list[Sample]:
    """EMT copper, 4-atom cells, energies and forces (force constants: a central
    difference of the forces of atom 0, enough to drive the force-constant loss)."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        rows = np.zeros((3, 4, 3))
        for a in range(3):
            f = []
            for sign in (1, -1):
                work = atoms.copy()
                work.positions[0, a] += sign * 1e-3
                work.calc = EMT()
                f.append(work.get_forces())
            rows[a] = -(f[0] - f[1]) / 2e-3
        out.append(Sample(atoms=atoms.copy(), energy=atoms.get_potential_energy(),
                          forces=atoms.get_forces(), fc_atoms=np.array([0]),
                          force_constants=rows.transpose(1, 0, 2)[None], source=f"cu-{k}"))
    return out


@pytest.fixture(scope="module")
def data():
    return samples()


def config(out, model=NEQUIP, **sections) -> TrainConfig:
    plain = {"model": model, "data": {"validation_fraction": 0.0},
             "optimizer": {"lr": 1e-2}, "schedule": {"warmup_steps": 0},
             "training": {"epochs": 10, "max_steps": 3, "batch_size": 2,
                          "output_dir": str(out), "progress": False, "patience": None}}
    for name, values in sections.items():
        plain[name] = {**plain.get(name, {}), **values}
    return TrainConfig.from_dict(plain)


# ------------------------------------------------------------------ model section
def test_nequip_model_section_is_parsed_by_its_config_class_and_round_trips(tmp_path):
    cfg = config(tmp_path)
    assert type(cfg.model) is NequIPConfig
    assert cfg.model.node_irreps == tuple(NEQUIP["node_irreps"])
    plain = cfg.to_dict()
    assert plain["model"]["architecture"] == "nequip"
    assert TrainConfig.from_dict(plain) == cfg


def test_fcnet_stays_the_default_architecture():
    cfg = TrainConfig.from_dict({"model": {"species": ["Si"], "num_layers": 1}})
    assert cfg.model == ModelConfig(species=("Si",), num_layers=1)
    assert cfg.to_dict()["model"]["architecture"] == "fcnet"


def test_model_section_errors_name_the_architecture():
    with pytest.raises(ValueError, match=r"unknown key 'num_layers' in config section 'model' "
                                         r"\(architecture 'nequip'\).*node_irreps.*"
                                         r"model.architecture selects another: fcnet"):
        TrainConfig.from_dict({"model": {**NEQUIP, "num_layers": 2}})
    with pytest.raises(ValueError, match="'model.architecture' must be one of fcnet, nequip"):
        TrainConfig.from_dict({"model": {"architecture": "mace", "species": ["Si"]}})
    with pytest.raises(ValueError, match="architecture 'nequip'.*node_irreps"):
        TrainConfig.from_dict({"model": {**NEQUIP, "node_irreps": ["4x0e"]}})


def test_model_section_comes_from_the_init_model_when_left_out(tmp_path):
    cfg = TrainConfig.from_dict({"training": {"init_model": "sevennet-0"}})
    stored = read_model_file(model_file("sevennet-0"))
    assert type(cfg.model) is NequIPConfig
    assert cfg.model == NequIPConfig.from_dict(stored["model_config"])
    # a model file next to the YAML, by relative path
    tiny = registry.build(config(tmp_path).model, seed=0)
    save_model(tiny, tmp_path / "tiny.pt")
    (tmp_path / "t.yaml").write_text("training: {init_model: tiny.pt}\n")
    assert TrainConfig.from_yaml(tmp_path / "t.yaml").model == tiny.config


def test_model_section_is_required_without_init_model(tmp_path):
    with pytest.raises(ValueError, match="section 'model' is required.*unless training.init_model"):
        TrainConfig.from_dict({"training": {}})
    with pytest.raises(ValueError, match="init_model .*missing.pt: no such model file, nor a bundled"):
        TrainConfig.from_dict({"training": {"init_model": str(tmp_path / "missing.pt")}})


# ------------------------------------------------------------------------- freeze
def test_freeze_matches_prefixes_at_dot_boundaries_and_names_unknown_ones():
    model = registry.build(NequIPConfig.from_dict({k: v for k, v in NEQUIP.items()
                                                   if k != "architecture"}), seed=0)
    frozen = freeze_parameters(model, ["embedding", "layers.0"])
    assert frozen and all(n.startswith(("embedding.", "layers.0.")) for n in frozen)
    for name, p in model.named_parameters():
        assert p.requires_grad == (name not in frozen), name
    for bad in ("layers.7", "layers.0.t", "embed"):
        with pytest.raises(ValueError, match=rf"training.freeze: '{bad}' matches no parameter"
                                             r".*embedding, layers.0, layers.1, layers.2"):
            freeze_parameters(model, [bad])
    with pytest.raises(ValueError, match="every parameter is frozen"):
        freeze_parameters(model, [n for n, _ in model.named_parameters()])


def test_frozen_parameters_are_unchanged_after_training_steps(data, tmp_path):
    cfg = config(tmp_path, training={"freeze": ["embedding", "layers.0"]},
                 optimizer={"weight_decay": 0.1})
    trainer = Trainer(cfg, data)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.frozen and all(n.startswith(("embedding.", "layers.0.")) for n in trainer.frozen)
    in_groups = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    params = dict(trainer.model.named_parameters())
    assert not any(id(params[n]) in in_groups for n in trainer.frozen)
    result = trainer.fit()
    assert result.steps == 3
    after, saved = trainer.model.state_dict(), result.model.state_dict()
    for name in trainer.frozen:
        assert torch.equal(after[name], before[name]), name
        assert torch.equal(saved[name], before[name]), name  # the EMA average too
    moved = [n for n in params if n not in trainer.frozen and not torch.equal(after[n], before[n])]
    assert any(n.startswith("layers.1.") for n in moved) and any(n.startswith("readout") for n in moved)


def test_freeze_with_an_unknown_prefix_stops_the_trainer(data, tmp_path):
    with pytest.raises(ValueError, match="'layers.9' matches no parameter"):
        Trainer(config(tmp_path, training={"freeze": ["layers.9"]}), data)


# --------------------------------------------------------------- backbone lr factor
@pytest.mark.parametrize("model_section_", [NEQUIP, {"species": ["Cu"], "num_layers": 1}])
def test_backbone_lr_factor_groups(model_section_, tmp_path):
    cfg = config(tmp_path, model=model_section_)
    model = registry.build(cfg.model, seed=0)
    heads = {n for n, _ in model.named_parameters() if is_head(n)}
    assert "reference_energies" in heads and any(n.startswith("readout") for n in heads)
    assert all(n == "reference_energies" or n.split(".")[0].startswith("readout") for n in heads)
    opt = make_optimizer(model, OptimizerConfig(lr=1e-3, backbone_lr_factor=0.1,
                                                weight_decay=0.01))
    names = {id(p): n for n, p in model.named_parameters()}
    seen = [names[id(p)] for g in opt.param_groups for p in g["params"]]
    assert sorted(seen) == sorted(names.values())  # every parameter in exactly one group
    schedule = WarmupCosine(1e-3, ScheduleConfig(warmup_steps=0, min_lr=1e-5), 10)
    assert schedule.apply(opt) == pytest.approx(1e-3)
    for group in opt.param_groups:
        group_names = {names[id(p)] for p in group["params"]}
        head = bool(group_names) and group_names <= heads
        assert group_names <= heads or not group_names & heads
        assert group["lr"] == pytest.approx(1e-3 if head or not group_names and
                                            group["lr_factor"] == 1.0 else 1e-4)
        assert group["weight_decay"] == (0.0 if group_names == {"reference_energies"} else 0.01) \
            or not group_names
    # factor 1: the two groups of before (decay, no decay), one rate
    plain = make_optimizer(model, OptimizerConfig(lr=1e-3))
    assert len(plain.param_groups) == 2
    assert [names[id(p)] for p in plain.param_groups[1]["params"]] == ["reference_energies"]


def test_backbone_lr_factor_in_the_trainer(data, tmp_path):
    cfg = config(tmp_path, optimizer={"backbone_lr_factor": 0.25},
                 training={"freeze": ["embedding"]})
    trainer = Trainer(cfg, data)
    batch = np.array(trainer.epoch_idx[:2])
    _, lr = trainer.train_step(batch)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            expected = lr if is_head(names[id(p)]) else 0.25 * lr
            assert group["lr"] == pytest.approx(expected), names[id(p)]
    assert "embedding.weight" not in {names[id(p)] for g in trainer.optimizer.param_groups
                                      for p in g["params"]}


# --------------------------------------------------------------- anchor (L2-SP)
def test_anchor_pull_is_lr_times_decay_of_the_distance():
    model = torch.nn.Linear(3, 2)
    model.register_parameter("reference_energies", torch.nn.Parameter(torch.zeros(2)))
    anchor = Anchor(model, decay=100.0)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=2e-3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    anchor.pull(opt)  # moves 0.2 of the way back
    for name, p in model.named_parameters():
        expected = start[name] + (1.0 if name == "reference_energies" else 0.8)
        assert torch.allclose(p, expected), name
    assert Anchor(model, 0.0).anchor == {}


def test_anchor_decay_keeps_fine_tuned_weights_nearer_the_start(data, tmp_path):
    """Same data, steps and rate: the anchored run ends nearer the initial weights."""
    distances = {}
    for decay in (0.0, 50.0):
        trainer = Trainer(config(tmp_path / str(decay), optimizer={"anchor_decay": decay},
                                 training={"max_steps": 6}), data)
        start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.fit()
        distances[decay] = sum(float((p.detach() - start[n]).norm() ** 2)
                               for n, p in trainer.model.named_parameters()
                               if n != "reference_energies") ** 0.5
    assert 0 < distances[50.0] < 0.8 * distances[0.0]


def test_model_section_helper_puts_the_architecture_first():
    section = model_section(ModelConfig(species=("Si",)))
    assert list(section)[0] == "architecture" and section["architecture"] == "fcnet"


# ------------------------------------------------------------- reference energies
def test_refit_changes_only_the_species_in_the_data(data):
    """Fine-tuning a many-species model on one element keeps the other species' shifts;
    the fitted species absorbs the new energy zero exactly."""
    from ase_fcnet.training.dataset import StructureSet
    from ase_fcnet.training.statistics import model_energies, refit_reference_energies

    model = registry.build(ModelConfig(species=("Al", "Cu", "Si"), num_layers=1), seed=0)
    with torch.no_grad():
        model.energy_scale.fill_(2.0)
        model.reference_energies.copy_(torch.tensor([-3.0, -4.0, -5.0]))
    shifted = [Sample(atoms=s.atoms, energy=s.energy - 1.5 * s.n_atoms, forces=s.forces,
                      source=s.source) for s in data]
    sset = StructureSet(shifted, 4.0, model.species, torch.float64, torch.device("cpu"))
    idx = np.arange(len(shifted))
    before = model_energies(model, sset, idx)
    refit_reference_energies(model, sset, idx)
    ref = model.reference_energies.detach()
    assert ref[0].item() == -3.0 and ref[2].item() == -5.0  # Al, Si: not in the data
    residual = np.array([s.energy for s in shifted]) - model_energies(model, sset, idx)
    assert abs(residual.mean()) < 1e-9  # Cu's shift absorbs the mean offset
    assert ref[1].item() == pytest.approx(-4.0 + np.mean(
        (np.array([s.energy for s in shifted]) - before) / 4), abs=1e-9)


def test_a_bundled_init_model_name_stays_a_name_in_stored_configs(tmp_path):
    cfg = TrainConfig.from_dict({"training": {"init_model": "sevennet-0",
                                              "output_dir": str(tmp_path / "run")}},
                                base_dir=tmp_path)
    assert cfg.training.init_model == "sevennet-0"
    plain = cfg.to_dict(relative_to=tmp_path / "run")
    assert plain["training"]["init_model"] == "sevennet-0"
    assert TrainConfig.from_dict(plain, base_dir=tmp_path / "run") == cfg
