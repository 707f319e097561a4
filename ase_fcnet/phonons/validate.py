"""Checks of phonon settings and structures, made before any model evaluation.

Every check raises (or returns) a message that names the setting, the site or
the length at fault, so that ``fcnet phonons`` and :func:`run_phonons` stop
before minutes of work instead of failing inside phonopy or spglib, or
returning a silently wrong answer.
"""
from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce

from ase_fcnet.phonons.adapter import resolve_supercell_matrix

#: Occupancies within this of 1 count as full.
OCCUPANCY_TOLERANCE = 1e-3


class SettingsError(ValueError):
    """A phonon setting out of range; ``key`` is the :class:`PhononSettings` field."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def _positive(key: str, value, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or value <= 0:
        raise SettingsError(key, f"must be a positive number ({unit}), got {value!r}")


def check_mesh(mesh) -> None:
    """A q-mesh: three integers >= 1, or a positive length (Å).

    Raises
    ------
    SettingsError
        ``--mesh 0`` (Γ alone: thermal properties silently wrong) and
        ``0 0 0`` (phonopy's "Grid symmetry is broken") included.
    """
    if np.ndim(mesh) == 0:
        _positive("mesh", mesh, "a length in Å, or three integers")
        return
    values = np.asarray(mesh)
    if values.shape != (3,) or not np.all(values == np.round(values)) or np.any(values < 1):
        raise SettingsError("mesh", f"must be three integers >= 1 or one length in Å, got "
                                    f"{np.asarray(mesh).tolist()}")


def check_temperatures(t_min: float, t_max: float, t_step: float) -> None:
    """``0 <= t_min <= t_max`` and ``0 < t_step <= t_max - t_min`` (unless a single temperature)."""
    for key, value in (("t_min", t_min), ("t_max", t_max)):
        if not math.isfinite(value) or value < 0:
            raise SettingsError(key, f"must be a temperature >= 0 K, got {value!r}")
    if t_max < t_min:
        raise SettingsError("t_max", f"{t_max} K is below t_min {t_min} K")
    _positive("t_step", t_step, "K")
    if t_max > t_min and t_step > t_max - t_min:
        raise SettingsError("t_step", f"{t_step} K is larger than the range {t_min}..{t_max} K: "
                                      f"only T = {t_min} K would be computed")


def check_settings(settings) -> np.ndarray | None:
    """Check every field of a :class:`PhononSettings`; return the explicit supercell matrix or None.

    Raises
    ------
    SettingsError
    """
    check_mesh(settings.mesh)
    check_temperatures(settings.t_min, settings.t_max, settings.t_step)
    _positive("symprec", settings.symprec, "Å")
    if settings.symprec >= 1.0:
        raise SettingsError("symprec", f"{settings.symprec} Å is not a tolerance (use ~1e-5 .. 0.1 Å)")
    if isinstance(settings.npoints, bool) or not isinstance(settings.npoints, (int, np.integer)) \
            or settings.npoints < 2:
        raise SettingsError("npoints", f"must be an integer >= 2, got {settings.npoints!r}")
    _positive("min_length", settings.min_length, "Å")
    if settings.supercell_matrix is None:
        return None
    try:
        return resolve_supercell_matrix(np.eye(3), settings.supercell_matrix)
    except ValueError as err:
        raise SettingsError("supercell_matrix", str(err)) from None


def occupancy_problems(atoms: Atoms) -> list[str]:
    """Sites a CIF reader kept but the model cannot represent: partial, mixed or merged.

    ASE's CIF reader keeps one element per site and records the file's
    occupancies in ``atoms.info["occupancy"]`` (per site kind, listed in
    ``atoms.arrays["spacegroup_kinds"]``); two atoms given on one position are
    merged into one site the same way.

    Returns
    -------
    list of str
        One description per offending site kind (empty when all sites are full
        and single), naming the site's first atom, its fractional position and
        the occupancies.
    """
    occupancy = atoms.info.get("occupancy")
    if not occupancy:
        return []
    kinds = atoms.arrays.get("spacegroup_kinds")
    problems = []
    for kind, occ in sorted(occupancy.items(), key=lambda item: int(item[0])):
        total = sum(occ.values())
        if len(occ) == 1 and abs(total - 1) <= OCCUPANCY_TOLERANCE:
            continue
        where = ""
        if kinds is not None:
            atoms_of_kind = np.flatnonzero(kinds == int(kind))
            if len(atoms_of_kind):
                first = atoms_of_kind[0]
                frac = np.round(atoms.get_scaled_positions()[first], 4).tolist()
                where = f" (atom {first}, {atoms[first].symbol}, at fractional {frac})"
        content = " + ".join(f"{el} {value:g}" for el, value in occ.items())
        if total > 1 + OCCUPANCY_TOLERANCE:
            what = f"{len(occ)} atoms on one position, merged into one site ({content})"
        elif len(occ) > 1:
            what = f"mixed occupancy {content}"
        else:
            what = f"partial occupancy {content}"
        problems.append(f"site {kind}{where}: {what}")
    return problems


def shortest_translation(cell) -> float:
    """Length of the shortest non-zero lattice translation of ``cell`` (Å): how far an atom is from its own image."""
    reduced, _ = minkowski_reduce(np.asarray(cell, dtype=float))
    return float(np.linalg.norm(reduced, axis=1).min())


def supercell_notes(atoms: Atoms, matrix, cutoff: float) -> tuple[int, float, list[str]]:
    """Size of the supercell ``matrix @ atoms.cell`` and warnings about it.

    Parameters
    ----------
    atoms : Atoms
        Unit cell.
    matrix : (3, 3) ints
        Supercell matrix.
    cutoff : float
        Model cutoff, Å.

    Returns
    -------
    n_atoms : int
        Atoms in the supercell.
    length : float
        Shortest lattice translation of the supercell, Å.
    warnings : list of str
        A note when ``length`` is below twice ``cutoff``: an atom and its own
        periodic image then share neighbours, so the force constants of the
        supercell fold interactions of distant pairs onto near ones.

    Raises
    ------
    ValueError
        A supercell of one atom (all force constants vanish by translation
        invariance; every frequency would be zero).
    """
    matrix = np.asarray(matrix)
    n_atoms = len(atoms) * int(round(abs(np.linalg.det(matrix))))
    length = shortest_translation(matrix @ np.asarray(atoms.cell[:]))
    if n_atoms == 1:
        raise ValueError("the supercell holds a single atom: its only force constant vanishes by "
                         "translation invariance (every frequency would be 0); use a larger "
                         "--supercell or --min-length")
    notes = []
    if length < 2 * cutoff:
        notes.append(f"the supercell's shortest lattice translation is {length:.2f} Å, less than "
                     f"twice the model cutoff (2 × {cutoff:g} Å): atoms interact with their own "
                     f"periodic images, so the force constants are folded and the bands are an "
                     f"approximation; a larger --supercell or --min-length {2 * cutoff:g} avoids it")
    return n_atoms, length, notes
