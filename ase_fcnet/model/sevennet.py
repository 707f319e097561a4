"""Convert SevenNet checkpoints into ase_fcnet ``nequip`` models.

Needs the optional ``sevenn`` package (``pip install "ase_fcnet[sevennet]"``)
to read a checkpoint; the converted model file does not. The checkpoint is
built by sevenn itself (so its own compatibility patches for old
checkpoints apply), and the weights of that model are mapped one to one onto
a :class:`~ase_fcnet.model.nequip.NequIPNet` of the same shape.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from ase.data import chemical_symbols

from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.model.registry import build

#: Pretrained checkpoints shipped inside the sevenn wheel: our name -> sevenn's name.
PRETRAINED = {
    "sevennet-0": "7net-0",
    "sevennet-0-22may2024": "7net-0_22May2024",
    "sevennet-mf-0": "7net-mf-0",
    "sevennet-l3i5": "7net-l3i5",
}

CITATION = (
    "Y. Park, J. Kim, S. Hwang, S. Han, 'Scalable parallel algorithm for graph neural network "
    "interatomic potentials in molecular dynamics simulations', J. Chem. Theory Comput. 20, "
    "4857-4868 (2024), doi:10.1021/acs.jctc.4c00190"
)
LICENSE_NOTE = ("SevenNet weights: MIT License, Copyright (c) 2024 Yutack Park; full text in "
                "ase_fcnet/pretrained/LICENSE-SevenNet")


class ConversionError(ValueError):
    """A checkpoint that cannot be converted (missing sevenn, unsupported option, ...)."""


def _sevenn():
    try:
        import sevenn.util  # noqa: F401
        return sevenn
    except ImportError as err:
        raise ConversionError('converting a SevenNet checkpoint needs the sevenn package: '
                              'pip install "ase_fcnet[sevennet]"') from err


def checkpoint_path(name_or_path: str | os.PathLike) -> tuple[Path, str]:
    """The checkpoint file of a pretrained name (ours or sevenn's) or a path, and a label."""
    sevenn = _sevenn()
    text = str(name_or_path)
    if Path(text).is_file():
        return Path(text), Path(text).name
    key = PRETRAINED.get(text.lower(), text)
    if key in PRETRAINED.values():
        return Path(sevenn.util.pretrained_name_to_path(key)), key
    raise ConversionError(f"{text}: no such checkpoint file and not a pretrained SevenNet "
                          f"model (known: {', '.join(PRETRAINED)})")


def _check_supported(cfg: dict[str, Any]) -> None:
    problems = []
    if cfg.get("interaction_type", "nequip") != "nequip":
        problems.append(f"interaction_type {cfg.get('interaction_type')!r}")
    sc = cfg.get("self_connection_type", "linear")
    if any(t != "linear" for t in ([sc] if isinstance(sc, str) else sc)):
        problems.append(f"self_connection_type {sc!r} (only 'linear')")
    if cfg.get("use_bias_in_linear"):
        problems.append("use_bias_in_linear: True")
    if cfg.get("readout_as_fcn"):
        problems.append("readout_as_fcn: True")
    if cfg["radial_basis"]["radial_basis_name"] != "bessel":
        problems.append(f"radial basis {cfg['radial_basis']['radial_basis_name']!r}")
    if cfg["cutoff_function"]["cutoff_function_name"] not in ("poly_cut", "XPLOR"):
        problems.append(f"cutoff function {cfg['cutoff_function']['cutoff_function_name']!r}")
    if problems:
        raise ConversionError("unsupported SevenNet options: " + "; ".join(problems))


def _config(cfg: dict[str, Any], model, modality: str | None) -> NequIPConfig:
    type_map = cfg["_type_map"]
    species = [chemical_symbols[z] for z in sorted(type_map, key=type_map.get)]
    n_blocks = cfg["num_convolution_layer"]
    irreps = [str(model._modules[f"{t}_convolution"].convolution_kwargs["irreps_in1"])
              for t in range(n_blocks)]
    irreps.append(str(model._modules[f"{n_blocks - 1}_equivariant_gate"].gate.irreps_out))
    cut = cfg["cutoff_function"]
    modal_map = cfg.get("_modal_map") or {}
    modalities = [m for m in sorted(modal_map, key=modal_map.get)] if cfg.get("use_modality") else []
    if modalities:
        modality = modality or cfg.get("default_modal") or modalities[0]
        if modality not in modalities:
            raise ConversionError(f"modality {modality!r} is not one of {modalities}")
    elif modality:
        raise ConversionError(f"--modality {modality!r}: this checkpoint has no modalities")
    flags = {"embedding": "use_modal_node_embedding", "interaction_in": "use_modal_self_inter_intro",
             "interaction_out": "use_modal_self_inter_outro", "readout": "use_modal_output_block"}
    acts, gates = cfg["act_scalar"], cfg["act_gate"]
    return NequIPConfig(
        species=tuple(species), cutoff=float(cfg["cutoff"]), node_irreps=tuple(irreps),
        num_basis=int(cfg["radial_basis"]["bessel_basis_num"]),
        radial_hidden=tuple(int(n) for n in cfg["weight_nn_hidden_neurons"]),
        radial_activation=cfg["act_radial"],
        cutoff_function="xplor" if cut["cutoff_function_name"] == "XPLOR" else "polynomial",
        polynomial_p=int(cut.get("poly_cut_p_value", 6)), cutoff_on=float(cut.get("cutoff_on", 4.5)),
        lmax_edge=int(model._modules["edge_embedding"].spherical.lmax), parity=bool(cfg["is_parity"]),
        act_scalars=(acts.get("e", "silu"), acts.get("o", "tanh")),
        act_gates=(gates.get("e", "silu"), gates.get("o", "tanh")),
        denominators=tuple(float(model._modules[f"{t}_convolution"].denominator)
                           for t in range(n_blocks)),
        readout_hidden=int(model._modules["reduce_input_to_hidden"].irreps_out.dim),
        modalities=tuple(modalities), modality=modality or "",
        modal_inputs=tuple(k for k, flag in flags.items() if modalities and cfg.get(flag)),
    )


def _weight_map(n_blocks: int, n_radial: int) -> dict[str, str]:
    """Our state-dict key -> sevenn's."""
    out = {"basis.frequencies": "edge_embedding.basis_function.coeffs",
           "embedding.weight": "onehot_to_feature_x.linear.weight",
           "readout_hidden.weight": "reduce_input_to_hidden.linear.weight",
           "readout_out.weight": "reduce_hidden_to_energy.linear.weight"}
    for t in range(n_blocks):
        out[f"layers.{t}.self_connection.weight"] = f"{t}_self_connection_intro.linear.weight"
        out[f"layers.{t}.linear_in.weight"] = f"{t}_self_interaction_1.linear.weight"
        out[f"layers.{t}.linear_out.weight"] = f"{t}_self_interaction_2.linear.weight"
        out[f"layers.{t}.denominator"] = f"{t}_convolution.denominator"
        for k in range(n_radial):
            out[f"layers.{t}.radial.layer{k}.weight"] = f"{t}_convolution.weight_nn.layer{k}.weight"
    return out


def convert_sevennet(name_or_path: str | os.PathLike, modality: str | None = None,
                     ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A :class:`~ase_fcnet.model.nequip.NequIPNet` holding a SevenNet checkpoint's weights.

    Parameters
    ----------
    name_or_path : str or path-like
        A pretrained model shipped in the sevenn wheel (``sevennet-0``,
        ``sevennet-l3i5``, ``sevennet-mf-0``, or sevenn's own names such as
        ``7net-0``) or the path of a SevenNet checkpoint (e.g. a fine-tuned one).
    modality : str, optional
        For a multi-fidelity checkpoint, the modality to evaluate (default:
        the checkpoint's default modality).

    Returns
    -------
    model : NequIPNet — float64, parameters as in the checkpoint (float32 values)
    metadata : dict — provenance (sevenn version, checkpoint name and SHA-256),
        licence note and citation, to store in the model file

    Raises
    ------
    ConversionError
        sevenn missing, unknown name, or an architecture option this port does not hold.
    """
    sevenn = _sevenn()
    path, label = checkpoint_path(name_or_path)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpoint = sevenn.util.load_checkpoint(str(path))
        source = checkpoint.build_model()
    cfg = checkpoint.config
    _check_supported(cfg)
    config = _config(cfg, source, modality)
    model = build(config, dtype=torch.float64)
    theirs = source.state_dict()
    ours = model.state_dict()
    new = {}
    for key, their_key in _weight_map(len(config.node_irreps) - 1, len(config.radial_hidden) + 1).items():
        value = theirs[their_key].detach().to(torch.float64)
        if value.numel() != ours[key].numel():
            raise ConversionError(f"{label}: {their_key} has {value.numel()} numbers, "
                                  f"{key} needs {ours[key].numel()}")
        new[key] = value.reshape(ours[key].shape)
    rescale = source._modules["rescale_atomic_energy"]
    shift, scale = rescale.shift.detach().double(), rescale.scale.detach().double()
    if config.modalities:
        row = list(config.modalities).index(config.modality)
        shift = shift[row] if getattr(rescale, "use_modal_wise_shift", False) else shift
        scale = scale[row] if getattr(rescale, "use_modal_wise_scale", False) else scale
    n = len(config.species)
    new["reference_energies"] = shift.expand(n).clone() if shift.numel() == 1 else shift
    new["energy_scale"] = scale.expand(n).clone() if scale.numel() == 1 else scale
    missing = [k for k in ours if k not in new and not k.endswith(("output_mask", "gate.mul.weight"))
               and not k.endswith(".bias")]
    if missing:
        raise ConversionError(f"{label}: no SevenNet weights for {missing}")
    model.load_state_dict({**ours, **new})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    metadata = {
        "description": f"SevenNet {label} converted from the sevenn {sevenn.__version__} checkpoint"
                       + (f", modality {config.modality}" if config.modalities else ""),
        "source": {"package": f"sevenn {sevenn.__version__}", "checkpoint": label,
                   "sha256": digest, "sevenn_config_version": str(cfg.get("version", "?"))},
        "license": LICENSE_NOTE,
        "citation": CITATION,
    }
    return model, metadata
