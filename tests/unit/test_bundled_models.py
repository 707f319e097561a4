"""Bundled models by name: ``None`` and ``"default"`` resolve to the bundled file, paths stay paths."""
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import ase_fcnet.models
from ase_fcnet import FCNetCalculator
from ase_fcnet.model import build_model, save_model
from ase_fcnet.models import NoModelError, model_file
from ase_fcnet.training.config import TrainConfig


@pytest.fixture
def bundled(tmp_path, tiny_config, monkeypatch):
    folder = tmp_path / "bundled"
    folder.mkdir()
    save_model(build_model(tiny_config, seed=0), folder / "default.pt")
    monkeypatch.setattr(ase_fcnet.models, "MODEL_DIR", folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder / "default.pt"


def test_none_and_the_bare_name_give_the_bundled_file(bundled):
    assert model_file(None) == bundled
    assert model_file("default") == bundled
    assert model_file("default.pt") == Path("default.pt")  # a file name: not a bundled name
    assert model_file("sub/default") == Path("sub/default")
    assert model_file("other") == Path("other")  # not bundled: the loader reports it missing


def test_a_local_file_wins_over_the_bundled_name(bundled):
    Path("default").write_bytes(b"")
    assert model_file("default") == Path("default")


def test_calculator_accepts_the_bundled_name(bundled, tiny_config):
    atoms = bulk(tiny_config.species[0], "fcc", a=4.0) * (2, 1, 1)
    energies = []
    for model in (None, "default", str(bundled)):
        atoms.calc = FCNetCalculator(model=model)
        energies.append(atoms.get_potential_energy())
    np.testing.assert_allclose(energies, energies[0], rtol=0, atol=1e-12)


def test_no_bundled_model_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(ase_fcnet.models, "MODEL_DIR", tmp_path)
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
