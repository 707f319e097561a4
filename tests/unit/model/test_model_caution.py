"""A model file whose metadata carries a ``caution`` warns when loaded and says so in the CLI."""
from __future__ import annotations

import json
import warnings

import pytest
from ase.build import bulk
from click.testing import CliRunner

from ase_fcnet import FCNetCalculator, ModelCautionWarning
from ase_fcnet.cli import main
from ase_fcnet.model import build_model, load_model, save_model
from ase_fcnet.pretrained import describe_model

CAUTION = "accuracy below target: frequency MAE 2.00 THz; see docs/default_model.md."


@pytest.fixture
def cautious(tmp_path, tiny_config):
    path = tmp_path / "cautious.pt"
    save_model(build_model(tiny_config, seed=0), path, metadata={"caution": CAUTION})
    return path


def test_loading_warns_with_the_file_name_and_the_caution(cautious):
    with pytest.warns(ModelCautionWarning, match="cautious.pt: accuracy below target"):
        model = load_model(cautious)
    assert model.metadata["caution"] == CAUTION
    with pytest.warns(ModelCautionWarning, match="2.00 THz"):
        FCNetCalculator(model=cautious)


def test_a_model_without_caution_loads_silently(tmp_path, tiny_config):
    path = tmp_path / "plain.pt"
    save_model(build_model(tiny_config, seed=0), path, metadata={"description": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path)


def test_describe_and_models_command_show_the_caution(cautious):
    assert describe_model(cautious)["caution"] == CAUTION
    res = CliRunner().invoke(main, ["models", str(cautious)])
    assert res.exit_code == 0, res.output
    assert "CAUTION" in res.output and "2.00 THz" in res.output


def test_fcnet_phonons_prints_the_caution_and_keeps_it_in_the_summary(cautious, tmp_path,
                                                                      tiny_config):
    cif = tmp_path / "x.cif"
    bulk(tiny_config.species[0], "fcc", a=4.0).write(cif)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelCautionWarning)  # echoed as a line, not warned
        res = CliRunner().invoke(main, ["phonons", str(cif), "--model", str(cautious), "--out",
                                        str(out), "--supercell", "2", "2", "2", "--mesh", "4",
                                        "--npoints", "5"])
    assert res.exit_code == 0, res.output
    assert f"CAUTION: {CAUTION}" in res.output
    assert json.loads((out / "summary.json").read_text())["model_caution"] == CAUTION
