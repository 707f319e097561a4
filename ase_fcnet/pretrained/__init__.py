"""Model files bundled with the package (``ase_fcnet/pretrained/*.pt``).

- ``sevennet-l3i5`` (the default): SevenNet-l3i5's weights in ase_fcnet's
  ``nequip`` architecture, converted from the ``sevenn`` wheel (MIT licence,
  ``LICENSE-SevenNet`` beside this file);
- ``sevennet-0``: SevenNet-0 (11 Jul 2024), about 3× cheaper per call;
- ``fcnet-small``: the distilled ``fcnet`` model, for the fastest quick looks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).resolve().parent

#: Name of the model used when none is given.
DEFAULT_MODEL = "sevennet-l3i5"

#: Other names a bundled model answers to (``"default"`` is always :data:`DEFAULT_MODEL`).
ALIASES = {"7net-l3i5": "sevennet-l3i5", "7net-0": "sevennet-0"}


def canonical_name(name: str) -> str:
    """A bundled model's own name for ``name`` (aliases and ``"default"`` resolved)."""
    return DEFAULT_MODEL if name == "default" else ALIASES.get(name, name)


class NoModelError(FileNotFoundError):
    """No model was given and none is bundled under that name."""


def bundled_models() -> dict[str, Path]:
    """Names and paths of the bundled model files (``MODEL_DIR`` is read at call time)."""
    return {p.stem: p for p in sorted(MODEL_DIR.glob("*.pt"))}


def default_model_path(name: str = "default") -> Path:
    """Path of a bundled model; a clear error when there is none."""
    models = bundled_models()
    name = canonical_name(name)
    if name in models:
        return models[name]
    raise NoModelError(
        f"no model given and no bundled model named {name!r} "
        f"(bundled: {sorted(models) or 'none'}). Pass a model file or a bundled model's name, "
        "e.g. FCNetCalculator(model='examples/si_sw/model.pt') or `fcnet phonons STRUCTURE "
        "--model PATH_OR_NAME`; `fcnet models` lists the bundled ones and their accuracy."
    )


def bundled_path(name: str | os.PathLike) -> Path | None:
    """The bundled file of a bare model name (``"sevennet-0"``, or an alias such as ``"default"``), or None.

    Only a single path part without a suffix can be a name; whether a file of
    that name exists somewhere is for the caller to weigh.
    """
    path = Path(name)
    if len(path.parts) != 1 or path.suffix:
        return None
    return bundled_models().get(canonical_name(path.name))


def model_file(model: str | os.PathLike | None) -> Path:
    """Where a model is: ``None`` is the default, a bare bundled name (``"sevennet-0"``)
    is that bundled file, anything else is a path (checked by the loader).

    A file of that name in the working directory wins over a bundled name.
    """
    if model is None:
        return default_model_path()
    path = Path(model)
    return path if path.exists() else bundled_path(path) or path


def _jsonable(value: Any) -> Any:
    """Metadata values as JSON types (tensors become numbers or lists)."""
    if hasattr(value, "tolist"):  # torch.Tensor, numpy array or scalar
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def describe_model(path: str | os.PathLike) -> dict[str, Any]:
    """What a model file holds, read without building the model.

    Parameters
    ----------
    path : path-like
        A model file written by :func:`ase_fcnet.model.save_model`.

    Returns
    -------
    dict
        JSON-serialisable: ``name`` (file stem), ``path``, ``size_mb`` (file
        size, MB = 10^6 bytes), ``format_version``, ``package_version`` (the
        ase_fcnet that saved it), ``architecture`` (registered name),
        ``species`` (element symbols, in model order), ``cutoff`` (neighbour
        cutoff, Å), ``parameters`` (numbers stored in the state dict: weights
        and buffers), and, when the metadata has them, ``description`` (str),
        ``caution`` (str: how far the measured accuracy is below its target),
        ``metrics`` (dict), ``model_card`` (str, e.g. a docs path), ``dtype``
        (the measured default precision), ``cost`` (dict: seconds per call),
        ``smoothness`` (str), ``license``, ``citation`` and ``source`` (provenance).

    Raises
    ------
    FileNotFoundError
        No such file.
    ase_fcnet.model.ModelFileError
        Not a readable model file, naming the file.
    """
    from ase_fcnet.model.checkpoint import ModelFileError, read_model_file
    from ase_fcnet.model.registry import config_from_dict

    path = Path(path)
    data = read_model_file(path)
    try:
        config = config_from_dict(data["architecture"], data["model_config"])
        parameters = sum(int(t.numel()) for t in data["state_dict"].values())
    except (ValueError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{path}: invalid model file ({err})") from err
    metadata = data.get("metadata") or {}
    info = {
        "name": path.stem,
        "path": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 3),
        "format_version": data["format_version"],
        "package_version": data.get("package_version"),
        "architecture": data["architecture"],
        "species": list(config.species),
        "cutoff": config.cutoff,
        "parameters": parameters,
    }
    for key in ("description", "caution", "metrics", "model_card", "dtype", "cost",
                "smoothness", "license", "citation", "source"):
        if metadata.get(key) is not None:
            info[key] = _jsonable(metadata[key])
    return info


def describe_bundled() -> list[dict[str, Any]]:
    """:func:`describe_model` of every bundled model, the default first, then by name.

    Each entry also has ``default`` (bool): whether it is the model used when none is given.
    """
    models = bundled_models()
    order = sorted(models, key=lambda name: (name != DEFAULT_MODEL, name))
    return [{**describe_model(models[name]), "default": name == DEFAULT_MODEL} for name in order]
