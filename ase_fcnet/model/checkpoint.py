"""Model files: plain dicts loaded with ``torch.load(weights_only=True)``.

A model file holds ``format_version``, ``package_version``, ``architecture``
(a name in :data:`ase_fcnet.model.registry.ARCHITECTURES`), ``model_config``
(the builder's arguments), ``state_dict`` and free-form ``metadata`` (plain
types only). Nothing is pickled but tensors and built-in containers.
Format-1 files have no ``architecture`` and are read as ``fcnet``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ase_fcnet._version import __version__
from ase_fcnet.fileio import atomic_write, load_weights_only
from ase_fcnet.model import registry

#: Version of the model-file layout this package writes and reads
#: (1: no ``architecture`` key, always fcnet; 2: ``architecture`` recorded).
FORMAT_VERSION = 2


class ModelFileError(ValueError):
    """A model file that cannot be used (corrupt, wrong kind, newer format)."""


class ModelCautionWarning(UserWarning):
    """The model file's metadata carries a ``caution``: measured accuracy below its own target.

    Issued once per process by default (Python's warning filters); silence it with
    ``warnings.simplefilter("ignore", ModelCautionWarning)`` after reading the model card.
    """


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def plain(value: Any, key: str = "metadata") -> Any:
    """Convert to types ``torch.load(weights_only=True)`` accepts, or raise naming the key.

    numpy scalars and arrays become Python numbers and lists, paths become strings.
    """
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{key}: cannot store a {type(value).__name__} in a model file "
                    "(use numbers, strings, lists, dicts or tensors)")


def model_to_dict(model: torch.nn.Module, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plain-dict form of a model of any registered architecture (CPU tensors, dtype kept)."""
    return {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "architecture": registry.architecture_name(model),
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": plain(dict(metadata or {})),
    }


def save_model(model: torch.nn.Module, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a model file atomically (no half-written file on failure)."""
    atomic_torch_save(model_to_dict(model, metadata), path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a model file; raise clear errors for bad files."""
    data = load_weights_only(path, "ase_fcnet model file", ModelFileError)
    if not isinstance(data, dict) or "format_version" not in data:
        raise ModelFileError(f"{path}: not an ase_fcnet model file (no format_version)")
    version = data["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        kind = type(version).__name__
        raise ModelFileError(f"{path}: format_version {version!r} ({kind}) is not a positive integer "
                             "(not a file written by ase_fcnet)")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format {version} was written by ase_fcnet "
            f"{data.get('package_version', '?')}; this ase_fcnet {__version__} reads format "
            f"<= {FORMAT_VERSION}. Upgrade ase_fcnet to load it."
        )
    missing = {"model_config", "state_dict"} - set(data)
    if missing:
        raise ModelFileError(f"{path}: model file lacks {sorted(missing)}")
    data = dict(data)
    data.setdefault("architecture", "fcnet")
    for key, kind in (("package_version", str), ("architecture", str), ("model_config", dict),
                      ("state_dict", dict), ("metadata", dict)):
        if key in data and not isinstance(data[key], kind):
            raise ModelFileError(f"{path}: {key} is a {type(data[key]).__name__}, not a "
                                 f"{kind.__name__} (not a file written by ase_fcnet)")
    if data["architecture"] not in registry.ARCHITECTURES:
        raise ModelFileError(f"{path}: architecture {data['architecture']!r} is not one this "
                             f"ase_fcnet {__version__} knows ({sorted(registry.ARCHITECTURES)})")
    check_weights(data["state_dict"], str(path))
    return data


def check_weights(state_dict: Mapping[str, Any], source: str) -> None:
    """Every entry a tensor with finite values, or a :class:`ModelFileError` naming the first bad tensor."""
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{source}: state_dict entry {name!r} is a {type(value).__name__}, "
                                 "not a tensor")
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ModelFileError(f"{source}: weight tensor {name!r} holds {bad} non-finite "
                                     f"value{'s' * (bad != 1)} (NaN or inf) of {value.numel()}; "
                                     "the model cannot be used")


def model_from_dict(
    data: Mapping[str, Any],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    source: str = "model",
) -> torch.nn.Module:
    """Rebuild a model of any registered architecture from its plain-dict form (weights checked finite)."""
    check_weights(data["state_dict"], source)
    try:
        config = registry.config_from_dict(data.get("architecture", "fcnet"), data["model_config"])
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{source}: {err}") from err
    try:
        model = registry.build(config, dtype=dtype, device=device)
    except (ValueError, RuntimeError) as err:
        raise ModelFileError(f"{source}: cannot build the stored architecture: {err}") from err
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise ModelFileError(f"{source}: weights do not match the stored architecture") from err
    registry.exact_wigner_3j(model)  # a file may hold them rounded to its dtype
    model.metadata = dict(data.get("metadata", {}))
    return model.to(device=device, dtype=dtype)


def load_model(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """Load a model file written by :func:`save_model` (any registered architecture).

    Parameters
    ----------
    path : path-like
    dtype : torch.dtype
        Parameter dtype after loading (float64 by default).
    device : torch.device or str, optional

    Warns
    -----
    ModelCautionWarning
        When the file's metadata has a ``caution`` (e.g. a bundled model whose
        measured accuracy is below its target); the text says how far off it is
        and where the model card is.
    """
    data = read_model_file(path)
    model = model_from_dict(data, dtype=dtype, device=device, source=str(path))
    caution = model.metadata.get("caution")
    if caution:
        warnings.warn(f"{Path(path).name}: {caution}", ModelCautionWarning, stacklevel=2)
    return model
