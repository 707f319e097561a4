"""Bundled models by name: ``None`` and ``"default"`` resolve to the default bundled file,
aliases to their model, paths stay paths; the real package bundles the three documented models."""
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import ase_fcnet.pretrained
from ase_fcnet import FCNetCalculator
from ase_fcnet.model import build_model, save_model
from ase_fcnet.pretrained import NoModelError, model_file
from ase_fcnet.training.config import TrainConfig


@pytest.fixture
def bundled(tmp_path, tiny_config, monkeypatch):
    folder = tmp_path / "bundled"
    folder.mkdir()
    save_model(build_model(tiny_config, seed=0), folder / "mine.pt")
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", folder)
    monkeypatch.setattr(ase_fcnet.pretrained, "DEFAULT_MODEL", "mine")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder / "mine.pt"


def test_none_and_the_bare_name_give_the_bundled_file(bundled):
    assert model_file(None) == bundled
    assert model_file("default") == bundled
    assert model_file("mine") == bundled
    assert model_file("mine.pt") == Path("mine.pt")  # a file name: not a bundled name
    assert model_file("sub/mine") == Path("sub/mine")
    assert model_file("other") == Path("other")  # not bundled: the loader reports it missing


def test_a_local_file_wins_over_the_bundled_name(bundled):
    Path("mine").write_bytes(b"")
    assert model_file("mine") == Path("mine")


def test_calculator_accepts_the_bundled_name(bundled, tiny_config):
    atoms = bulk(tiny_config.species[0], "fcc", a=4.0) * (2, 1, 1)
    energies = []
    for model in (None, "default", "mine", str(bundled)):
        atoms.calc = FCNetCalculator(model=model)
        energies.append(atoms.get_potential_energy())
    np.testing.assert_allclose(energies, energies[0], rtol=0, atol=1e-12)


def test_no_bundled_model_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", tmp_path)
    with pytest.raises(NoModelError, match="--model"):
        model_file(None)


def test_init_model_may_name_a_bundled_model(bundled, tmp_path, tiny_config):
    model = {"species": list(tiny_config.species)}
    cfg = TrainConfig.from_dict({"model": model, "training": {"init_model": "default"}},
                                base_dir=tmp_path)
    assert cfg.training.init_model == "default"
    cfg = TrainConfig.from_dict({"model": model, "training": {"init_model": "runs/m.pt"}},
                                base_dir=tmp_path)
    assert cfg.training.init_model == str(tmp_path / "runs/m.pt")


def test_the_package_bundles_the_documented_models():
    models = ase_fcnet.pretrained.bundled_models()
    assert {"sevennet-l3i5", "sevennet-0", "fcnet-small"} <= set(models)
    assert ase_fcnet.pretrained.DEFAULT_MODEL == "sevennet-l3i5"
    assert model_file(None) == models["sevennet-l3i5"] == model_file("7net-l3i5")
    assert model_file("sevennet-0") == models["sevennet-0"] == model_file("7net-0")
    assert (ase_fcnet.pretrained.MODEL_DIR / "LICENSE-SevenNet").read_text().startswith("MIT License")
    infos = {i["name"]: i for i in ase_fcnet.pretrained.describe_bundled()}
    for name in ("sevennet-l3i5", "sevennet-0"):
        assert infos[name]["architecture"] == "nequip" and len(infos[name]["species"]) == 89
        assert "MIT" in infos[name]["license"] and "doi:" in infos[name]["citation"]
        assert "caution" not in infos[name]
    assert infos["sevennet-l3i5"]["default"] is True
