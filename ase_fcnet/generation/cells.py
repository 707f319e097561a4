"""Prototype unit cells of unit scale for the universal structure set.

:func:`build_cell` returns the cell of a named prototype with lattice constant
about 1 (Å); :func:`ase_fcnet.generation.universal.scale_to_bonds` scales it to
covalent bond lengths. Sites (letters are the arguments ``a, b, c``):

* ``fcc``, ``bcc``, ``hcp``, ``diamond``, ``hexdiamond`` (lonsdaleite): element ``a``;
* ``rocksalt``, ``cscl``, ``zincblende``, ``wurtzite``: AX with A = a, X = b;
* ``fluorite`` (a b2), ``antifluorite`` (a2 b), ``rutile`` (a b2),
  ``cdi2`` (a b2, 1T layer), ``mos2`` (a b2, 2H layers), ``nias`` (a b,
  NiAs type, P6_3/mmc);
* ``l12``: Cu3Au type, a3 b (a on the face centres);
* ``perovskite`` (a b c3, cubic), ``spinel`` (a b2 c4, primitive cell);
* ``halfheusler``: a b c, F-43m, a on 4a, b on 4c, c on 4b (TiNiSn: Ni on 4c);
* ``heusler``: a2 b c, Fm-3m (Cu2MnAl type), primitive cell;
* ``chalcopyrite``: a b c2, I-42d (CuInSe2 type), primitive cell (8 atoms).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal

__all__ = ["PROTOTYPE_KINDS", "build_cell"]

_CUBIC = {"cellpar": [1, 1, 1, 90, 90, 90]}


def _hexagonal(c_over_a: float) -> list[float]:
    return [1.0, 1.0, c_over_a, 90, 90, 120]


def _primitive(conv: Atoms, centring: np.ndarray) -> Atoms:
    """Primitive cell of a centred conventional cell; ``centring`` maps conventional to primitive
    lattice vectors, shape (3, 3)."""
    prim = centring @ conv.cell.array
    frac = np.linalg.solve(prim.T, conv.positions.T).T
    keep, seen = [], []
    for i, f in enumerate(frac % 1.0):
        if not any(np.allclose((f - g + 0.5) % 1.0 - 0.5, 0.0, atol=1e-6) for g in seen):
            seen.append(f)
            keep.append(i)
    return Atoms(conv.symbols[keep], scaled_positions=np.array(seen), cell=prim, pbc=True)


_FCC = 0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)
_BODY = 0.5 * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]], dtype=float)


def _spacegroup_cell(kind: str, a: str, b: str, c: str) -> Atoms:
    """Prototypes given by Wyckoff sites."""
    if kind == "l12":
        return crystal([b, a], [(0, 0, 0), (0, 0.5, 0.5)], spacegroup=221, **_CUBIC)
    if kind == "rutile":
        return crystal([a, b], [(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                       cellpar=[1, 1, 0.644, 90, 90, 90])
    if kind == "cdi2":
        return crystal([a, b], [(0, 0, 0), (1 / 3, 2 / 3, 0.25)], spacegroup=164,
                       cellpar=_hexagonal(1.6))
    if kind == "mos2":
        return crystal([a, b], [(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.621)], spacegroup=194,
                       cellpar=_hexagonal(3.9))
    if kind == "nias":
        return crystal([a, b], [(0, 0, 0), (1 / 3, 2 / 3, 0.25)], spacegroup=194,
                       cellpar=_hexagonal(1.39))
    if kind == "perovskite":
        return crystal([a, b, c], [(0, 0, 0), (0.5, 0.5, 0.5), (0, 0.5, 0.5)], spacegroup=221,
                       **_CUBIC)
    if kind == "spinel":
        conv = crystal([a, b, c], [(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.26, 0.26, 0.26)],
                       spacegroup=227, setting=2, **_CUBIC)
        return _primitive(conv, _FCC)
    if kind == "halfheusler":
        conv = crystal([a, b, c], [(0, 0, 0), (0.25, 0.25, 0.25), (0.5, 0.5, 0.5)],
                       spacegroup=216, **_CUBIC)
        return _primitive(conv, _FCC)
    if kind == "heusler":
        conv = crystal([a, b, c], [(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5)],
                       spacegroup=225, **_CUBIC)
        return _primitive(conv, _FCC)
    if kind == "chalcopyrite":
        conv = crystal([a, b, c], [(0, 0, 0), (0, 0, 0.5), (0.25, 0.25, 0.125)], spacegroup=122,
                       cellpar=[1, 1, 2, 90, 90, 90])
        return _primitive(conv, _BODY)
    raise ValueError(f"unknown prototype {kind!r}")


PROTOTYPE_KINDS = ("fcc", "bcc", "hcp", "diamond", "hexdiamond", "rocksalt", "zincblende",
                   "fluorite", "cscl", "wurtzite", "antifluorite", "l12", "rutile", "cdi2", "mos2",
                   "nias", "perovskite", "spinel", "halfheusler", "heusler", "chalcopyrite")


def build_cell(kind: str, a: str, b: str = "", c: str = "") -> Atoms:
    """Unscaled cell of a prototype (lattice constant about 1 Å).

    Parameters
    ----------
    kind : str
        One of :data:`PROTOTYPE_KINDS` (site assignment in the module docstring).
    a, b, c : str
        Element symbols of the prototype's sites.

    Returns
    -------
    ase.Atoms
        Periodic cell.
    """
    if kind in ("fcc", "bcc"):
        return bulk(a, kind, a=1.0)
    if kind == "hcp":
        return bulk(a, "hcp", a=1.0, c=1.633)
    if kind == "diamond":
        return bulk(a, "diamond", a=1.0)
    if kind == "hexdiamond":  # lonsdaleite (2H)
        return bulk(a + a, "wurtzite", a=1.0, c=1.633)
    if kind in ("rocksalt", "zincblende", "fluorite"):
        return bulk(a + b if kind != "fluorite" else f"{a}{b}2", kind, a=1.0)
    if kind == "cscl":
        return bulk(a + b, "cesiumchloride", a=1.0)
    if kind == "wurtzite":
        return bulk(a + b, "wurtzite", a=1.0, c=1.633)
    if kind == "antifluorite":
        cell = bulk(f"{b}{a}2", "fluorite", a=1.0)
        cell.symbols = [b] + [a, a]
        return cell
    return _spacegroup_cell(kind, a, b, c)
