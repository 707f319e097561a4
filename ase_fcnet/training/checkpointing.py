"""Training checkpoints: plain dicts of tensors and built-in types, written atomically.

A checkpoint (``last.pt``) holds ``kind``, ``format_version``, ``config``
(:meth:`TrainConfig.to_dict`), ``model`` (:func:`ase_fcnet.model.model_to_dict`),
``optimizer``, ``schedule`` and ``ema`` states, ``progress`` (step, epoch,
batch within the epoch, early-stopping state, running sums), ``best_state``
(averaged weights of the best validation epoch), ``history`` (metric rows),
``split`` (training and validation structure indices) and ``rng`` (torch,
numpy and python generator states). It loads with ``weights_only=True``.
"""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from ase_fcnet.fileio import load_weights_only
from ase_fcnet.model.checkpoint import atomic_torch_save

KIND = "ase_fcnet.training.checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A training checkpoint that cannot be resumed from."""


def rng_state() -> dict[str, Any]:
    """States of torch's, numpy's and python's global generators (plain types)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def write_checkpoint(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a checkpoint dict atomically (tag and version added)."""
    atomic_torch_save({"kind": KIND, "format_version": FORMAT_VERSION, **data}, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a training checkpoint.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Unreadable, not a training checkpoint, or a newer format.
    """
    data = load_weights_only(path, "ase_fcnet training checkpoint", CheckpointError)
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise CheckpointError(f"{path}: not an ase_fcnet training checkpoint")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {data['format_version']} is newer "
                              f"than this ase_fcnet reads ({FORMAT_VERSION})")
    return data


def best_model_dict(data: dict[str, Any]) -> dict[str, Any]:
    """The model file dict of a run as it stands at a checkpoint.

    Its weights are the checkpoint's ``best_state`` (the averaged weights of
    the best validation epoch so far), which is what ``model.pt`` would hold
    if the run ended there; use it to evaluate a run that is still going.

    Parameters
    ----------
    data : dict
        As returned by :func:`read_checkpoint`.

    Raises
    ------
    CheckpointError
        No validation epoch has finished yet.
    """
    if data.get("best_state") is None:
        raise CheckpointError("the checkpoint has no validated weights yet (no validation epoch finished)")
    progress = data["progress"]
    return {**data["model"], "state_dict": data["best_state"],
            "metadata": {"from_checkpoint": {"step": progress["step"], "best_epoch": progress["best_epoch"]}}}
