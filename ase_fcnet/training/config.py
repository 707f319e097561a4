"""Typed training configuration, read from YAML in exactly one place.

A training YAML has the sections ``model`` (the keys of
:class:`ase_fcnet.model.ModelConfig`), ``data``, ``loss``, ``optimizer``,
``schedule`` and ``training``. :meth:`TrainConfig.from_yaml` turns it into
typed values; unknown keys and values of the wrong type raise ``ValueError``
naming the section and key. :func:`describe_config` prints every key with its
type, default and meaning (``fcnet train --help``).
"""
from __future__ import annotations

import difflib
import os
import re
import textwrap
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from ase_fcnet.model import ModelConfig
from ase_fcnet.training.fields import convert, type_name


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
                                  "or of a bundled model by name (default; its architecture "
                                  "must equal the model section); the energy "
                                  "scale is kept and the per-species reference energies are "
                                  "re-fitted to the new data. Relative to the YAML file's folder.",
                                  "optional_str")


SECTIONS: dict[str, type] = {
    "data": DataConfig, "loss": LossConfig, "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig, "training": RunConfig,
}
_MODEL_KINDS = {"species": "str_list", "cutoff": "float"}


def _model_help() -> dict[str, str]:
    """Key descriptions from the numpy docstring of :class:`ModelConfig`."""
    doc = ModelConfig.__doc__ or ""
    out: dict[str, str] = {}
    for match in re.finditer(r"^    (\w+) : ([^\n]*)\n((?:        [^\n]*\n?)+)", doc, re.M):
        text = " ".join(line.strip() for line in match.group(3).splitlines())
        out[match.group(1)] = text
    return out


def _unknown(key: str, where: str, valid) -> ValueError:
    close = difflib.get_close_matches(str(key), list(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ValueError(f"unknown key '{key}' in {where}{hint}; valid keys: {', '.join(valid)}")


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


def _model_from_dict(data: Any) -> ModelConfig:
    if not isinstance(data, Mapping):
        raise ValueError("config section 'model' must be a mapping of keys to values "
                         "(at least 'species')")
    known = {f.name: f for f in fields(ModelConfig)}
    for key in data:
        if key not in known:
            raise _unknown(key, "config section 'model'", known)
    if "species" not in data:
        raise ValueError("config section 'model' needs 'species' (list of element symbols)")
    kwargs = {}
    for key, value in data.items():
        kind = _MODEL_KINDS.get(key, "int")
        kwargs[key] = convert(value, f"model.{key}", kind=kind, low=None, high=None,
                              choices=(), low_open=False, help="")
    kwargs["species"] = tuple(kwargs["species"])
    return ModelConfig(**kwargs)


@dataclass
class TrainConfig:
    """Everything a training run needs; see :func:`describe_config` for each key."""

    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        mode = self.loss.fc_probe_mode
        for key in ("fc_frobenius", "fc_spectral"):
            if getattr(self.loss, key) > 0 and mode != "block":
                raise ValueError(f"loss.{key} > 0 needs whole 3x3 blocks: set loss.fc_probe_mode "
                                 f"to 'block' (it is '{mode}')")

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> "TrainConfig":
        """Typed configuration from a plain mapping (as read from YAML).

        Parameters
        ----------
        data : mapping
            Sections ``model`` (required), ``data``, ``loss``, ``optimizer``,
            ``schedule``, ``training``.
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
        if "model" not in data:
            raise ValueError("config section 'model' is required (at least model.species)")
        sections = {name: _section_from_dict(name, sec, data.get(name))
                    for name, sec in SECTIONS.items()}
        config = cls(model=_model_from_dict(data["model"]), **sections)
        if base_dir is not None:
            base = Path(base_dir)
            config.data.paths = [str(base / p) for p in config.data.paths]
            config.training.output_dir = str(base / config.training.output_dir)
            init = config.training.init_model
            if init is not None and not _bundled_name(init, base):
                config.training.init_model = str(base / init)
        return config

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
        out = {"model": self.model.to_dict()}
        out.update({name: asdict(getattr(self, name)) for name in SECTIONS})
        if relative_to is not None:
            def rel(path):
                return os.path.relpath(Path(path).resolve(), Path(relative_to).resolve())
            out["data"]["paths"] = [rel(p) for p in out["data"]["paths"]]
            out["training"]["output_dir"] = rel(out["training"]["output_dir"])
            if out["training"]["init_model"] is not None:
                out["training"]["init_model"] = rel(out["training"]["init_model"])
        return out


def _bundled_name(value: str, base: Path) -> bool:
    """Whether ``init_model`` names a bundled model (``default``) rather than a file."""
    from ase_fcnet.models import bundled_path

    return not (base / value).exists() and bundled_path(value) is not None


def describe_config(width: int = 96) -> str:
    """Every config key with its type, default and description, as plain text.

    Parameters
    ----------
    width : int
        Line width the descriptions are wrapped to.

    Returns
    -------
    str
        One block per section (separated by blank lines), one entry per key
        (``key (type, default ...): description``).
    """
    lines: list[str] = []

    def entry(text: str) -> None:
        lines.extend(textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      "))

    model_help = _model_help()
    lines.append("model: (architecture, keys of ase_fcnet.model.ModelConfig)")
    for f in fields(ModelConfig):
        default = "required" if f.default is MISSING else f"default {f.default!r}"
        kind = type_name(_MODEL_KINDS.get(f.name, "int"))
        entry(f"{f.name} ({kind}, {default}): {model_help.get(f.name, '')}")
    for name, cls in SECTIONS.items():
        lines += ["", f"{name}: ({(cls.__doc__ or '').strip()})"]
        for f in fields(cls):
            default = f.default_factory() if f.default is MISSING else f.default
            kind = type_name(f.metadata["kind"], f.metadata["choices"])
            entry(f"{f.name} ({kind}, default {default!r}): {f.metadata['help']}")
    return "\n".join(lines)
