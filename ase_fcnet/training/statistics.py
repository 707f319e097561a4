"""Data statistics set on the model before training: energy scale and reference energies.

FCNet's energy is ``E = s · Σ_i ε_i + Σ_i e_ref(Z_i)`` with the learned
per-atom ``ε``, the scale ``s = model.energy_scale`` and the per-species
reference energies ``e_ref = model.reference_energies``. Before training,
``s`` is set so that the untrained model's curvatures (or forces, or energy
spread) have the magnitude of the data's, and then ``e_ref`` is fitted by
least squares to what the scaled, untrained model leaves of the energies.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ase_fcnet.graph import species_indices
from ase_fcnet.training.dataset import StructureSet
from ase_fcnet.training.forward import predict

#: Structures (and labelled atoms per structure) probed to measure the model's scale.
SCALE_STRUCTURES = 8
SCALE_ATOMS = 2


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


def _rms(values: list[np.ndarray]) -> float:
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
    return float(np.sqrt(np.mean(flat ** 2))) if flat.size else 0.0


def _onsite(model, data: StructureSet, indices: Sequence[int]) -> tuple[float, float]:
    """RMS of Φ_ii^αα: data and untrained model, on a few labelled atoms."""
    ref, pred = [], []
    for i in indices:
        s = data.samples[int(i)]
        rows = np.arange(min(SCALE_ATOMS, len(s.fc_atoms)))
        atoms = s.fc_atoms[rows]
        ref.append(s.force_constants[rows, atoms][:, [0, 1, 2], [0, 1, 2]])
        vectors = torch.zeros(3 * len(rows), s.n_atoms, 3, dtype=data.dtype, device=data.device)
        for k, a in enumerate(atoms):
            vectors[3 * k: 3 * k + 3, a] = torch.eye(3, dtype=data.dtype, device=data.device)
        out = predict(model, data.graph(i), forces=False, vectors=vectors, create_graph=False)
        hvp = out["hvp"].detach().reshape(len(rows), 3, s.n_atoms, 3)
        pred.append(np.stack([hvp[k, [0, 1, 2], a, [0, 1, 2]].cpu().numpy()
                              for k, a in enumerate(atoms)]))
    return _rms(ref), _rms(pred)


def choose_energy_scale(model: torch.nn.Module, data: StructureSet,
                        indices: Sequence[int]) -> tuple[float, str]:
    """``model.energy_scale`` matching the untrained model to the data's magnitudes.

    With the scale at 1, the first statistic available on (up to
    :data:`SCALE_STRUCTURES` of) the training structures is measured for both
    the data and the untrained model, and the scale is their ratio:

    1. RMS of the diagonal on-site force constants ``Φ[i, i, α, α]``, eV/Å²
       (:data:`SCALE_ATOMS` labelled atoms per structure);
    2. RMS of the force components, eV/Å;
    3. standard deviation of the energy per atom over structures, eV/atom.

    Parameters
    ----------
    model : FCNet — untrained, ``energy_scale`` 1
    data : StructureSet
    indices : sequence of int — training structures

    Returns
    -------
    scale : float, eV per unit of the learned ε (1.0 when nothing can be measured)
    source : str — which statistic gave it
    """
    fc = [i for i in indices if data.has(i, "force_constants")][:SCALE_STRUCTURES]
    if fc:
        ref, pred = _onsite(model, data, fc)
        if ref > 0 and pred > 0:
            return ref / pred, "on-site force constants (data RMS / untrained model RMS)"
    labelled = [i for i in indices if data.has(i, "forces")][:SCALE_STRUCTURES]
    if labelled:
        ref = _rms([data.samples[int(i)].forces for i in labelled])
        pred = _rms([predict(model, data.graph(i), create_graph=False)["forces"].detach()
                     .cpu().numpy() for i in labelled])
        if ref > 0 and pred > 0:
            return ref / pred, "forces (data RMS / untrained model RMS)"
    with_e = [i for i in indices if data.has(i, "energy")][:SCALE_STRUCTURES]
    if len(with_e) > 1:
        n = np.array([data.samples[int(i)].n_atoms for i in with_e])
        ref = np.std([data.samples[int(i)].energy for i in with_e] / n)
        pred = np.std(model_energies(model, data, with_e) / n)
        if ref > 0 and pred > 0:
            return float(ref / pred), "energy per atom (data std / untrained model std)"
    return 1.0, "default 1 (no labels to take a scale from)"


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
    model : FCNet — untrained
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
        energy_scale, source = choose_energy_scale(model, data, indices)
    else:
        source = "config"
    with torch.no_grad():
        model.energy_scale.fill_(float(energy_scale))
    refit_reference_energies(model, data, indices)
    return source


def refit_reference_energies(model: torch.nn.Module, data: StructureSet,
                             indices: Sequence[int]) -> None:
    """Least-squares per-species reference energies for what the model leaves of the energies.

    Used before training and when fine-tuning on data with another energy zero
    (e.g. DFT after a classical potential). Without any energies in the
    training structures the current reference energies are kept.
    """
    with torch.no_grad():
        current = model.reference_energies.detach().clone()
        model.reference_energies.zero_()
    with_e = [i for i in indices if data.has(i, "energy")]
    energies = np.array([data.samples[int(i)].energy for i in with_e])
    if not with_e:
        with torch.no_grad():
            model.reference_energies.copy_(current)
        return
    ref = fit_reference_energies(composition_matrix(data, with_e), energies,
                                 model_energies(model, data, with_e))
    with torch.no_grad():
        model.reference_energies.copy_(torch.as_tensor(ref))
