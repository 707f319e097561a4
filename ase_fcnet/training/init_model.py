"""Fine-tuning's starting point: a stored model's weights loaded into the model being trained."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ase_fcnet.model import read_model_file, registry
from ase_fcnet.training.config import architecture_of, model_section


#: Architecture → (config key, parameter-name part) of what fine-tuning may add to a stored
#: model: the key is 0/False in the file, and only parameters containing the part are new.
GROWABLE = {"fcnet": ("product_channels", ".product."),
            "nequip": ("species_adapters", ".adapters.")}


def init_from(model: torch.nn.Module, path: str, config) -> tuple[str, dict[str, Any]]:
    """Load a model file's weights into ``model`` (fine-tuning), any architecture.

    The stored architecture and config must equal ``config``, with two
    exceptions, parts ``model`` may add to a stored model without them: an
    ``fcnet`` model's node-wise products (``product_channels``) and a
    ``nequip`` model's per-species adapters (``species_adapters``). Both start
    as the identity, so the grown model computes what the stored one did.

    Returns
    -------
    scale_source : str — where the energy scale came from (kept from the file)
    provenance : dict — the file's name and its ``license``, ``citation``,
        ``source`` and ``description`` metadata where present (for the new
        model's metadata; ``caution`` and ``metrics`` describe the old weights
        and are not carried over)
    """
    from ase_fcnet.pretrained import model_file

    data = read_model_file(model_file(path))
    name, wanted = architecture_of(config), model_section(config)
    if data["architecture"] != name:
        raise ValueError(f"training.init_model {path}: it is a '{data['architecture']}' model, "
                         f"the model section a '{name}' one (leave the model section out to "
                         f"take the init model's)")
    stored = model_section(registry.config_from_dict(data["architecture"], data["model_config"]))
    diff = {k: (v, wanted[k]) for k, v in stored.items() if wanted[k] != v}
    key, part = GROWABLE.get(name, (None, None))
    grow = set(diff) == {key} and not stored[key]
    if diff and not grow:
        raise ValueError(f"training.init_model {path}: its architecture differs from the model "
                         f"section (stored vs config: {diff})")
    missing, unexpected = model.load_state_dict(data["state_dict"], strict=not grow)
    if grow and (unexpected or not all(part in "." + k for k in missing)):
        raise ValueError(f"training.init_model {path}: cannot grow it into the model section "
                         f"(missing {missing}, unexpected {unexpected})")
    registry.exact_wigner_3j(model)
    meta = data.get("metadata") or {}
    provenance = {"model": Path(path).name}
    provenance.update({k: meta[k] for k in ("description", "license", "citation", "source")
                       if meta.get(k) is not None})
    source = f"kept from {path}" + (f" ({key} added, starting as the identity)" if grow else "")
    return source, provenance
