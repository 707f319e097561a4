"""Model files (save_model / load_model) and ModelConfig validation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ase_fcnet.model import (
    FORMAT_VERSION,
    ModelConfig,
    ModelFileError,
    build_model,
    load_model,
    model_to_dict,
    read_model_file,
    save_model,
)


class Payload:
    """A custom class: must never be unpickled from a model file."""

    def __init__(self):
        self.value = 42


class Exploit:
    """What a malicious file does: run a callable on unpickling."""

    def __reduce__(self):
        return (print, ("arbitrary code executed",))


def test_round_trip_gives_identical_energies(model, sic_cubic, molecule_sic, helpers, tmp_path):
    path = tmp_path / "sub" / "model.pt"
    save_model(model, path, metadata={"trained_on": "nothing", "epochs": 0})
    loaded = load_model(path)
    assert loaded.config == model.config
    assert loaded.metadata == {"trained_on": "nothing", "epochs": 0}
    assert float(loaded.energy_scale) == float(model.energy_scale)
    for atoms in (sic_cubic, molecule_sic):
        a, b = helpers.evaluate(model, atoms), helpers.evaluate(loaded, atoms)
        assert a["energy"] == b["energy"]
        assert (a["forces"] == b["forces"]).all()
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left over


def test_round_trip_keeps_buffers_and_all_parameters(model, tmp_path):
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    ref = model.state_dict()
    got = loaded.state_dict()
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key


def test_file_is_plain_dict(model, tmp_path):
    save_model(model, tmp_path / "m.pt")
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    assert data["format_version"] == FORMAT_VERSION
    assert set(data) == {"format_version", "package_version", "architecture", "model_config",
                         "state_dict", "metadata"}
    assert data["architecture"] == "fcnet"
    assert ModelConfig.from_dict(data["model_config"]) == model.config


@pytest.mark.parametrize("obj", [Payload(), Exploit()], ids=["instance", "reduce"])
def test_pickled_object_is_refused(tmp_path, capsys, obj):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model_config": {"species": ["Si"]},
                "state_dict": {}, "metadata": {"x": obj}}, path)
    with pytest.raises(ModelFileError, match="not a readable ase_fcnet model file"):
        load_model(path)
    assert "arbitrary code executed" not in capsys.readouterr().out


@pytest.mark.parametrize("value", [np.float64(0.25), np.arange(3), Path("/data/train.xyz")],
                         ids=["np.float64", "ndarray", "Path"])
def test_metadata_is_refused_at_save_or_round_trips(model, tmp_path, value):
    path = tmp_path / "m.pt"
    try:
        save_model(model, path, metadata={"value": value})
    except (TypeError, ValueError):
        return  # refused when saving: fine
    assert load_model(path).metadata["value"] is not None


def test_newer_format_asks_to_upgrade(model, tmp_path):
    data = model_to_dict(model)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, tmp_path / "new.pt")
    with pytest.raises(ModelFileError, match="(?i)upgrade") as info:
        load_model(tmp_path / "new.pt")
    assert str(FORMAT_VERSION + 1) in str(info.value)


@pytest.mark.parametrize("mangle", ["truncated", "garbage", "empty"])
def test_corrupt_file(model, tmp_path, mangle):
    path = tmp_path / "m.pt"
    save_model(model, path)
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"\x00not a model\xff" * 50,
                      "empty": b""}[mangle])
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "no format_version"),
    ({"format_version": 1}, "lacks"),
    ({"format_version": "1", "model_config": {}, "state_dict": {}}, "format"),
])
def test_wrong_kind_of_file(tmp_path, content, message):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(ModelFileError, match=message):
        read_model_file(tmp_path / "x.pt")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "nope.pt")


def test_weights_of_other_architecture_are_refused(model, tmp_path):
    data = model_to_dict(model)
    data["model_config"]["scalar_channels"] = 12
    torch.save(data, tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(tmp_path / "m.pt")


def test_bad_config_in_file(model, tmp_path):
    data = model_to_dict(model)
    data["model_config"]["colour"] = "blue"
    torch.save(data, tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match="colour"):
        load_model(tmp_path / "m.pt")


# ----------------------------------------------------------------------------- ModelConfig


def test_config_dict_round_trip(tiny_config):
    again = ModelConfig.from_dict(tiny_config.to_dict())
    assert again == tiny_config and isinstance(again.species, tuple)
    assert ModelConfig.from_dict({"species": ["Na", "Cl"], "cutoff": "4.5"}).cutoff == 4.5


def test_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"\['colour', 'size'\]"):
        ModelConfig.from_dict({"species": ["Si"], "colour": 1, "size": 2})


@pytest.mark.parametrize("changes, message", [
    ({"species": []}, "at least one"),
    ({"species": ["Si", "Xx"]}, "Xx"),
    ({"species": ["Si", "Si"]}, "duplicate"),
    ({"cutoff": 0.0}, "cutoff"),
    ({"cutoff": -1.0}, "cutoff"),
    ({"cutoff": "abc"}, "cutoff='abc' is not a number"),
    ({"num_layers": 0}, "num_layers"),
    ({"num_heads": 0}, "num_heads"),
    ({"l_max": -1}, "l_max"),
    ({"scalar_channels": None}, "scalar_channels"),
])
def test_from_dict_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict({"species": ["Si", "C"], **changes})


def test_missing_species():
    with pytest.raises(ValueError, match="species"):
        ModelConfig.from_dict({"cutoff": 4.0})


@pytest.mark.parametrize("changes", [{"cutoff": float("nan")}, {"cutoff": float("inf")},
                                     {"num_layers": 2.5}])
def test_from_dict_rejects_non_finite_or_fractional(changes):
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"species": ["Si"], **changes})


def test_config_is_frozen(tiny_config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_config.cutoff = 9.0


def test_build_model_seed_is_reproducible_and_private(tiny_config):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = build_model(tiny_config, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state), "global RNG state was consumed"
    b = build_model(tiny_config, seed=7)
    c = build_model(tiny_config, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config is tiny_config and a.species == ["Si", "C"] and a.cutoff == tiny_config.cutoff


def test_format_1_files_read_as_fcnet(model, tmp_path):
    data = model_to_dict(model)
    data["format_version"] = 1
    del data["architecture"]
    torch.save(data, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.config == model.config
    assert read_model_file(tmp_path / "old.pt")["architecture"] == "fcnet"


def test_unknown_architecture_and_newer_format_are_named(model, tmp_path):
    data = model_to_dict(model)
    torch.save({**data, "architecture": "transformer"}, tmp_path / "a.pt")
    with pytest.raises(ModelFileError, match="architecture 'transformer'.*fcnet.*nequip"):
        read_model_file(tmp_path / "a.pt")
    torch.save({**data, "format_version": FORMAT_VERSION + 1}, tmp_path / "b.pt")
    with pytest.raises(ModelFileError, match=f"format {FORMAT_VERSION + 1}.*Upgrade"):
        read_model_file(tmp_path / "b.pt")
    torch.save({**data, "format_version": "2"}, tmp_path / "c.pt")
    with pytest.raises(ModelFileError, match="not a positive integer"):
        read_model_file(tmp_path / "c.pt")


def test_nequip_model_round_trips(tmp_path):
    from ase_fcnet.model.nequip import NequIPConfig
    from ase_fcnet.model.registry import build

    config = NequIPConfig(species=("Na", "Cl"), cutoff=4.0, node_irreps=("4x0e", "4x0e+2x1e", "4x0e"),
                          denominators=(2.0, 2.0), cutoff_function="xplor", cutoff_on=3.5,
                          modalities=("A", "B"), modality="B", modal_inputs=("interaction_in", "readout"))
    model = build(config, seed=1)
    save_model(model, tmp_path / "n.pt")
    data = read_model_file(tmp_path / "n.pt")
    assert data["architecture"] == "nequip" and NequIPConfig.from_dict(data["model_config"]) == config
    loaded = load_model(tmp_path / "n.pt")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
