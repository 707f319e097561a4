"""Turn a phonopy yaml (plus FORCE_SETS / FORCE_CONSTANTS beside it) into samples.

The yaml is parsed and the supercell built by :mod:`ase_fcnet.phonopy_bridge`
(phonopy's own ``PhonopyYaml`` and ``phonopy.Phonopy``, exactly as ``phonopy.load`` does), so atom order, dataset
indices and ``primitive.p2s_map`` are phonopy's. ``phonopy.load`` itself is not
called because it also picks up FORCE_SETS, FORCE_CONSTANTS and BORN from the
*current working directory*, which would attach unrelated data to the yaml;
here only files beside the yaml or passed explicitly are read. Symmetry is
not searched (``is_symmetry=False``): it does not change the supercell or
``p2s_map`` and costs seconds for large supercells.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from phonopy.interface.calculator import get_force_constant_conversion_factor

from ase_fcnet.phonopy_bridge import (
    displacement_vectors,
    files_beside,
    has_forces,
    phonopy_from_yaml,
    phonopy_to_atoms,
    read_phonopy_yaml,
)

from .phonopy_files import calculator_units, read_force_constants, read_force_sets
from .sample import Sample

__all__ = ["COMPRESSION_SUFFIXES", "YAML_NAMES", "read_phonopy"]

#: Standard phonopy yaml names, in the order a folder is searched.
YAML_NAMES = ("phonopy_params.yaml", "phonopy.yaml", "phonopy_disp.yaml")
#: Compression suffixes phonopy's yaml loader understands.
COMPRESSION_SUFFIXES = ("", ".xz", ".lzma", ".gz", ".bz2")


def _n_snapshots(dataset: dict | None) -> int:
    if not dataset:
        return 0
    if "first_atoms" in dataset:
        return len(dataset["first_atoms"])
    return len(dataset.get("displacements", ()))


def _dataset_samples(
    dataset: dict, base: Atoms, source: str, scale: tuple[float, float, float]
) -> list[Sample]:
    """One Sample per displaced supercell; ``scale`` = (to Å, to eV/Å, to eV)."""
    to_A, to_eVA, to_eV = scale
    n = len(base)
    samples = []
    if "first_atoms" in dataset:
        for k, d in enumerate(dataset["first_atoms"]):
            number = int(d["number"])
            disp = np.asarray(d["displacement"], dtype=np.float64)
            if not 0 <= number < n or disp.shape != (3,):
                raise ValueError(
                    f"{source}#{k}: displacement of atom {number} with shape {disp.shape} "
                    f"does not fit a supercell of {n} atoms"
                )
            atoms = base.copy()
            atoms.positions[number] += disp * to_A
            energy = d.get("supercell_energy")
            samples.append(
                Sample(
                    atoms=atoms,
                    energy=None if energy is None else float(energy) * to_eV,
                    forces=np.asarray(d["forces"], dtype=np.float64) * to_eVA,
                    source=f"{source}#{k}",
                )
            )
        return samples
    disps = np.asarray(dataset["displacements"], dtype=np.float64)
    forces = np.asarray(dataset["forces"], dtype=np.float64)
    if disps.ndim != 3 or disps.shape[1:] != (n, 3) or forces.shape != disps.shape:
        raise ValueError(
            f"{source}: type-2 dataset has displacements {disps.shape} and forces "
            f"{forces.shape}, expected (n, {n}, 3) for a supercell of {n} atoms"
        )
    energies = dataset.get("supercell_energies")
    if energies is not None:
        energies = np.asarray(energies, dtype=np.float64).ravel()
        if len(energies) != len(disps):
            raise ValueError(
                f"{source}: {len(energies)} supercell_energies for {len(disps)} displaced supercells"
            )
    for k in range(len(disps)):
        atoms = base.copy()
        atoms.positions += disps[k] * to_A
        samples.append(
            Sample(
                atoms=atoms,
                energy=None if energies is None else float(energies[k]) * to_eV,
                forces=forces[k] * to_eVA,
                source=f"{source}#{k}",
            )
        )
    return samples


def _read_labels(path: Path, n_atoms: int) -> dict[str, Any] | None:
    """Energy, forces and stress of the undisplaced supercell from ``labels.json`` beside it.

    ``labels.json`` (written by ``fcnet data generate`` and the teacher) holds
    ``energy`` (eV), ``forces`` ((N, 3), eV/Å) and ``stress`` ((6,), eV/Å³, ASE
    Voigt order and sign) of the yaml's supercell; any of them may be null.
    """
    file = path.parent / "labels.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        out = {key: data.get(key) for key in ("energy", "forces", "stress")}
    except (ValueError, AttributeError) as err:
        raise ValueError(f"{file}: not a labels file ({err})") from None
    if out["forces"] is not None:
        out["forces"] = np.asarray(out["forces"], dtype=np.float64)
        if out["forces"].shape != (n_atoms, 3):
            raise ValueError(f"{file}: forces have shape {out['forces'].shape}, but the "
                             f"supercell of {path.name} has {n_atoms} atoms")
    if out["stress"] is not None:
        out["stress"] = np.asarray(out["stress"], dtype=np.float64)
    if out["energy"] is not None:
        out["energy"] = float(out["energy"])
    return out


def read_phonopy(
    path: str | os.PathLike,
    force_sets: str | os.PathLike | None = None,
    force_constants: str | os.PathLike | None = None,
) -> list[Sample]:
    """Read a phonopy yaml and the data beside it as training samples.

    Parameters
    ----------
    path : str or os.PathLike
        ``phonopy_params.yaml``, ``phonopy.yaml``, ``phonopy_disp.yaml`` or any
        yaml in that format, optionally ``.xz``/``.lzma``/``.gz``/``.bz2``
        compressed.
    force_sets : str or os.PathLike, optional
        FORCE_SETS file supplying the displacements and forces (overrides the
        yaml's). Default: the yaml's forces, else ``FORCE_SETS`` beside it.
    force_constants : str or os.PathLike, optional
        FORCE_CONSTANTS or ``*.hdf5`` file (overrides force constants in the
        yaml). Default: the yaml's, else ``FORCE_CONSTANTS`` or
        ``force_constants.hdf5`` beside it.

    Returns
    -------
    list of Sample
        One sample per displaced supercell (type-1 or type-2 dataset; forces
        (N, 3) eV/Å, energy in eV when the yaml stores ``supercell_energy`` /
        ``supercell_energies``; source ``<file>#<index>``), followed by one
        sample of the undisplaced supercell with its force constants
        ((M, N, 3, 3) eV/Å², ``fc_atoms`` = ``primitive.p2s_map`` when compact,
        ``arange(N)`` when full) if any are found, and with the energy, forces
        and stress in a ``labels.json`` beside the yaml (see
        :func:`_read_labels`) when there is one. Values in other calculators'
        units are converted to eV and Å.

    Raises
    ------
    FileNotFoundError
        If ``path`` or an explicitly given file does not exist.
    ValueError
        Unreadable yaml; a displacement dataset with no forces (and no force
        constants); neither a dataset nor force constants; atom counts that
        disagree between the yaml and FORCE_SETS / FORCE_CONSTANTS; malformed
        files; non-finite values. Messages name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    for extra in (force_sets, force_constants):
        if extra is not None and not Path(extra).is_file():
            raise FileNotFoundError(f"{extra}: no such file (given for {path})")
    ph_yaml = read_phonopy_yaml(path)
    phonon = phonopy_from_yaml(ph_yaml, path)
    units = calculator_units(ph_yaml.calculator, path)
    scale = (units.distance_to_A, units.force_to_eVperA, units.energy_to_eV)
    base = phonopy_to_atoms(phonon.supercell, units.distance_to_A)
    beside = files_beside(path, ph_yaml)
    n_atoms = len(base)
    p2s_map = np.asarray(phonon.primitive.p2s_map, dtype=np.int64)

    fc_sample = None
    fc_file = Path(force_constants) if force_constants is not None else beside["force_constants"]
    if fc_file is not None:
        fc_atoms, fc = read_force_constants(
            fc_file, n_atoms, p2s_map, calculator=ph_yaml.calculator, supercell_source=path
        )
        fc_sample = Sample(base.copy(), fc_atoms=fc_atoms, force_constants=fc, source=str(fc_file))
    elif ph_yaml.force_constants is not None:
        fc = np.asarray(ph_yaml.force_constants, dtype=np.float64)
        fc = fc * get_force_constant_conversion_factor(units.force_constants_unit, None)
        if fc.ndim != 4 or fc.shape[1] != n_atoms:
            raise ValueError(
                f"{path}: force_constants have shape {fc.shape}, but the supercell has {n_atoms} atoms"
            )
        if fc.shape[0] == n_atoms:
            fc_atoms = np.arange(n_atoms, dtype=np.int64)
        elif fc.shape[0] == len(p2s_map):
            fc_atoms = p2s_map
        else:
            raise ValueError(
                f"{path}: force_constants have {fc.shape[0]} rows; expected {n_atoms} (full) or "
                f"{len(p2s_map)} (compact, primitive cell atoms)"
            )
        fc_sample = Sample(base.copy(), fc_atoms=fc_atoms, force_constants=fc, source=str(path))

    yaml_dataset = ph_yaml.dataset
    fs_file = Path(force_sets) if force_sets is not None else beside["force_sets"]
    samples: list[Sample] = []
    if fs_file is not None:
        dataset = read_force_sets(
            fs_file, n_atoms, calculator=ph_yaml.calculator, supercell_source=path
        )
        if not _n_snapshots(dataset):
            raise ValueError(f"{fs_file}: FORCE_SETS holds no displaced supercells")
        if _n_snapshots(yaml_dataset):
            yaml_disps = displacement_vectors(yaml_dataset, n_atoms) * units.distance_to_A
            fs_disps = displacement_vectors(dataset, n_atoms)
            same_count = len(fs_disps) == len(yaml_disps) or (
                "displacements" in dataset and len(fs_disps) < len(yaml_disps)
            )
            if not same_count or not np.allclose(fs_disps, yaml_disps[: len(fs_disps)], atol=1e-6):
                warnings.warn(
                    f"Displacements in {fs_file} differ from those in {path}; "
                    f"those in {fs_file} are used.",
                    UserWarning,
                    stacklevel=2,
                )
        samples = _dataset_samples(dataset, base, str(fs_file), (1.0, 1.0, 1.0))
    elif has_forces(yaml_dataset):
        samples = _dataset_samples(yaml_dataset, base, str(path), scale)
    elif _n_snapshots(yaml_dataset):
        if fc_sample is None:
            raise ValueError(
                f"{path}: displacement dataset has no forces (no FORCE_SETS beside it)"
            )
        warnings.warn(
            f"{path}: displacement dataset has no forces (no FORCE_SETS beside it); "
            f"only the force constants from {fc_sample.source} are used.",
            UserWarning,
            stacklevel=2,
        )
    labels = _read_labels(path, n_atoms)
    if labels is not None:  # energy, forces, stress of the undisplaced supercell
        if fc_sample is not None:
            labels.update(fc_atoms=fc_sample.fc_atoms, force_constants=fc_sample.force_constants)
        fc_sample = Sample(base.copy(), **labels,
                           source=str(fc_sample.source if fc_sample is not None else path))
    if fc_sample is not None:
        samples.append(fc_sample)
    if not samples:
        raise ValueError(
            f"{path}: holds neither a displacement dataset with forces nor force constants "
            f"(and no FORCE_SETS / FORCE_CONSTANTS / force_constants.hdf5 beside it)"
        )
    return samples
