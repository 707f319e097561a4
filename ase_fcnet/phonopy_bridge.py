"""The one place where ASE and phonopy objects, and their array layouts, meet.

* :func:`atoms_to_phonopy` / :func:`phonopy_to_atoms`: structures both ways,
  keeping the masses (amu);
* :func:`displacement_vectors`: a phonopy displacement dataset (type 1 or 2)
  as full supercell arrays;
* :func:`unit_vectors`, :func:`rows_to_force_constants`,
  :func:`force_constants_to_rows`, :func:`compact_force_constants`: the
  Hessian ``H[3i+a, 3j+b]`` and phonopy's force constants ``fc[i, j, a, b]``,
  full (N, N, 3, 3) or compact (rows of the primitive-cell atoms);
* :func:`plane_spacings`, :func:`default_supercell_matrix`: the one rule for
  an automatic supercell (every plane spacing at least ``min_length``), used
  by ``fcnet phonons``, ``fcnet data generate`` and the teacher data;
* :func:`read_phonopy_yaml`, :func:`files_beside`, :func:`phonopy_from_yaml`:
  reading a phonopy yaml and the FORCE_SETS / FORCE_CONSTANTS that belong to
  it (only files beside the yaml, never from the current directory).

Depends on numpy, ASE and phonopy only, so every layer (data, model,
phonons, training) may import it. Units: Å, amu, eV/Å².
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.interface.phonopy_yaml import PhonopyYaml
from phonopy.structure.atoms import PhonopyAtoms

__all__ = [
    "atoms_to_phonopy",
    "compact_force_constants",
    "default_supercell_matrix",
    "displacement_vectors",
    "files_beside",
    "force_constants_to_rows",
    "has_forces",
    "phonopy_from_yaml",
    "plane_spacings",
    "phonopy_to_atoms",
    "read_phonopy_yaml",
    "rows_to_force_constants",
    "unit_vectors",
]

#: Force-constant files read with a phonopy yaml when it holds none, in this order.
FORCE_CONSTANTS_FILES = ("FORCE_CONSTANTS", "force_constants.hdf5")
#: Force-set file read with a phonopy yaml whose dataset has no forces.
FORCE_SETS_FILE = "FORCE_SETS"


def atoms_to_phonopy(atoms: Atoms) -> PhonopyAtoms:
    """ASE atoms as :class:`PhonopyAtoms`: same cell (Å), scaled positions and masses (amu)."""
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.array(atoms.cell[:], dtype=float),
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def phonopy_to_atoms(cell: PhonopyAtoms, length_to_A: float = 1.0) -> Atoms:
    """:class:`PhonopyAtoms` (e.g. a supercell) as periodic ASE atoms with the same masses.

    Parameters
    ----------
    cell : PhonopyAtoms
    length_to_A : float
        Factor from the cell's length unit to Å (1 for phonopy data in Å; see
        :func:`ase_fcnet.data.phonopy_files.calculator_units` for other codes).
    """
    atoms = Atoms(
        numbers=np.asarray(cell.numbers, dtype=np.int64),
        positions=np.asarray(cell.positions, dtype=np.float64) * length_to_A,
        cell=np.asarray(cell.cell, dtype=np.float64) * length_to_A,
        pbc=True,
    )
    atoms.set_masses(np.array(cell.masses, dtype=float))
    return atoms


def plane_spacings(cell) -> np.ndarray:
    """Spacings of the lattice planes spanned by pairs of cell vectors.

    Parameters
    ----------
    cell : array_like, shape (3, 3), Å — lattice vectors as rows

    Returns
    -------
    ndarray, shape (3,), Å
        Entry i is the width of the cell along the normal of the plane of the
        two vectors other than vector i: ``volume / |a_j × a_k|``. It is at
        most ``|a_i|``, and smaller the more the cell is skewed.

    Raises
    ------
    ValueError
        If the cell is singular or not finite.
    """
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(np.linalg.det(cell)) if np.all(np.isfinite(cell)) else 0.0
    if not volume > 1e-12:
        raise ValueError(f"cell is singular or not finite (volume {volume:g} Å³); "
                         "cannot choose a supercell")
    normals = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
    return volume / np.linalg.norm(normals, axis=1)


def default_supercell_matrix(cell, min_length: float) -> np.ndarray:
    """The automatic supercell: smallest diagonal one whose plane spacings are all ``>= min_length``.

    The rule used everywhere a supercell is chosen for you (``fcnet phonons``
    without ``--supercell``, ``fcnet data generate``, the teacher data). The
    plane spacing, not the lattice-vector length, is what keeps an atom's
    periodic images ``min_length`` apart: for a skewed cell (e.g. the fcc
    primitive cell, spacing ``a/√3`` against a length of ``a/√2``) a supercell
    whose vectors are long enough can still be thin across a plane.

    Parameters
    ----------
    cell : array_like, shape (3, 3), Å — lattice vectors as rows
    min_length : float, Å — positive, finite

    Returns
    -------
    ndarray, shape (3, 3), int — ``diag(n)`` with ``n_i = max(1, ceil(min_length / spacing_i))``

    Raises
    ------
    ValueError
        If ``min_length`` is not a positive length or the cell is singular.
    """
    if not (np.isfinite(min_length) and min_length > 0):
        raise ValueError(f"min_length must be a positive length in Å, got {min_length!r}")
    reps = np.ceil(min_length / plane_spacings(cell) - 1e-9)
    return np.diag(np.maximum(1, reps).astype(int))


def displacement_vectors(source: Phonopy | dict, n_atoms: int | None = None) -> np.ndarray:
    """Displacements of a phonopy dataset as full supercell arrays.

    Parameters
    ----------
    source : phonopy.Phonopy or dict
        A Phonopy with generated displacements, or a dataset: type 1
        (``first_atoms``, one displaced atom each) or type 2 (``displacements``).
    n_atoms : int, optional
        Supercell atoms; needed for a type-1 dataset given as a dict.

    Returns
    -------
    ndarray, shape (n_disp, N, 3), in the dataset's length unit (Å for phonopy data in Å)
        For type 1, ``u[k]`` is zero except for the displaced atom of displacement ``k``.

    Raises
    ------
    ValueError
        If there is no displacement dataset.
    """
    if isinstance(source, Phonopy):
        dataset, n_atoms = source.dataset, len(source.supercell)
    else:
        dataset = source
    if dataset and "first_atoms" in dataset:
        u = np.zeros((len(dataset["first_atoms"]), int(n_atoms), 3))
        for k, entry in enumerate(dataset["first_atoms"]):
            u[k, entry["number"]] = entry["displacement"]
        return u
    if dataset and "displacements" in dataset:
        return np.asarray(dataset["displacements"], dtype=np.float64)
    raise ValueError("no displacement dataset (generate_displacements first)")


def unit_vectors(atoms_idx, n_atoms: int) -> np.ndarray:
    """The Cartesian unit vectors of the atoms ``atoms_idx``, shape (3M, N, 3).

    Row ``3k + a`` is one at ``[atoms_idx[k], a]``: the Hessian-vector
    products of these vectors are the Hessian rows of those atoms.
    """
    atoms_idx = np.asarray(atoms_idx, dtype=np.int64)
    vectors = np.zeros((3 * len(atoms_idx), n_atoms, 3))
    for k, i in enumerate(atoms_idx):
        vectors[3 * k: 3 * k + 3, i] = np.eye(3)
    return vectors


def rows_to_force_constants(rows):
    """Hessian rows in phonopy's force-constant layout.

    Parameters
    ----------
    rows : ndarray or torch.Tensor, shape (3M, N, 3) or (3M, 3N), eV/Å²
        ``rows[3k + a, j, b] = ∂²E/∂r[i_k, a] ∂r[j, b]`` (e.g. the products of
        :func:`unit_vectors`, or a whole (3N, 3N) Hessian).

    Returns
    -------
    same type, shape (M, N, 3, 3), eV/Å² — ``fc[k, j, a, b]`` (a view where possible)
    """
    m3, n3 = rows.shape[0], int(np.prod(rows.shape[1:]))
    return rows.reshape(m3 // 3, 3, n3 // 3, 3).swapaxes(1, 2)


def force_constants_to_rows(fc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rows_to_force_constants`: (M, N, 3, 3) -> (3M, 3N), eV/Å²."""
    m, n = fc.shape[:2]
    return np.ascontiguousarray(np.asarray(fc).swapaxes(1, 2)).reshape(3 * m, 3 * n)


def compact_force_constants(full: np.ndarray, p2s_map) -> np.ndarray:
    """The rows of the primitive-cell atoms of full force constants.

    Parameters
    ----------
    full : ndarray, shape (N, N, 3, 3), eV/Å²
    p2s_map : sequence of int, length n_prim — ``phonon.primitive.p2s_map``

    Returns
    -------
    ndarray, shape (n_prim, N, 3, 3), contiguous, eV/Å² — phonopy's compact force constants
    """
    return np.ascontiguousarray(np.asarray(full)[np.asarray(p2s_map, dtype=np.int64)])


def read_phonopy_yaml(path: str | os.PathLike) -> PhonopyYaml:
    """Parse a phonopy yaml (any name, optionally xz/lzma/gz/bz2 compressed).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If it cannot be parsed or has no ``unit_cell``; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ph_yaml = PhonopyYaml().read(path)
    except Exception as exc:
        raise ValueError(
            f"{path}: cannot be read as a phonopy yaml ({type(exc).__name__}: {exc})"
        ) from exc
    if ph_yaml.unitcell is None:
        raise ValueError(f"{path}: phonopy yaml has no unit_cell")
    return ph_yaml


def has_forces(dataset: dict | None) -> bool:
    """Whether a phonopy dataset holds forces for every displacement."""
    if not dataset:
        return False
    if "first_atoms" in dataset:
        entries = dataset["first_atoms"]
        return bool(entries) and all("forces" in d for d in entries)
    return "forces" in dataset and "displacements" in dataset


def files_beside(path: str | os.PathLike, ph_yaml: PhonopyYaml) -> dict[str, Path | None]:
    """The FORCE_CONSTANTS and FORCE_SETS files that belong to a phonopy yaml.

    The rule: a yaml without force constants takes ``FORCE_CONSTANTS`` or else
    ``force_constants.hdf5`` beside it; a yaml whose dataset has no forces
    takes ``FORCE_SETS`` beside it. Files in the current directory are never used.

    Returns
    -------
    dict
        ``{"force_constants": Path or None, "force_sets": Path or None}``.
    """
    folder = Path(path).parent

    def first(*names: str) -> Path | None:
        return next((folder / n for n in names if (folder / n).is_file()), None)

    return {
        "force_constants": first(*FORCE_CONSTANTS_FILES) if ph_yaml.force_constants is None else None,
        "force_sets": first(FORCE_SETS_FILE) if not has_forces(ph_yaml.dataset) else None,
    }


def phonopy_from_yaml(ph_yaml: PhonopyYaml, path: str | os.PathLike, **kwargs: Any) -> Phonopy:
    """A Phonopy with the yaml's unit cell, supercell and primitive matrices (no data).

    The supercell is built by phonopy exactly as ``phonopy.load`` builds it,
    so atom order and ``primitive.p2s_map`` are phonopy's. Symmetry is not
    searched unless ``is_symmetry=True`` is passed (it does not change the
    supercell and costs seconds for large ones).

    Raises
    ------
    ValueError
        If phonopy cannot build the cells, or the yaml's stored supercell has
        another number of atoms; the message names ``path``.
    """
    smat, pmat = ph_yaml.supercell_matrix, ph_yaml.primitive_matrix
    options = {"is_symmetry": False, "log_level": 0, **kwargs}
    try:
        phonon = Phonopy(
            ph_yaml.unitcell,
            np.eye(3, dtype=np.int64) if smat is None else smat,
            primitive_matrix="auto" if pmat is None else pmat,
            calculator=ph_yaml.calculator,
            **options,
        )
    except Exception as exc:
        raise ValueError(
            f"{path}: phonopy cannot build the supercell ({type(exc).__name__}: {exc})"
        ) from exc
    if ph_yaml.supercell is not None and len(ph_yaml.supercell) != len(phonon.supercell):
        raise ValueError(
            f"{path}: stored supercell has {len(ph_yaml.supercell)} atoms, but unit_cell and "
            f"supercell_matrix give {len(phonon.supercell)}"
        )
    return phonon
