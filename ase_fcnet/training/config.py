"""Typed training configuration, read from YAML in exactly one place.

A training YAML has the sections ``model`` (``architecture``, a name in
:data:`ase_fcnet.model.registry.ARCHITECTURES`, ``fcnet`` by default, and the
keys of that architecture's config class), ``data``, ``loss``, ``optimizer``,
``schedule`` and ``training``. The model section may be left out when
``training.init_model`` names the model to start from: its architecture and
config are then the init model's. :meth:`TrainConfig.from_yaml` turns it into
typed values; unknown keys and values of the wrong type raise ``ValueError``
naming the section and key. :func:`ase_fcnet.training.config_help.describe_config`
prints every key with its type, default and meaning (``fcnet train --help``).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from ase_fcnet.model import registry
from ase_fcnet.training.fields import convert
from ase_fcnet.training.terms import LOSS_TERMS


def _key(default, help: str, kind: str, choices: tuple[str, ...] = (), low=None, high=None,
         low_open: bool = False):
    """A config field with its description, kind and allowed range."""
    meta = {"help": help, "kind": kind, "choices": choices, "low": low, "high": high,
            "low_open": low_open}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where the training data is and how it is split."""

    paths: list = _key([], "Phonopy yaml files (phonopy_params.yaml, ...) or folders searched "
                       "recursively; relative paths are relative to the YAML file's folder.",
                       "str_list")
    validation_fraction: float = _key(0.1, "Fraction of structures held out for validation "
                                      "(split by structure, never by atom); 0 disables validation "
                                      "and early stopping.", "float", low=0.0, high=0.9)
    split_seed: int = _key(0, "Seed of the train/validation split.", "int")
    fc_repeat: int = _key(1, "How many times each training structure that carries force "
                          "constants appears per epoch (validation is never repeated). Raise it "
                          "when force constants are scarce, as in phonopy data with many "
                          "displaced supercells but one force-constant set per crystal, so that "
                          "most batches carry a force-constant term.", "int", low=1)
    force_constants_only: bool = _key(False, "Keep only the structures that carry force "
                                      "constants (their energies and forces are still fitted) and "
                                      "drop the displaced supercells that carry forces only.",
                                      "bool")


@dataclass
class LossConfig:
    """Loss weights and the force-constant probes."""

    energy: float = _key(1.0, "Weight of the energy-per-atom MSE, 1/(eV/atom)^2.", "float", low=0.0)
    forces: float = _key(1.0, "Weight of the force MSE, 1/(eV/Å)^2.", "float", low=0.0)
    stress: float = _key(0.0, "Weight of the stress MSE (Voigt), 1/(eV/Å^3)^2.", "float", low=0.0)
    force_constants: float = _key(1.0, "Weight of the element-wise force-constant error on the "
                                  "probed Hessian rows, 1/(eV/Å^2)^2 (mse) or 1/(eV/Å^2) (mae).",
                                  "float", low=0.0)
    fc_frobenius: float = _key(0.0, "Weight of the mean Frobenius norm |Φ_pred_ij - Φ_ref_ij|_F of "
                               "the probed 3x3 blocks, 1/(eV/Å^2); needs fc_probe_mode: block.",
                               "float", low=0.0)
    fc_spectral: float = _key(0.0, "Weight of the squared differences of the sorted eigenvalues "
                              "of the symmetrised probed 3x3 blocks, 1/(eV/Å^2)^2; needs "
                              "fc_probe_mode: block.", "float", low=0.0)
    fc_metric: str = _key("mse", "Element-wise force-constant error: mse or mae.", "choice",
                          choices=("mse", "mae"))
    fc_probes: int = _key(1, "Force-constant probes per structure per step (block: atoms, 3 "
                          "Hessian-vector products each; row: single Hessian rows; random: random "
                          "unit combinations of the labelled rows).", "int", low=1)
    fc_probe_mode: str = _key("block", "How Hessian rows are probed: block (random labelled atom, "
                              "all 3 directions: whole 3x3 blocks), row (random atom and "
                              "direction), random (random unit vector over all labelled rows).",
                              "choice", choices=("block", "row", "random"))
    fc_mass_power: float = _key(0.0, "Mass weighting of the force-constant losses: the error of "
                                "entry Φ_ij·v is multiplied by (M^2 / (m_i m_j))^(p/2), m_i the "
                                "mass of the probed atom and m_j of the receiving one (amu), M = "
                                "fc_mass_reference. 0: none; 1: errors of the mass-scaled dynamical "
                                "matrix; 0.5: roughly the frequency error of a bond of fixed "
                                "stiffness. The fc_mae metric stays unweighted.", "float", low=0.0)
    fc_mass_reference: float = _key(50.0, "Reference mass M of fc_mass_power, amu: pairs of this "
                                    "mass keep weight 1 (50: about the geometric mean atomic mass "
                                    "of the default model's training crystals).", "float", low=0.0,
                                    low_open=True)


@dataclass
class OptimizerConfig:
    """AdamW, gradient clipping and the EMA of the weights."""

    lr: float = _key(2e-3, "Peak learning rate (after warm-up).", "float", low=0.0, low_open=True)
    weight_decay: float = _key(0.0, "AdamW decoupled weight decay (not applied to the per-species "
                               "reference energies).", "float", low=0.0)
    betas: list = _key([0.9, 0.999], "AdamW (beta1, beta2), each in [0, 1).", "betas")
    grad_clip: float = _key(10.0, "Largest global gradient norm (clipped above it); 0 disables.",
                            "float", low=0.0)
    ema_decay: float = _key(0.99, "Decay of the exponential moving average of the weights used "
                            "for validation and the saved model; 0 disables the average.",
                            "float", low=0.0, high=0.999999)
    backbone_lr_factor: float = _key(1.0, "Fine-tuning: the backbone's learning rate is lr times "
                                     "this factor. The head (every parameter whose name starts "
                                     "with 'readout', i.e. the energy readout, and the per-species "
                                     "'reference_energies') keeps lr; everything else (radial "
                                     "basis, species embedding, interaction layers) is the "
                                     "backbone. 1: one rate for all.", "float", low=0.0,
                                     low_open=True)
    anchor_decay: float = _key(0.0, "Fine-tuning (training.init_model): decoupled decay of the "
                               "weights toward the initial model's instead of toward zero "
                               "(L2-SP): after each step every trained weight w moves by "
                               "lr * anchor_decay * (w0 - w), the per-species reference energies "
                               "excepted. Where the data keep pushing, a weight settles about "
                               "1/anchor_decay from w0 (Adam's steps are about lr each), which "
                               "limits forgetting outside the fine-tuning data. 0: off.",
                               "float", low=0.0)


@dataclass
class ScheduleConfig:
    """Learning-rate warm-up and cosine decay."""

    warmup_steps: int = _key(20, "Steps of linear warm-up from 0 to lr.", "int", low=0)
    min_lr: float = _key(1e-5, "Learning rate reached by the cosine decay at the last step.",
                         "float", low=0.0)


@dataclass
class RunConfig:
    """Budget, batching, reproducibility, output."""

    epochs: int = _key(100, "Passes over the training structures.", "int", low=1)
    max_steps: int | None = _key(None, "Stop after this many optimizer steps (null: the epochs "
                                 "decide).", "optional_int", low=1)
    batch_size: int = _key(4, "Structures per optimizer step (global, over all processes).",
                           "int", low=1)
    patience: int | None = _key(20, "Stop after this many epochs without a lower validation loss "
                                "(null: never stop early).", "optional_int", low=1)
    seed: int = _key(0, "Seed of weights, batch order and probes (runs are reproducible).", "int")
    output_dir: str = _key("fcnet-training", "Folder for checkpoints, logs, figure and model.pt; "
                           "relative to the YAML file's folder.", "str")
    device: str = _key("auto", "cpu, cuda, cuda:N or auto (cuda when available).", "str")
    dtype: str = _key("float64", "Precision of model and training: float64 or float32.", "choice",
                      choices=("float64", "float32"))
    checkpoint_interval: int = _key(50, "Write last.pt every this many steps (and after every "
                                    "epoch).", "int", low=1)
    energy_scale: Any = _key("auto", "Scale of the learned per-atom energy, eV; auto: the "
                             "training data's RMS force times 1 Å, at least 1 eV.", "auto_float",
                             low=0.0, low_open=True)
    progress: bool = _key(True, "Show a tqdm progress bar with running metrics.", "bool")
    init_model: str | None = _key(None, "Fine-tuning: start from the weights of this model file, "
                                  "or of a bundled model by name (sevennet-l3i5, sevennet-0, "
                                  "fcnet-small, default). Leave the model section out to take "
                                  "the architecture and its config from this model; a model "
                                  "section given must equal them. The energy scale is kept and "
                                  "the per-species reference energies are re-fitted to the new "
                                  "data. Relative to the YAML file's folder.", "optional_str")
    freeze: list = _key([], "Parameters not trained, by name prefix: 'embedding', 'layers.0' "
                        "(a whole block), 'layers.0.tp' or a full parameter name; a prefix "
                        "matches at a '.' boundary ('layers.1' is not 'layers.10'). A prefix "
                        "that matches no parameter is an error naming it.", "str_list")
    train_species: list = _key([], "Fine-tuning restricted to these elements (e.g. [Si]): only "
                               "their per-species parameters are trained (their embedding rows "
                               "and reference energies, and for nequip models per-species "
                               "adapters after every block, switched on here and starting as "
                               "the identity). Every other weight stays as it was, so any "
                               "structure without these elements is predicted exactly as "
                               "before. Needs init_model; excludes freeze.", "str_list")


SECTIONS: dict[str, type] = {
    "data": DataConfig, "loss": LossConfig, "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig, "training": RunConfig,
}
#: Architecture of a model section without an ``architecture`` key.
DEFAULT_ARCHITECTURE = "fcnet"
def _unknown(key: str, where: str, valid, hint: str = "") -> ValueError:
    close = difflib.get_close_matches(str(key), list(valid), n=1)
    suggestion = f" (did you mean '{close[0]}'?)" if close else ""
    return ValueError(f"unknown key '{key}' in {where}{suggestion}; valid keys: "
                      f"{', '.join(valid)}{hint}")


def _section_from_dict(name: str, cls: type, data: Any):
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"config section '{name}' must be a mapping of keys to values, "
                         f"got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise _unknown(key, f"config section '{name}'", known)
    kwargs = {key: convert(data[key], f"{name}.{key}", **known[key].metadata)
              for key in data}
    return cls(**kwargs)


def architecture_of(model_config: Any) -> str:
    """Registered architecture name of a typed model config (TypeError if none)."""
    return registry.config_architecture(model_config)


def model_config_from_dict(data: Any):
    """Typed model config from a model section (``architecture`` + that architecture's keys).

    The section is parsed once, by the architecture's config class
    (``from_dict``); ``architecture`` defaults to :data:`DEFAULT_ARCHITECTURE`.
    Unknown keys are reported with a suggestion and the valid keys.

    Raises
    ------
    ValueError
        Not a mapping, unknown architecture or key, missing ``species``, or
        whatever the config class refuses (the message names the section).
    """
    if not isinstance(data, Mapping):
        raise ValueError("config section 'model' must be a mapping of keys to values "
                         "(at least 'species')")
    data = dict(data)
    name = data.pop("architecture", DEFAULT_ARCHITECTURE)
    if not isinstance(name, str) or name not in registry.ARCHITECTURES:
        raise ValueError(f"config key 'model.architecture' must be one of "
                         f"{', '.join(registry.ARCHITECTURES)}, got {name!r}")
    arch = registry.ARCHITECTURES[name]
    known = ["architecture", *(f.name for f in fields(arch.config_class))]
    others = [n for n in registry.ARCHITECTURES if n != name]
    for key in data:
        if key not in known:
            raise _unknown(key, f"config section 'model' (architecture '{name}')", known,
                           f" (model.architecture selects another: {', '.join(others)})")
    if "species" not in data:
        raise ValueError("config section 'model' needs 'species' (list of element symbols)")
    if isinstance(data["species"], str):  # ``species: Si``, as every other list of strings
        data["species"] = [data["species"]]
    try:
        return arch.config_class.from_dict(data)
    except (ValueError, TypeError) as err:
        raise ValueError(f"config section 'model' (architecture '{name}'): {err}") from err


def model_section(model_config: Any) -> dict[str, Any]:
    """Plain model section of a typed config: ``architecture`` first, then its keys."""
    return {"architecture": architecture_of(model_config), **model_config.to_dict()}


def init_model_config(init_model: str):
    """Architecture config stored in the model file (or bundled model) ``init_model``."""
    from ase_fcnet.model import ModelFileError, read_model_file
    from ase_fcnet.pretrained import bundled_models, model_file

    path = model_file(init_model)
    try:
        data = read_model_file(path)
        return registry.config_from_dict(data["architecture"], data["model_config"])
    except FileNotFoundError as err:
        raise ValueError(f"training.init_model {init_model}: no such model file, nor a bundled "
                         f"model's name ({', '.join(bundled_models())})") from err
    except (ModelFileError, ValueError, TypeError) as err:
        raise ValueError(f"training.init_model {init_model}: {err}") from err


@dataclass
class TrainConfig:
    """Everything a training run needs (each key: :func:`.config_help.describe_config`)."""

    model: Any  # typed config of a registered architecture (ModelConfig, NequIPConfig, ...)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        run = self.training
        if run.train_species:
            if run.init_model is None or run.freeze:
                raise ValueError("training.train_species fine-tunes a stored model: it needs "
                                 "training.init_model and excludes training.freeze")
            missing = [el for el in run.train_species if el not in self.model.species]
            if missing:
                raise ValueError(f"training.train_species: the model has no {', '.join(missing)}")
            if getattr(self.model, "species_adapters", True) is False:
                self.model = replace(self.model, species_adapters=True)
        mode = self.loss.fc_probe_mode
        for key in (t.name for t in LOSS_TERMS if t.blocks):
            if getattr(self.loss, key) > 0 and mode != "block":
                raise ValueError(f"loss.{key} > 0 needs whole 3x3 blocks: set loss.fc_probe_mode "
                                 f"to 'block' (it is '{mode}')")

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> "TrainConfig":
        """Typed configuration from a plain mapping (as read from YAML).

        Parameters
        ----------
        data : mapping
            Sections ``model``, ``data``, ``loss``, ``optimizer``,
            ``schedule``, ``training``. ``model`` is required unless
            ``training.init_model`` is set; then, when left out, the init
            model's architecture and config are used (its file is read here).
        base_dir : path-like, optional
            Folder that relative ``data.paths`` and ``training.output_dir``
            are resolved against (unchanged when None).

        Raises
        ------
        ValueError
            Unknown or misspelt section or key (the message names it and lists
            the valid ones), a value of the wrong type or out of range.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a training config must be a mapping of sections, "
                             f"got {type(data).__name__}")
        valid = ["model", *SECTIONS]
        for key in data:
            if key not in valid:
                raise _unknown(key, "the top level (sections)", valid)
        sections = {name: _section_from_dict(name, sec, data.get(name))
                    for name, sec in SECTIONS.items()}
        run = sections["training"]
        if base_dir is not None:
            base = Path(base_dir)
            sections["data"].paths = [str(base / p) for p in sections["data"].paths]
            run.output_dir = str(base / run.output_dir)
            if run.init_model is not None and not _bundled_name(run.init_model, base):
                run.init_model = str(base / run.init_model)
        if data.get("model") is not None:
            model = model_config_from_dict(data["model"])
        elif run.init_model is not None:
            model = init_model_config(run.init_model)
        else:
            raise ValueError("config section 'model' is required (at least model.species), "
                             "unless training.init_model names the model to start from")
        return cls(model=model, **sections)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a training YAML; relative paths are taken from the YAML's folder.

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Not valid YAML, or any problem :meth:`from_dict` reports (the
            message starts with the file name).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({err})") from err
        try:
            return cls.from_dict(data if data is not None else {}, base_dir=path.resolve().parent)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """Plain mapping (lists, numbers, strings) that :meth:`from_dict` reads back.

        Parameters
        ----------
        relative_to : path-like, optional
            Write ``data.paths``, ``training.output_dir`` and
            ``training.init_model`` relative to this folder (so that
            ``from_dict(..., base_dir=relative_to)`` restores them), e.g. to
            keep absolute paths of one machine out of a model file.
        """
        out = {"model": model_section(self.model)}
        out.update({name: asdict(getattr(self, name)) for name in SECTIONS})
        if relative_to is not None:
            def rel(path):
                return os.path.relpath(Path(path).resolve(), Path(relative_to).resolve())
            out["data"]["paths"] = [rel(p) for p in out["data"]["paths"]]
            out["training"]["output_dir"] = rel(out["training"]["output_dir"])
            init = out["training"]["init_model"]
            if init is not None and not _bundled_name(init, Path.cwd()):
                out["training"]["init_model"] = rel(init)
        return out


def _bundled_name(value: str, base: Path) -> bool:
    """Whether ``init_model`` names a bundled model (``default``) rather than a file."""
    from ase_fcnet.pretrained import bundled_path

    return not (base / value).exists() and bundled_path(value) is not None
