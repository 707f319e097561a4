"""`fcnet models`: bundled models as text and JSON, a given file, none bundled, a bad file."""
import json

import pytest
from click.testing import CliRunner

import ase_fcnet.pretrained
from ase_fcnet.cli import main
from ase_fcnet.model import build_model, save_model

METRICS = {"energy_mae_meV_atom": 1.23456789, "force_mae_eV_A": 0.0123456, "n_test": 120}
METADATA = {"metrics": METRICS, "description": "tiny test model", "model_card": "docs/models/default.md"}


def run(args):
    return CliRunner().invoke(main, ["models", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny(tiny_config):
    return build_model(tiny_config, seed=0)


@pytest.fixture
def model_dir(tmp_path, tiny, monkeypatch):
    save_model(tiny, tmp_path / "default.pt", metadata=METADATA)
    save_model(tiny, tmp_path / "another.pt")
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", tmp_path)
    monkeypatch.setattr(ase_fcnet.pretrained, "DEFAULT_MODEL", "default")
    return tmp_path


def test_text_lists_bundled_models_default_first(model_dir, tiny_config):
    result = run([])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("default  (default)") < out.index("another")
    assert "2 bundled model(s)" in out
    assert "2: Si C" in out
    assert f"{tiny_config.cutoff:g} Å" in out
    assert "energy_mae_meV_atom: 1.235" in out
    assert "force_mae_eV_A: 0.01235" in out
    assert "n_test: 120" in out
    assert "docs/models/default.md" in out
    assert "tiny test model" in out


def test_json(model_dir, tiny, tiny_config):
    result = run(["--json"])
    assert result.exit_code == 0, result.output
    infos = json.loads(result.stdout)
    assert [i["name"] for i in infos] == ["default", "another"]
    assert [i["default"] for i in infos] == [True, False]
    first = infos[0]
    assert first["species"] == list(tiny_config.species)
    assert first["cutoff"] == pytest.approx(tiny_config.cutoff)
    assert first["parameters"] == sum(t.numel() for t in tiny.state_dict().values())
    assert first["metrics"] == pytest.approx(METRICS)
    assert first["model_card"] == "docs/models/default.md"
    assert first["size_mb"] == pytest.approx((model_dir / "default.pt").stat().st_size / 1e6, abs=1e-3)
    assert "metrics" not in infos[1] and "model_card" not in infos[1]


def test_path_describes_that_file(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", tmp_path / "empty")
    path = tmp_path / "mine.pt"
    save_model(tiny, path, metadata={"metrics": {"rmse": 0.5}})
    result = run([str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mine\n")
    assert "(default)" not in result.output and "rmse: 0.5" in result.output
    infos = json.loads(run([str(path), "--json"]).stdout)
    assert [i["name"] for i in infos] == ["mine"] and infos[0]["path"] == str(path)


def test_none_bundled(tmp_path, monkeypatch):
    monkeypatch.setattr(ase_fcnet.pretrained, "MODEL_DIR", tmp_path)
    result = run([])
    assert result.exit_code == 0
    assert "No model is bundled" in result.output and "--model PATH" in result.output
    assert json.loads(run(["--json"]).stdout) == []


@pytest.mark.parametrize("content", [b"not a model\n", None])
def test_bad_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:
        import torch

        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    result = run([str(path)])
    assert result.exit_code == 1
    assert str(path) in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_file(tmp_path):
    result = run([str(tmp_path / "nope.pt")])
    assert result.exit_code == 1 and "nope.pt" in result.output


def test_convert_sevennet_writes_a_loadable_file(tmp_path):
    pytest.importorskip("sevenn")
    from ase_fcnet.model import load_model, read_model_file

    out = tmp_path / "zero.pt"
    result = run(["convert-sevennet", "sevennet-0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "89 elements" in result.output and "stored as float32" in result.output
    data = read_model_file(out)
    assert data["architecture"] == "nequip" and data["format_version"] == 2
    assert data["metadata"]["source"]["checkpoint"] == "7net-0"
    assert len(data["metadata"]["source"]["sha256"]) == 64
    assert load_model(out).species[0] == "Ac"
    again = run(["convert-sevennet", "sevennet-0", "--out", str(out)])
    assert again.exit_code != 0 and "--force" in again.output
    described = run([str(out)])
    assert described.exit_code == 0 and "nequip" in described.output


def test_convert_sevennet_unknown_name_is_one_clear_line(tmp_path):
    pytest.importorskip("sevenn")
    result = run(["convert-sevennet", "not-a-model", "--out", str(tmp_path / "x.pt")])
    assert result.exit_code != 0
    assert "not-a-model" in result.output and "sevennet-l3i5" in result.output
    assert not (tmp_path / "x.pt").exists()
