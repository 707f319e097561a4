"""Errors of a trained model on labelled samples, and phonon frequencies against phonopy data.

Units: energies meV/atom, forces eV/Å, stress eV/Å³, force constants eV/Å²,
frequencies THz.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ase_fcnet.data import load_dataset
from ase_fcnet.data.sample import Sample
from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.phonopy_bridge import (
    atoms_to_phonopy,
    files_beside,
    has_forces,
    phonopy_from_yaml,
    phonopy_to_atoms,
    read_phonopy_yaml,
    rows_to_force_constants,
    unit_vectors,
)
from ase_fcnet.model import (
    energy_forces_stress,
    graph_hessian_vector_products,
    load_model,
)

#: Default q-point mesh of :func:`frequency_errors`.
DEFAULT_MESH = (8, 8, 8)
#: Lowest frequency (THz, as a positive number) below which a mode counts as
#: imaginary when the model's and the reference's spectra are compared.
SPURIOUS_IMAGINARY_THZ = 0.1


def _as_model(model: torch.nn.Module | str | os.PathLike) -> torch.nn.Module:
    """A model of any registered architecture, or one loaded from a file / bundled name."""
    if isinstance(model, torch.nn.Module):
        return model
    from ase_fcnet.pretrained import model_file

    return load_model(model_file(model))


def _mae_rmse(errors: list[np.ndarray], name: str, unit: str, scale: float = 1.0) -> dict:
    if not errors:
        return {}
    flat = np.concatenate([np.ravel(e) for e in errors]) * scale
    return {f"{name}_mae_{unit}": float(np.mean(np.abs(flat))),
            f"{name}_rmse_{unit}": float(np.sqrt(np.mean(flat ** 2)))}


def force_constant_rows(model: torch.nn.Module, graph, fc_atoms: np.ndarray, n_atoms: int) -> np.ndarray:
    """Model rows Φ[fc_atoms], shape (M, N, 3, 3), eV/Å²."""
    p = next(model.parameters())
    vectors = torch.as_tensor(unit_vectors(fc_atoms, n_atoms), dtype=p.dtype, device=p.device)
    return rows_to_force_constants(graph_hessian_vector_products(model, graph, vectors).cpu().numpy())


def evaluate(model: torch.nn.Module | str | os.PathLike, samples: Sequence[Sample]) -> dict[str, Any]:
    """Mean absolute and root-mean-square errors of a model on labelled samples.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture) or a model file / bundled name
    samples : sequence of Sample
        Each label present is compared: energies (per atom), force
        components, stress components and every labelled force-constant entry
        (all rows of ``fc_atoms``, by Hessian-vector products).

    Returns
    -------
    dict
        ``n_structures`` and ``n_energy``/``n_forces``/``n_stress``/``n_fc``
        (structures with each label), and for each label present
        ``energy_mae_meV_per_atom``, ``energy_rmse_meV_per_atom``,
        ``forces_mae_eV_per_A``, ``forces_rmse_eV_per_A``,
        ``stress_mae_eV_per_A3``, ``stress_rmse_eV_per_A3``,
        ``fc_mae_eV_per_A2``, ``fc_rmse_eV_per_A2``.
    """
    model = _as_model(model)
    p = next(model.parameters())
    errs: dict[str, list[np.ndarray]] = {"energy": [], "forces": [], "stress": [], "fc": []}
    for s in samples:
        graph = atoms_to_graph(s.atoms, model.cutoff, model.species, dtype=p.dtype, device=p.device)
        positions = graph.positions.detach().requires_grad_(True)
        energy = model.energy(graph.with_positions(positions))
        forces = -torch.autograd.grad(energy.sum(), positions)[0]
        if s.energy is not None:
            errs["energy"].append(np.array([(float(energy[0].detach()) - s.energy) / s.n_atoms]))
        if s.forces is not None:
            errs["forces"].append(forces.detach().cpu().numpy() - s.forces)
        if s.stress is not None:
            stress = energy_forces_stress(model, graph, forces=False, stress=True)["stress"]
            errs["stress"].append(stress[0].detach().cpu().numpy() - s.stress)
        if s.force_constants is not None:
            errs["fc"].append(force_constant_rows(model, graph, s.fc_atoms, s.n_atoms) - s.force_constants)
    out: dict[str, Any] = {"n_structures": len(samples), "n_energy": len(errs["energy"]),
                           "n_forces": len(errs["forces"]), "n_stress": len(errs["stress"]),
                           "n_fc": len(errs["fc"])}
    out.update(_mae_rmse(errs["energy"], "energy", "meV_per_atom", 1000.0))
    out.update(_mae_rmse(errs["forces"], "forces", "eV_per_A"))
    out.update(_mae_rmse(errs["stress"], "stress", "eV_per_A3"))
    out.update(_mae_rmse(errs["fc"], "fc", "eV_per_A2"))
    return out


def reference_phonopy(path: str | os.PathLike):
    """Phonopy object with the reference force constants of a phonopy yaml.

    Force constants come from, in this order: the yaml itself,
    ``FORCE_CONSTANTS`` / ``force_constants.hdf5`` beside it, the yaml's
    displacement dataset with forces, ``FORCE_SETS`` beside it
    (:func:`ase_fcnet.phonopy_bridge.files_beside`). The steps are those of
    ``phonopy.load`` (symmetry on, compact force constants, produced from
    forces with phonopy's symmetrisation), except that files in the current
    directory are never used: ``phonopy.load`` would take a FORCE_CONSTANTS
    or FORCE_SETS found there over the yaml's own forces.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; unreadable yaml; no force constants or forces.
    """
    from phonopy.cui import load_helper

    ph_yaml = read_phonopy_yaml(path)
    beside = files_beside(path, ph_yaml)
    has_fc = ph_yaml.force_constants is not None or beside["force_constants"] is not None
    if not has_fc and not has_forces(ph_yaml.dataset) and beside["force_sets"] is None:
        raise ValueError(f"{path}: no force constants or forces in it or beside it "
                         f"(FORCE_CONSTANTS, force_constants.hdf5, FORCE_SETS)")
    phonon = phonopy_from_yaml(ph_yaml, path, is_symmetry=True)
    if has_fc:
        phonon.force_constants = load_helper.select_and_extract_force_constants(
            phonon, path, force_constants=ph_yaml.force_constants,
            force_constants_filename=beside["force_constants"], is_compact_fc=True)
    else:
        phonon.dataset = load_helper.select_and_load_dataset(
            phonon, yaml_dataset=ph_yaml.dataset, yaml_filename=path,
            force_sets_filename=beside["force_sets"])
        load_helper.produce_force_constants(phonon, symmetrize_fc=True, is_compact_fc=True,
                                            use_symfc_projector=True)
    if phonon.force_constants is None:
        raise ValueError(f"{path}: phonopy produced no force constants")
    return phonon, ph_yaml.calculator


def model_phonopy(model: torch.nn.Module, reference, calculator: str | None, source: Path):
    """Phonopy with the same cells as ``reference`` (in Å) and the model's compact FC.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture)
    reference : phonopy.Phonopy — e.g. from :func:`reference_phonopy`
    calculator : str or None — the reference's phonopy calculator name (its units)
    source : Path — the reference's file (named in errors)
    """
    from phonopy import Phonopy

    from ase_fcnet.calculator import FCNetCalculator
    from ase_fcnet.data.phonopy_files import calculator_units
    from ase_fcnet.phonons.symmetry import fast_phonopy_symmetry

    to_a = calculator_units(calculator, source).distance_to_A
    unit = phonopy_to_atoms(reference.unitcell)
    unit.set_cell(unit.cell[:] * to_a, scale_atoms=True)
    with fast_phonopy_symmetry():
        phonon = Phonopy(atoms_to_phonopy(unit), supercell_matrix=reference.supercell_matrix,
                         primitive_matrix=reference.primitive_matrix, log_level=0)
    p = next(model.parameters())
    calc = FCNetCalculator(copy.deepcopy(model), device=p.device, dtype=p.dtype)
    p2s = np.asarray(phonon.primitive.p2s_map)
    phonon.force_constants = calc.force_constant_rows(phonopy_to_atoms(phonon.supercell), p2s)
    return phonon


def frequency_errors(model: torch.nn.Module | str | os.PathLike, phonopy_yaml: str | os.PathLike,
                     mesh: Sequence[int] = DEFAULT_MESH) -> dict[str, Any]:
    """Phonon frequencies of the model against a phonopy dataset's force constants.

    The model's force constants are the exact Hessian rows of the dataset's
    supercell for the primitive cell's atoms (``p2s_map``), with no
    symmetrisation; both phonopy objects share unit cell, supercell and
    primitive matrices and masses.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture) or a model file / bundled name
    phonopy_yaml : path — phonopy yaml with (or beside) reference force constants or forces
    mesh : 3 ints — q-point mesh (phonopy's ``run_mesh``, weights of the
        irreducible points used)

    Returns
    -------
    dict
        ``commensurate_mae_THz``, ``commensurate_max_THz`` (at the q-points
        commensurate with the supercell, where the supercell force constants
        are exact), ``mesh_mae_THz``, ``mesh_max_THz``, ``n_commensurate``,
        ``mesh``, ``n_bands``, and the lowest mesh frequency of the model and of
        the reference, ``mesh_min_THz`` and ``reference_mesh_min_THz``
        (negative: imaginary).
    """
    from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

    model = _as_model(model)
    reference, calculator = reference_phonopy(phonopy_yaml)
    phonon = model_phonopy(model, reference, calculator, Path(phonopy_yaml))
    smat = np.rint(np.linalg.inv(reference.primitive.primitive_matrix)).astype(np.int64)
    qpoints = get_commensurate_points(smat)
    freqs = []
    for ph in (reference, phonon):
        ph.run_qpoints(qpoints)
        freqs.append(np.asarray(ph.qpoints.frequencies))
    comm = np.abs(freqs[1] - freqs[0])
    meshes = []
    for ph in (reference, phonon):
        ph.run_mesh(list(mesh), is_gamma_center=True)
        meshes.append((np.asarray(ph.mesh.weights, dtype=float), np.asarray(ph.mesh.frequencies)))
    diff = np.abs(meshes[1][1] - meshes[0][1])
    return {
        "commensurate_mae_THz": float(comm.mean()), "commensurate_max_THz": float(comm.max()),
        "mesh_mae_THz": mesh_mae(meshes[0][0], meshes[0][1], meshes[1][1]),
        "mesh_max_THz": float(diff.max()), "n_commensurate": int(len(qpoints)),
        "mesh": [int(m) for m in mesh], "n_bands": int(diff.shape[1]),
        "mesh_min_THz": float(meshes[1][1].min()),
        "reference_mesh_min_THz": float(meshes[0][1].min()),
    }


def mesh_mae(weights: np.ndarray, reference: np.ndarray, other: np.ndarray) -> float:
    """Frequency MAE over a phonopy mesh, THz: irreducible q-points weighted by ``weights``.

    Parameters
    ----------
    weights : ndarray, shape (Q,) — phonopy's mesh weights
    reference, other : ndarray, shape (Q, B), THz — frequencies at the same q-points
    """
    diff = np.abs(np.asarray(other) - np.asarray(reference))
    weights = np.asarray(weights, dtype=float)
    return float((weights[:, None] * diff).sum() / (weights.sum() * diff.shape[1]))


def spurious_imaginary(errors: dict[str, Any], tolerance: float = SPURIOUS_IMAGINARY_THZ) -> bool:
    """Whether the model has an imaginary mode (below ``-tolerance``, THz) that the reference lacks.

    Parameters
    ----------
    errors : dict — one result of :func:`frequency_errors`
    tolerance : float, THz
    """
    return (errors.get("mesh_min_THz", 0.0) < -tolerance
            and errors.get("reference_mesh_min_THz", 0.0) >= -tolerance)


def summarize_frequency_errors(per_file: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Aggregate :func:`frequency_errors` over several datasets.

    Returns
    -------
    dict
        ``mean_commensurate_mae_THz`` and ``mean_mesh_mae_THz`` (means over the
        datasets of their MAEs), ``worst_commensurate_max_THz`` and
        ``worst_mesh_max_THz`` (largest single error), ``n_datasets``, and
        ``n_spurious_imaginary``: datasets where :func:`spurious_imaginary`
        holds (when the lowest frequencies were recorded).
    """
    if not per_file:
        return {"n_datasets": 0}
    values = list(per_file.values())
    out: dict[str, float] = {"n_datasets": len(values)}
    for kind in ("commensurate", "mesh"):
        out[f"mean_{kind}_mae_THz"] = float(np.mean([v[f"{kind}_mae_THz"] for v in values]))
        out[f"worst_{kind}_max_THz"] = float(np.max([v[f"{kind}_max_THz"] for v in values]))
    if all("mesh_min_THz" in v for v in values):
        out["n_spurious_imaginary"] = int(sum(spurious_imaginary(v) for v in values))
    return out


def frequency_errors_per_structure(model: torch.nn.Module | str | os.PathLike, folder: str | os.PathLike,
                                   mesh: Sequence[int] = DEFAULT_MESH) -> dict[str, dict[str, Any]]:
    """:func:`frequency_errors` for every ``folder/*/phonopy_params.yaml``.

    Returns
    -------
    dict
        Structure (sub-folder name, sorted) -> :func:`frequency_errors`.
    """
    model = _as_model(model)
    return {yaml.parent.name: frequency_errors(model, yaml, mesh)
            for yaml in sorted(Path(folder).glob("*/phonopy_params.yaml"))}


def evaluate_folder(model: torch.nn.Module | str | os.PathLike, folder: str | os.PathLike,
                    mesh: Sequence[int] = DEFAULT_MESH) -> dict[str, Any]:
    """Label errors and phonon-frequency errors on every dataset in a folder.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture) or a model file / bundled name
    folder : path — holds one sub-folder per structure with a ``phonopy_params.yaml``
        (the layout ``fcnet data generate`` writes)
    mesh : 3 ints — q-point mesh of :func:`frequency_errors`

    Returns
    -------
    dict
        The scalar entries of :func:`evaluate` over all samples of the folder,
        :func:`summarize_frequency_errors` over its structures,
        ``n_structures``, and ``per_structure``: structure (sub-folder name) →
        :func:`frequency_errors`.
    """
    model = _as_model(model)
    out = {k: v for k, v in evaluate(model, load_dataset([Path(folder)])).items()
           if not isinstance(v, dict)}
    per = frequency_errors_per_structure(model, folder, mesh)
    out.update(summarize_frequency_errors(per))
    out["n_structures"] = len(per)
    out["per_structure"] = per
    return out
