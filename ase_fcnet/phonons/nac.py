"""LO–TO splitting: phonopy's non-analytic correction from Born charges, and when it is needed.

In a polar crystal the long-range dipole field of the optical modes splits
longitudinal (LO) and transverse (TO) optical frequencies at Γ. Force
constants of a finite supercell (analytic or finite-displacement alike) do
not contain it: without a correction the LO modes near Γ are wrong. Phonopy
adds it from the Born effective charges and the high-frequency dielectric
tensor, as read from a ``BORN`` file (first line: unit conversion factor or
nothing; second: ε∞ (9 numbers); then Z* (9 numbers) of each symmetry-
independent atom of the primitive cell).

Which crystals need it (rule used for the notice of ``fcnet phonons``): a
crystal *may be polar* when it holds at least two elements and at least one
of them is a non-metal or metalloid (H, B, C, N, O, F, Si, P, S, Cl, Ge, As,
Se, Br, Sb, Te, I, and the noble gases excluded). NaCl, MgO, SiC and GaAs are
flagged; elemental crystals and intermetallics (Cu3Au) are not.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from phonopy import Phonopy

#: Non-metals and metalloids of the polar-crystal rule (see module docstring).
ANION_FORMERS = frozenset("H B C N O F Si P S Cl Ge As Se Br Sb Te I".split())


class BornFileError(ValueError):
    """A BORN file or Born-charge dict that does not fit the crystal."""


def may_be_polar(symbols) -> list[str]:
    """The anion-forming elements that make a crystal possibly polar, or ``[]`` (see module docstring).

    Parameters
    ----------
    symbols : iterable of str
        Chemical symbols of the crystal's atoms.
    """
    elements = sorted(set(symbols))
    if len(elements) < 2:
        return []
    return [el for el in elements if el in ANION_FORMERS]


def read_born(phonon: Phonopy, born: str | os.PathLike | Mapping[str, Any],
              symprec: float = 1e-5) -> dict[str, Any]:
    """Phonopy's NAC parameters from a BORN file or a dict, checked against ``phonon.primitive``.

    Parameters
    ----------
    phonon : Phonopy
        Its primitive cell defines the atoms of the BORN file.
    born : path-like or mapping
        A phonopy ``BORN`` file, or a dict with ``born`` (n_prim, 3, 3) (units
        of e), ``dielectric`` (3, 3) and optionally ``factor`` (phonopy's unit
        conversion; its default for eV and Å otherwise).
    symprec : float
        Symmetry tolerance (Å) of phonopy's reader, which symmetrises Z*.

    Returns
    -------
    dict
        ``born`` ndarray (n_prim, 3, 3), ``dielectric`` (3, 3), ``factor`` float
        (when given).
    """
    n_prim = len(phonon.primitive)
    if isinstance(born, Mapping):
        params = dict(born)
        if "born" not in params or "dielectric" not in params:
            raise BornFileError(f"Born-charge dict needs 'born' and 'dielectric', got {sorted(params)}")
    else:
        from phonopy.file_IO import parse_BORN

        path = Path(born)
        if not path.is_file():
            raise BornFileError(f"BORN file not found: {path}")
        try:
            params = dict(parse_BORN(phonon.primitive, symprec=symprec, filename=path))
        except Exception as err:  # phonopy's reader raises many kinds for foreign files
            reason = str(err) or err.__class__.__name__
            raise BornFileError(f"{path}: not a BORN file for this {n_prim}-atom primitive cell "
                                f"({reason})") from None
    charges = np.asarray(params["born"], dtype=float)
    eps = np.asarray(params["dielectric"], dtype=float)
    if charges.shape != (n_prim, 3, 3):
        raise BornFileError(f"Born charges have shape {charges.shape}; the primitive cell has "
                            f"{n_prim} atoms, so (n_prim, 3, 3) = ({n_prim}, 3, 3) is needed")
    if eps.shape != (3, 3) or not np.all(np.isfinite(eps)) or np.any(np.linalg.eigvalsh(
            0.5 * (eps + eps.T)) <= 0):
        raise BornFileError(f"dielectric tensor must be a positive-definite 3x3 matrix, got {eps.tolist()}")
    if not np.all(np.isfinite(charges)):
        raise BornFileError("Born charges hold non-finite values")
    drift = np.abs(charges.sum(axis=0)).max()
    if drift > 0.1 * max(np.abs(charges).max(), 1.0):
        raise BornFileError(f"Born charges break charge neutrality (sum over the cell up to "
                            f"{drift:.3f} e): do they belong to this crystal?")
    params["born"], params["dielectric"] = charges, eps
    return params


def apply_nac(phonon: Phonopy, born, symprec: float = 1e-5) -> dict[str, Any]:
    """Switch on phonopy's non-analytic correction on ``phonon`` (see :func:`read_born`).

    Returns
    -------
    dict
        The NAC parameters set.
    """
    params = read_born(phonon, born, symprec)
    phonon.nac_params = params
    return params
