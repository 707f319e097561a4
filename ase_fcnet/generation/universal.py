"""A broad, reproducible structure set over the elements of common inorganic solids.

The set feeds the teacher data of the default model (:mod:`ase_fcnet.generation.teacher`).
Every structure is a *base* (an unrelaxed unit cell, Å) with a unique label:

* elemental: fcc, bcc and hcp for every metal and metalloid, diamond and
  hexagonal diamond (lonsdaleite) for C, Si, Ge and Sn;
* binary intermetallics: CsCl (B2) and Cu3Au (L1_2) cells of random metal pairs;
* charge-balanced ionic and covalent compounds from common oxidation states:
  rock salt, CsCl, zinc blende and wurtzite (AX), fluorite, rutile, CdI2 (1T)
  and MoS2 (2H) layers (AX2), anti-fluorite (A2X), cubic perovskite (ABX3)
  and spinel (AB2X4);
* symmetry-constrained random crystals from pyxtal (random space group and
  composition, at most 12 atoms per cell);
* :data:`COMMON`: real compounds in their own prototype (NaCl, MgO,
  GaAs, GaN, ZnO, TiO2, CaF2, SrTiO3, MgAl2O4, Ni3Al, TiNiSn, Cu2MnAl,
  CuInSe2, NiAs, ...), so that the crystals users ask about first are
  covered whatever the draws; prototypes in :mod:`ase_fcnet.generation.cells`.

Lattice parameters are only a start: each cell is scaled so that its shortest
bond equals the sum of the covalent radii, and the teacher relaxes it.

:data:`ELEMENTS` covers H–Bi without noble gases and without the lanthanides
after La (64 elements). Which compounds are drawn depends only on the seed;
each base gets its own generator ``default_rng([seed, crc32(label)])`` for its
random parts, so a structure depends only on ``(seed, label)``. Held-out
bases (:func:`teacher_split`): about 10 % of labels, by hash, never by seed.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols, covalent_radii

from .cells import build_cell
from .prototypes import structure_rng

__all__ = [
    "COMMON",
    "ELEMENTS",
    "OXIDATION_STATES",
    "base_structures",
    "random_crystal",
    "scale_to_bonds",
    "teacher_split",
]

_EXCLUDED = {"He", "Ne", "Ar", "Kr", "Xe"} | set(chemical_symbols[58:72])
#: Elements of the set: H (1) to Bi (83) without noble gases and Ce–Lu.
ELEMENTS: tuple[str, ...] = tuple(s for s in chemical_symbols[1:84] if s not in _EXCLUDED)

#: Anions (element -> negative oxidation state).
ANIONS = {"H": -1, "N": -3, "O": -2, "F": -1, "P": -3, "S": -2, "Cl": -1, "As": -3,
          "Se": -2, "Br": -1, "Te": -2, "I": -1}

#: Common positive oxidation states of the cation-forming elements.
OXIDATION_STATES: dict[str, tuple[int, ...]] = {
    "Li": (1,), "Be": (2,), "B": (3,), "C": (4,), "Na": (1,), "Mg": (2,), "Al": (3,),
    "Si": (4,), "P": (5,), "S": (6,), "K": (1,), "Ca": (2,), "Sc": (3,), "Ti": (2, 3, 4),
    "V": (2, 3, 4, 5), "Cr": (2, 3, 6), "Mn": (2, 3, 4), "Fe": (2, 3), "Co": (2, 3),
    "Ni": (2,), "Cu": (1, 2), "Zn": (2,), "Ga": (3,), "Ge": (2, 4), "As": (3, 5),
    "Se": (4,), "Rb": (1,), "Sr": (2,), "Y": (3,), "Zr": (4,), "Nb": (3, 5), "Mo": (4, 6),
    "Tc": (4,), "Ru": (3, 4), "Rh": (3,), "Pd": (2,), "Ag": (1,), "Cd": (2,), "In": (3,),
    "Sn": (2, 4), "Sb": (3, 5), "Te": (4,), "Cs": (1,), "Ba": (2,), "La": (3,), "Hf": (4,),
    "Ta": (5,), "W": (4, 6), "Re": (4,), "Os": (4,), "Ir": (3, 4), "Pt": (2, 4), "Au": (1, 3),
    "Hg": (2,), "Tl": (1, 3), "Pb": (2, 4), "Bi": (3,),
}

_NONMETALS = {"H", "C", "N", "O", "F", "P", "S", "Cl", "Se", "Br", "I"}
#: Elements given elemental fcc / bcc / hcp cells (metals and metalloids).
METALS = tuple(s for s in ELEMENTS if s not in _NONMETALS)

def scale_to_bonds(atoms: Atoms, factor: float = 1.0) -> Atoms:
    """Scale a cell so that its shortest bond is ``factor`` × the covalent-radius sum.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic cell (any size; distances include periodic images).
    factor : float
        Target ratio of the most compressed pair, distance / (r_i + r_j).

    Returns
    -------
    ase.Atoms
        A scaled copy (positions and cell in Å).
    """
    from ase.neighborlist import neighbor_list

    out = atoms.copy()
    radii = covalent_radii[out.numbers]
    out.set_cell(out.cell / np.cbrt(out.get_volume() / len(out)), scale_atoms=True)  # 1 Å³/atom
    i, j, d = neighbor_list("ijd", out, 2.0)  # the nearest neighbour is closer than 1.2
    ratio = (d / (radii[i] + radii[j])).min()
    out.set_cell(out.cell * (factor / ratio), scale_atoms=True)
    return out


def _ionic(rng: np.random.Generator, charge: int, anion_charge: int,
           anions: tuple[str, ...] = tuple(ANIONS)) -> tuple[str, str] | None:
    """A random (cation, anion) pair with the given charges, or None."""
    cations = [s for s, states in OXIDATION_STATES.items() if charge in states]
    anions = [x for x in anions if ANIONS[x] == anion_charge]
    pairs = [(m, x) for m in cations for x in anions if m != x]
    return None if not pairs else pairs[rng.integers(len(pairs))]


#: (prototype, cation charge, anion charge, pairs drawn, allowed anions or None)
_IONIC = [
    ("rocksalt", 1, -1, 10, None), ("rocksalt", 2, -2, 14, None), ("rocksalt", 3, -3, 6, None),
    ("cscl", 1, -1, 6, ("Cl", "Br", "I")), ("zincblende", 1, -1, 4, ("Cl", "Br", "I")),
    ("zincblende", 2, -2, 10, None), ("zincblende", 3, -3, 8, None),
    ("wurtzite", 2, -2, 8, None), ("wurtzite", 3, -3, 6, None),
]
_AX2 = [("fluorite", 2, -1, 6, ("F", "Cl")), ("fluorite", 4, -2, 6, ("O",)),
        ("rutile", 4, -2, 10, ("O",)), ("rutile", 2, -1, 4, ("F",)),
        ("cdi2", 2, -1, 6, ("Cl", "Br", "I")), ("cdi2", 4, -2, 6, ("S", "Se", "Te")),
        ("mos2", 4, -2, 6, ("S", "Se", "Te"))]


def _compounds(seed: int, draw: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    """Drawn (prototype, symbols) pairs of the compound families, without repeats.

    ``draw`` > 0 gives further, independent draws of the same families.
    """
    rng = np.random.default_rng([seed, 7] if draw == 0 else [seed, 7, draw])
    out: list[tuple[str, tuple[str, ...]]] = []
    for kind, q, qx, count, allowed in _IONIC + _AX2:
        for _ in range(count):
            pair = _ionic(rng, q, qx, allowed or tuple(ANIONS))
            if pair:
                out.append((kind, pair))
    for _ in range(8):  # anti-fluorite A2X
        out.append(("antifluorite", _ionic(rng, 1, -2)))
    for _ in range(12):  # perovskites A(2+)B(4+)O3 and A(1+)B(2+)X3
        if rng.random() < 0.6:
            a, _x = _ionic(rng, 2, -2, ("O",))
            b, _x = _ionic(rng, 4, -2, ("O",))
            out.append(("perovskite", (a, b, "O")))
        else:
            a, x = _ionic(rng, 1, -1, ("F", "Cl", "Br"))
            b, _x = _ionic(rng, 2, -1, ("F",))
            out.append(("perovskite", (a, b, x)))
    for _ in range(8):  # spinels A(2+)B(3+)2X4
        a, x = _ionic(rng, 2, -2, ("O", "S"))
        b, _x = _ionic(rng, 3, -2, ("O",))
        out.append(("spinel", (a, b, x)))
    for kind, count in (("cscl", 14), ("l12", 10)):  # intermetallics
        for _ in range(count):
            a, b = rng.choice(METALS, size=2, replace=False)
            out.append((kind, (str(a), str(b))))
    unique = {(k, s): None for k, s in out if len(set(s)) == len(s)}
    return list(unique)


def random_crystal(symbols: dict[str, int], rng: np.random.Generator,
                   attempts: int = 20) -> Atoms | None:
    """A symmetry-constrained random crystal from pyxtal, or None if none fits.

    Parameters
    ----------
    symbols : dict
        Element -> number of atoms in the conventional cell.
    rng : numpy.random.Generator
        Draws the space groups (2–230) and pyxtal's seeds.
    attempts : int
        Space groups tried before giving up.
    """
    from pyxtal import pyxtal

    species, counts = list(symbols), list(symbols.values())
    for _ in range(attempts):
        group = int(rng.integers(2, 231))
        crystal_ = pyxtal()
        try:
            crystal_.from_random(3, group, species, counts, random_state=int(rng.integers(2**31)))
        except Exception:  # noqa: BLE001 - pyxtal raises many kinds when a group cannot fit
            continue
        if crystal_.valid:
            atoms = crystal_.to_ase()
            atoms.pbc = True
            return atoms
    return None


def _random_compositions(seed: int, count: int) -> list[dict[str, int]]:
    rng = np.random.default_rng([seed, 11])
    out = []
    while len(out) < count:
        if rng.random() < 0.35:  # intermetallic
            a, b = (str(s) for s in rng.choice(METALS, size=2, replace=False))
            na, nb = (int(n) for n in rng.integers(1, 4, size=2))
            comp = {a: na, b: nb}
        else:  # charge-balanced binary
            q = int(rng.choice([1, 2, 3, 4]))
            qx = int(rng.choice([-1, -2, -3]))
            pair = _ionic(rng, q, qx)
            if pair is None:
                continue
            g = np.gcd(q, -qx)
            comp = {pair[0]: -qx // g, pair[1]: q // g}
        total = sum(comp.values())
        if total > 6:
            continue
        z = 2 if total <= 3 and rng.random() < 0.5 else 1
        out.append({k: v * z for k, v in comp.items()})
    return out


#: Real compounds in their experimental (or textbook) prototype, (prototype, symbols) as
#: :func:`_build` takes them: the crystals users ask about first. Drawn pairs above
#: cover chemistry broadly; these make sure the common ones are there too.
COMMON: dict[str, tuple[str, ...]] = {
    "rocksalt": ("LiF", "LiCl", "NaF", "NaCl", "NaBr", "NaI", "KF", "KCl", "KBr", "KI", "RbCl",
                 "AgCl", "AgBr", "MgO", "CaO", "SrO", "BaO", "MnO", "FeO", "CoO", "NiO", "CdO",
                 "PbS", "PbSe", "PbTe", "SnTe", "TiC", "ZrC", "HfC", "NbC", "TaC", "VC", "TiN",
                 "ZrN", "ScN", "VN", "CrN", "LaN", "CaS", "MgS"),
    "cscl": ("CsCl", "CsBr", "CsI", "TlCl", "TlBr", "NiAl", "CoAl", "FeAl", "CuZn", "AgMg",
             "AuCd", "NiTi", "RuAl"),
    "zincblende": ("CSi", "BN", "BP", "BAs", "AlP", "AlAs", "AlSb", "GaP", "GaAs", "GaSb",
                   "InP", "InAs", "InSb", "ZnS", "ZnSe", "ZnTe", "CdTe", "HgTe", "BeS", "CuCl",
                   "CuBr", "CuI", "AgI"),
    "wurtzite": ("GaN", "AlN", "InN", "ZnO", "BeO", "CdS", "CdSe", "ZnS", "CSi"),
    "fluorite": ("CaF", "SrF", "BaF", "CdF", "PbF", "ZrO", "HfO", "SrCl"),
    "antifluorite": ("LiO", "NaO", "KO", "LiS", "NaS", "MgSi", "MgGe", "MgSn", "LiSe"),
    "rutile": ("TiO", "SnO", "GeO", "PbO", "MnO", "RuO", "IrO", "VO", "CrO", "NbO", "OsO",
               "MgF", "ZnF", "FeF", "CoF", "NiF", "MnF"),
    "cdi2": ("CdI", "MgI", "PbI", "CaI", "TiS", "ZrS", "HfS", "SnS", "TiSe", "PtS", "MgBr"),
    "mos2": ("MoS", "MoSe", "MoTe", "WS", "WSe", "NbS", "NbSe", "TaS"),
    "perovskite": ("SrTiO", "BaTiO", "CaTiO", "PbTiO", "SrZrO", "BaZrO", "BaHfO", "KNbO",
                   "KTaO", "NaNbO", "LaAlO", "LaGaO", "KMgF", "KZnF", "KNiF", "RbCaF", "CsPbBr",
                   "CsPbI", "CsSnI", "CsCaCl", "BaSnO", "SrHfO"),
    "spinel": ("MgAlO", "ZnAlO", "NiAlO", "FeAlO", "MgCrO", "ZnCrO", "FeCrO", "MgGaO",
               "ZnGaO", "ZnFeO", "CdInS", "MgInS"),
    "l12": ("NiAl", "NiGa", "NiSi", "CuAu", "CuPt", "PtAl", "PtTi", "AlSc", "AlZr", "PdFe",
            "NiMn", "PtFe", "AuCu", "CoTi", "AlLi", "AlY", "NiFe", "PtCo"),
    "nias": ("NiAs", "FeS", "CoS", "NiS", "MnTe", "CrSb", "FeSe", "CoSb", "NiSb", "PtSn",
             "CrTe", "VS", "TiS", "MnSb"),
    "halfheusler": ("TiNiSn", "ZrNiSn", "HfNiSn", "TiCoSb", "ZrCoSb", "HfCoSb", "NbFeSb",
                    "ScNiSb", "NMgLi", "PZnLi", "AsZnLi", "AsAgMg", "SiAlLi", "SbPtY"),
    "heusler": ("CuMnAl", "CoMnSi", "CoMnGe", "CoFeSi", "NiMnGa", "FeVAl", "CoTiSn", "CoCrAl",
                "NiMnIn", "NiTiSn", "CoMnAl", "FeTiSi", "RuVAl", "LiAgSb"),
    "chalcopyrite": ("CuInSe", "CuInS", "CuGaS", "CuGaSe", "AgGaS", "AgInSe", "CuAlS",
                     "ZnGeP", "ZnSiP", "CdGeAs", "ZnSnAs", "CdSiP", "AgGaSe", "CuInTe"),
}
#: Added to the lists above in a second round (kept apart so that earlier labels keep their
#: order): more binaries in the original prototypes.
_COMMON_MORE: dict[str, tuple[str, ...]] = {
    "rocksalt": ("LiH", "NaH", "RbBr", "RbI", "CsF", "AgF", "SrS", "BaS", "CaSe", "SrSe",
                 "BaSe", "CaTe", "YN", "HfN", "NbN", "TaN", "ScC", "SnS", "GeTe", "TiO"),
    "cscl": ("TlI", "FeTi", "CoTi", "AuZn", "CuPd", "AgZn", "ScCu"),
    "zincblende": ("AlN", "GaN", "InN", "BeSe", "BeTe", "MgTe", "CdSe", "HgS", "HgSe", "ZnO"),
    "wurtzite": ("ZnSe", "AgI", "MgTe", "BeS", "CdTe"),
    "fluorite": ("PtAl", "AuAl", "CoSi", "NiSi", "HgF", "BaCl"),
    "antifluorite": ("KS", "RbO", "NaSe", "KSe", "LiTe", "BeC", "MgPb", "CuS"),
    "rutile": ("MoO", "WO", "TcO", "ReO", "SiO", "PdF", "TeO"),
    "cdi2": ("ZrSe", "HfSe", "TiTe", "SnSe", "PtSe", "FeBr", "MnI", "CdCl", "NiI"),
    "mos2": ("TaSe", "WTe", "NbTe"),
    "perovskite": ("CaZrO", "SrSnO", "LaCrO", "LaFeO", "LaMnO", "LaNiO", "LaCoO", "YAlO",
                   "KMnF", "KCoF", "KFeF", "RbMgF", "NaMgF", "CsPbCl", "CsGeI", "RbPbI",
                   "LaVO", "LaTiO", "CsCdBr", "KCaF"),
    "spinel": ("CoAlO", "MnAlO", "CoCrO", "NiCrO", "MnCrO", "CuCrO", "NiFeO", "CoFeO",
               "MnFeO", "MgFeO", "MgVO", "ZnVO", "CdCrS", "HgCrS", "ZnCrS", "CdCrSe"),
}


def _split_formula(formula: str) -> tuple[str, ...]:
    """``"SrTiO"`` -> ``("Sr", "Ti", "O")`` (element symbols, no counts)."""
    out = tuple(re.findall(r"[A-Z][a-z]?", formula))
    unknown = [e for e in out if e not in ELEMENTS]
    if unknown or "".join(out) != formula:
        raise ValueError(f"{formula!r}: not a list of set elements ({unknown or formula})")
    return out


def _labelled(kind: str, symbols: tuple[str, ...]) -> tuple[str, Atoms]:
    """``(<prototype>-<empirical formula>, unscaled cell)`` of a compound."""
    atoms = build_cell(kind, *symbols)
    return f"{kind}-{atoms.get_chemical_formula(empirical=True)}", atoms


def common_structures() -> list[tuple[str, Atoms]]:
    """Unscaled cells of :data:`COMMON`, labelled ``<prototype>-<empirical formula>``."""
    return [_labelled(kind, _split_formula(formula))
            for kind, formulas in [*COMMON.items(), *_COMMON_MORE.items()] for formula in formulas]


def base_structures(seed: int = 0, n_random: int = 350,
                    compound_draws: int = 2) -> list[tuple[str, Atoms]]:
    """The labelled, unrelaxed base cells of the set (see the module docstring).

    Parameters
    ----------
    seed : int
        Chooses the compounds, random crystals and their details.
    n_random : int
        Number of random compositions attempted with pyxtal (the first ``n``
        do not depend on ``n_random``).
    compound_draws : int
        Independent draws of the compound families (the first draw comes
        before the random crystals, the others after :data:`COMMON`).

    Returns
    -------
    list of (str, ase.Atoms)
        Labels like ``rocksalt-NaCl``, ``fcc-Cu``, ``random-017-Mg2Si``; cells
        scaled to covalent bond lengths (Å).
    """
    out: list[tuple[str, Atoms]] = []
    for s in METALS:
        for kind in ("fcc", "bcc", "hcp"):
            out.append((f"{kind}-{s}", build_cell(kind, s)))
    for s in ("C", "Si", "Ge", "Sn"):
        out.append((f"diamond-{s}", build_cell("diamond", s)))
    out += [_labelled(kind, symbols) for kind, symbols in _compounds(seed)]
    for k, comp in enumerate(_random_compositions(seed, n_random)):
        label = f"random-{k:03d}-" + "".join(f"{e}{n if n > 1 else ''}" for e, n in comp.items())
        atoms = random_crystal(comp, structure_rng(seed, label))
        if atoms is not None:
            out.append((label, atoms))
    out += common_structures()  # after the drawn ones, so earlier labels keep their cells
    for draw in range(1, compound_draws):
        out += [_labelled(kind, symbols) for kind, symbols in _compounds(seed, draw)]
    for s in ("C", "Si", "Ge", "Sn"):
        out.append((f"hexdiamond-{s}", build_cell("hexdiamond", s)))
    seen: set[str] = set()
    unique = []
    for label, atoms in out:
        if label not in seen:
            seen.add(label)
            unique.append((label, scale_to_bonds(atoms)))
    return unique


def teacher_split(label: str) -> str:
    """``"held-out"`` for about 10 % of base labels (by SHA-256), else ``"train"``."""
    digest = hashlib.sha256(label.encode()).digest()
    return "held-out" if int.from_bytes(digest[:8], "big") % 10 == 0 else "train"


def element_of(label: str) -> str:
    """Symbol of an elemental base label such as ``fcc-Cu`` (for checks)."""
    symbol = label.split("-", 1)[1]
    if symbol not in atomic_numbers:
        raise ValueError(f"{label!r} is not an elemental base label")
    return symbol
