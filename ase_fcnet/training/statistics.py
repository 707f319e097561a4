"""Data statistics set on the model before training: energy scale and reference energies.

A model's energy is ``E = Σ_i s · ε_i + Σ_i e_ref(Z_i)`` with the learned
per-atom ``ε``, the scale ``s = model.energy_scale`` (one number for fcnet,
per species for nequip) and the per-species reference energies
``e_ref = model.reference_energies``. Before training,
``s`` is set from the data's RMS force (at least 1 eV; see
:func:`choose_energy_scale`), and then ``e_ref`` is fitted by least squares to
what the scaled, untrained model leaves of the energies.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ase_fcnet.graph import species_indices
from ase_fcnet.training.dataset import StructureSet

#: Smallest scale ``auto`` chooses, eV: phonopy displacement datasets have RMS
#: forces of a few meV/Å, which say nothing about the energy's own scale.
MIN_AUTO_SCALE = 1.0


def composition_matrix(data: StructureSet, indices: Sequence[int]) -> np.ndarray:
    """Atoms of each species in each structure.

    Returns
    -------
    ndarray, shape (S, n_species), int
    """
    out = np.zeros((len(indices), len(data.species)), dtype=np.int64)
    for k, i in enumerate(indices):
        idx = species_indices(data.samples[int(i)].atoms.numbers, data.species)
        out[k] = np.bincount(idx, minlength=len(data.species))
    return out


def fit_reference_energies(composition: np.ndarray, energies: np.ndarray,
                           baseline: np.ndarray | None = None) -> np.ndarray:
    """Per-species energies e_Z minimising ``Σ_s (E_s − B_s − Σ_Z n_sZ e_Z)²``.

    Species absent from ``composition``, and directions the compositions do
    not determine (e.g. a single composition of a binary), get the
    minimum-norm solution; with no structures, zeros.

    Parameters
    ----------
    composition : ndarray, shape (S, n_species) — atoms of each species
    energies : ndarray, shape (S,), eV — reference total energies E_s
    baseline : ndarray, shape (S,), eV, optional — energies B_s already
        predicted without reference energies (default 0)

    Returns
    -------
    ndarray, shape (n_species,), eV/atom
    """
    composition = np.asarray(composition, dtype=float)
    if composition.shape[0] == 0:
        return np.zeros(composition.shape[1])
    target = np.asarray(energies, dtype=float)
    if baseline is not None:
        target = target - np.asarray(baseline, dtype=float)
    return np.linalg.lstsq(composition, target, rcond=None)[0]


def choose_energy_scale(data: StructureSet, indices: Sequence[int]) -> tuple[float, str]:
    """``model.energy_scale`` for ``training.energy_scale: auto``, eV.

    The RMS of the training structures' force components times 1 Å (the
    convention of NequIP), but at least :data:`MIN_AUTO_SCALE`. The learned
    per-atom ``ε`` is then of order one for typical training geometries.

    The rule does not look at the untrained model. An earlier rule matched the
    untrained model's on-site force constants to the data's. It chose 3378 eV
    for the Stillinger-Weber Si example, 10688 eV for Tersoff SiC and 34633 eV
    for the 64-element default model, because an untrained FCNet is almost flat
    in the positions. With those scales the energies were off by eV per atom
    for most of the training run.

    Parameters
    ----------
    data : StructureSet
    indices : sequence of int — training structures

    Returns
    -------
    scale : float, eV per unit of the learned ε
    source : str — how it was chosen
    """
    forces = [np.ravel(data.samples[int(i)].forces) for i in indices if data.has(i, "forces")]
    flat = np.concatenate(forces) if forces else np.zeros(0)
    rms = float(np.sqrt(np.mean(flat ** 2))) if flat.size else 0.0
    if rms >= MIN_AUTO_SCALE:
        return rms, f"RMS force of the training data ({rms:.3g} eV/Å) × 1 Å"
    return MIN_AUTO_SCALE, (f"minimum {MIN_AUTO_SCALE:g} eV (RMS force of the training data "
                            f"{rms:.3g} eV/Å × 1 Å is smaller)")


def model_energies(model: torch.nn.Module, data: StructureSet,
                   indices: Sequence[int]) -> np.ndarray:
    """Total energies the model predicts, ndarray shape (S,), eV."""
    with torch.no_grad():
        return np.array([float(model.energy(data.graph(i))[0]) for i in indices])


def fit_statistics(model: torch.nn.Module, data: StructureSet, indices: Sequence[int],
                   energy_scale: float | str = "auto") -> str:
    """Set ``model.energy_scale``, then fit ``model.reference_energies``.

    Parameters
    ----------
    model : torch.nn.Module — untrained
    data : StructureSet
    indices : sequence of int — training structures (the only ones used)
    energy_scale : "auto" or float
        ``auto``: :func:`choose_energy_scale`; a number is used as is (eV).

    Returns
    -------
    str — where the scale came from
    """
    with torch.no_grad():
        model.energy_scale.fill_(1.0)
        model.reference_energies.zero_()
    if energy_scale == "auto":
        energy_scale, source = choose_energy_scale(data, indices)
    else:
        source = "config"
    with torch.no_grad():
        model.energy_scale.fill_(float(energy_scale))
    refit_reference_energies(model, data, indices)
    return source


def refit_reference_energies(model: torch.nn.Module, data: StructureSet,
                             indices: Sequence[int], species: Sequence[str] | None = None) -> None:
    """Least-squares correction of the per-species reference energies to the data's energies.

    Used before training and when fine-tuning on data with another energy zero
    (e.g. DFT after a classical potential). The change Δ of the reference
    energies is the minimum-norm least-squares solution of
    ``Σ_Z n_sZ Δ_Z = E_s − E_model(s)`` over the training structures with
    energies: species absent from them keep their values (a universal model
    fine-tuned on Si keeps its other 88 shifts), and directions the
    compositions leave open (e.g. Na vs Cl with one NaCl composition) change
    as little as possible. For an untrained model with zero reference
    energies this is the plain least-squares fit. Without any energies in
    the training structures nothing changes. ``species`` (element symbols),
    when given, limits the correction to those species' reference energies
    (``training.train_species``).
    """
    with_e = [i for i in indices if data.has(i, "energy")]
    if not with_e:
        return
    energies = np.array([data.samples[int(i)].energy for i in with_e])
    composition = composition_matrix(data, with_e)
    if species is not None:
        others = [k for k, el in enumerate(model.species) if el not in set(species)]
        composition[:, others] = 0.0
    delta = fit_reference_energies(composition, energies, model_energies(model, data, with_e))
    with torch.no_grad():
        model.reference_energies.add_(torch.as_tensor(delta).to(model.reference_energies))
