"""TrainConfig: YAML → typed values, clear errors, documented keys."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from ase_fcnet.model import ModelConfig
from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.model.registry import ARCHITECTURES
from ase_fcnet.training.config import SECTIONS, TrainConfig
from ase_fcnet.training.config_help import describe_config

EXAMPLE = """\
model:
  species: [Cu, Al]
  cutoff: 4.5
  num_layers: 2
data:
  paths: [data/cu, ../al/phonopy_params.yaml]
  validation_fraction: 0.2
  split_seed: 3
loss:
  energy: 1.0
  forces: 10.0
  stress: 0.0
  force_constants: 1.0
  fc_frobenius: 0.1
  fc_spectral: 0.01
  fc_metric: mae
  fc_probes: 2
  fc_probe_mode: block
optimizer:
  lr: 1e-3
  weight_decay: 1.0e-6
  betas: [0.9, 0.99]
  grad_clip: 5
  ema_decay: 0.995
schedule:
  warmup_steps: 10
  min_lr: 1.0e-5
training:
  epochs: 50
  max_steps: 1000
  batch_size: 8
  patience: null
  seed: 7
  output_dir: runs/cu
  device: cpu
  dtype: float64
  checkpoint_interval: 25
  energy_scale: auto
  progress: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_example_yaml_gives_typed_values(tmp_path):
    cfg = TrainConfig.from_yaml(write(tmp_path, EXAMPLE))
    assert cfg.model == ModelConfig(species=("Cu", "Al"), cutoff=4.5, num_layers=2)
    assert cfg.optimizer.lr == 1e-3 and isinstance(cfg.optimizer.lr, float)
    assert cfg.optimizer.grad_clip == 5.0 and isinstance(cfg.optimizer.grad_clip, float)
    assert cfg.optimizer.betas == [0.9, 0.99]
    assert cfg.training.patience is None and cfg.training.max_steps == 1000
    assert cfg.loss.fc_metric == "mae" and cfg.loss.fc_probes == 2
    assert cfg.data.paths == [str(tmp_path / "data/cu"),
                              str(tmp_path / "../al/phonopy_params.yaml")]
    assert cfg.training.output_dir == str(tmp_path / "runs/cu")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_paths_can_be_stored_relative_to_the_run_folder(tmp_path):
    cfg = TrainConfig.from_yaml(write(tmp_path, EXAMPLE))
    run = tmp_path / "runs" / "cu"
    plain = cfg.to_dict(relative_to=run)
    assert plain["data"]["paths"] == ["../../data/cu", "../../../al/phonopy_params.yaml"]
    assert plain["training"]["output_dir"] == "."
    back = TrainConfig.from_dict(plain, base_dir=run)
    assert [Path(p).resolve() for p in back.data.paths] == [Path(p).resolve() for p in cfg.data.paths]
    assert Path(back.training.output_dir).resolve() == run.resolve()


def test_defaults_need_only_species():
    cfg = TrainConfig.from_dict({"model": {"species": "Si"}})
    assert cfg.model.species == ("Si",)
    assert cfg.training.energy_scale == "auto" and cfg.loss.fc_probe_mode == "block"


@pytest.mark.parametrize("section", ["model", *SECTIONS])
def test_unknown_key_names_key_section_and_valid_keys(section):
    data = {"model": {"species": ["Si"]}}
    data.setdefault(section, {})["not_a_key"] = 1
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(data)
    msg = str(err.value)
    assert "'not_a_key'" in msg and f"'{section}'" in msg
    cls = ModelConfig if section == "model" else SECTIONS[section]
    assert all(f.name in msg for f in fields(cls))


def test_misspelt_key_gets_a_suggestion(tmp_path):
    path = write(tmp_path, "model: {species: [Si]}\nloss:\n  forcs: 2.0\n")
    with pytest.raises(ValueError, match=r"train.yaml: unknown key 'forcs' in config section "
                                         r"'loss' \(did you mean 'forces'\?\)"):
        TrainConfig.from_yaml(path)


def test_unknown_section_lists_sections():
    with pytest.raises(ValueError, match="unknown key 'trainig'.*did you mean 'training'.*"
                                         "model, data, loss, optimizer, schedule, training"):
        TrainConfig.from_dict({"model": {"species": ["Si"]}, "trainig": {}})


@pytest.mark.parametrize("section,key,value,match", [
    ("training", "epochs", "ten", "'training.epochs' must be an integer"),
    ("training", "batch_size", 2.5, "'training.batch_size' must be an integer"),
    ("training", "batch_size", 0, "'training.batch_size' must be >= 1"),
    ("training", "progress", "yes", "'training.progress' must be true or false"),
    ("training", "dtype", "float16", "'training.dtype' must be one of float64, float32"),
    ("training", "energy_scale", "big", "'training.energy_scale' must be a number"),
    ("optimizer", "lr", True, "'optimizer.lr' must be a number"),
    ("optimizer", "lr", 0.0, "'optimizer.lr' must be > 0"),
    ("optimizer", "betas", [0.9], "'optimizer.betas' must be a list of two numbers"),
    ("optimizer", "betas", [0.9, 1.5], r"both betas in \[0, 1\)"),
    ("data", "validation_fraction", 1.5, "'data.validation_fraction' must be <= 0.9"),
    ("data", "paths", [1, 2], "'data.paths' must be a list of strings"),
    ("loss", "fc_probe_mode", "all", "must be one of block, row, random"),
    ("loss", "forces", -1.0, "'loss.forces' must be >= 0"),
    # the model section is parsed by the architecture's config class (its own messages)
    ("model", "num_layers", 1.5, "section 'model'.*num_layers=1.5 is not an integer"),
    ("model", "cutoff", "far", "section 'model'.*cutoff='far' is not a number"),
])
def test_wrong_types_and_ranges(section, key, value, match):
    data = {"model": {"species": ["Si"]}}
    data.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(data)


def test_model_section_problems():
    with pytest.raises(ValueError, match="section 'model' is required"):
        TrainConfig.from_dict({"training": {}})
    with pytest.raises(ValueError, match="needs 'species'"):
        TrainConfig.from_dict({"model": {"cutoff": 4.0}})
    with pytest.raises(ValueError, match="unknown element"):
        TrainConfig.from_dict({"model": {"species": ["Xx"]}})


def test_block_terms_need_block_probes():
    with pytest.raises(ValueError, match="fc_probe_mode"):
        TrainConfig.from_dict({"model": {"species": ["Si"]},
                               "loss": {"fc_frobenius": 1.0, "fc_probe_mode": "row"}})


def test_bad_yaml_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="not valid YAML"):
        TrainConfig.from_yaml(write(tmp_path, "model: [species: {\n"))
    with pytest.raises(ValueError, match="must be a mapping of sections"):
        TrainConfig.from_yaml(write(tmp_path, "- model\n- data\n"))
    with pytest.raises(ValueError, match="section 'loss' must be a mapping"):
        TrainConfig.from_yaml(write(tmp_path, "model: {species: [Si]}\nloss: 3\n"))


def test_every_key_is_described():
    text = describe_config()
    models = [arch.config_class for arch in ARCHITECTURES.values()]
    assert {ModelConfig, NequIPConfig} <= set(models)
    for cls in (*models, *SECTIONS.values()):
        for f in fields(cls):
            line = next((ln for ln in text.splitlines() if ln.strip().startswith(f"{f.name} (")),
                        None)
            assert line is not None, f.name
            assert len(line.split("):", 1)[1].strip()) > 5, f"{f.name} has no description"
