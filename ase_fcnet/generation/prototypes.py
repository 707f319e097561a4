"""Reproducible structure sets built from crystal prototypes.

Prototypes (experimental lattice constants, Å; hexagonal polytypes use ideal
tetrahedra with the bond length of the cubic phase):

* ``si-diamond`` (8 atoms, a = 5.431), ``si-hexdiamond`` (2H stacking, 4),
  ``si-4h`` (8), ``si-betatin`` (4, a = 4.686, c = 2.585);
* ``c-diamond`` (8, a = 3.567);
* ``sic-3c`` zinc blende (8, a = 4.360), ``sic-2h`` wurtzite (4), ``sic-4h``
  (8, stacking ABCB), ``sic-6h`` (12, ABCACB), ``sic-rocksalt`` (8, a = 4.03);
* ``cu-fcc`` / ``cu-bcc`` / ``cu-hcp`` (4 / 2 / 2 atoms, for EMT).

Variants of a prototype ``P`` (labels ``P-<variant>``): ``ideal``; isotropic
strain ``iso-m3`` / ``iso-p3`` (lattice scaled by 0.97 / 1.03); ``aniso-k``:
a random symmetric strain tensor, components uniform in [-0.03, 0.03];
``rattle-k``: Gaussian displacements with σ spread evenly over
[0.02, 0.05] Å; ``strain-rattle-k``: both; ``vac-k``: the cell repeated to at
least 16 atoms with one random atom removed. A set may use smaller strain and
σ (``sic-tetrahedral``, see :func:`structure_set`). Every random choice is drawn from
``numpy.random.default_rng([seed, crc32(label)])``, so a structure depends only
on ``(seed, label)``, not on the order or the other members of a set, except
that the σ of ``rattle-k`` and ``strain-rattle-k`` depends on k and on how many
of that kind the set has (k = 0 always has the smallest σ).

Train / held-out split (:func:`split_of`): ``ideal`` structures are always
``"train"``; any other label is ``"held-out"`` when the first 8 bytes of the
SHA-256 of the label, read as a big-endian integer, are divisible by 5 (about
20 %). The rule depends on the label only, not on the seed or the calculator,
so a label never changes sides and the two splits never overlap.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
from ase import Atoms
from ase.build import bulk

from ase_fcnet.phonopy_bridge import plane_spacings

__all__ = [
    "PROTOTYPES",
    "STRUCTURE_SETS",
    "beta_tin",
    "polytype",
    "prototype",
    "random_strain",
    "rattled",
    "split_of",
    "strained",
    "structure_rng",
    "structure_set",
    "variants",
]

STRAIN = 0.03
RATTLE_SIGMA = (0.02, 0.05)
VACANCY_MIN_ATOMS = 16

_LAYERS = {"A": (0.0, 0.0), "B": (1.0 / 3.0, 2.0 / 3.0), "C": (2.0 / 3.0, 1.0 / 3.0)}


def polytype(symbols: tuple[str, str], stacking: str, a: float) -> Atoms:
    """Hexagonal tetrahedral polytype (2H, 4H, 6H, ...) with ideal tetrahedra.

    Parameters
    ----------
    symbols : (str, str)
        Species of the lower and upper atom of each bilayer (``("Si", "C")``;
        ``("Si", "Si")`` for hexagonal-diamond Si).
    stacking : str
        Bilayer sequence over ``A``/``B``/``C`` (``"AB"`` = 2H, ``"ABCB"`` = 4H,
        ``"ABCACB"`` = 6H).
    a : float
        Hexagonal lattice constant in Å (cubic a / √2).

    Returns
    -------
    ase.Atoms
        2 * len(stacking) atoms; c = len(stacking) * a * sqrt(2/3), upper atom
        3/4 of a bilayer spacing above the lower one (bond length a*sqrt(3/8)).
    """
    h = a * np.sqrt(2.0 / 3.0)
    n = len(stacking)
    cell = np.array([[a, 0.0, 0.0], [-a / 2, a * np.sqrt(3.0) / 2, 0.0], [0.0, 0.0, n * h]])
    scaled = []
    for k, layer in enumerate(stacking):
        x, y = _LAYERS[layer]
        scaled += [(x, y, k / n), (x, y, (k + 0.75) / n)]
    return Atoms(symbols=list(symbols) * n, scaled_positions=scaled, cell=cell, pbc=True)


def beta_tin(symbol: str, a: float, c: float) -> Atoms:
    """Conventional β-tin (A5, I4_1/amd) cell.

    Parameters
    ----------
    symbol : str
        Element.
    a, c : float
        Tetragonal lattice constants in Å.

    Returns
    -------
    ase.Atoms
        4 atoms at (0,0,0), (0,½,¼), (½,½,½), (½,0,¾).
    """
    scaled = [(0, 0, 0), (0, 0.5, 0.25), (0.5, 0.5, 0.5), (0.5, 0, 0.75)]
    return Atoms(symbol * 4, scaled_positions=scaled, cell=np.diag([a, a, c]), pbc=True)


_A_SI, _A_C, _A_SIC = 5.431, 3.567, 4.360

#: Prototype name -> zero-argument builder.
PROTOTYPES = {
    "si-diamond": lambda: bulk("Si", "diamond", a=_A_SI, cubic=True),
    "si-hexdiamond": lambda: polytype(("Si", "Si"), "AB", _A_SI / np.sqrt(2)),
    "si-4h": lambda: polytype(("Si", "Si"), "ABCB", _A_SI / np.sqrt(2)),
    "si-betatin": lambda: beta_tin("Si", 4.686, 2.585),
    "c-diamond": lambda: bulk("C", "diamond", a=_A_C, cubic=True),
    "sic-3c": lambda: bulk("SiC", "zincblende", a=_A_SIC, cubic=True),
    "sic-2h": lambda: polytype(("Si", "C"), "AB", _A_SIC / np.sqrt(2)),
    "sic-4h": lambda: polytype(("Si", "C"), "ABCB", _A_SIC / np.sqrt(2)),
    "sic-6h": lambda: polytype(("Si", "C"), "ABCACB", _A_SIC / np.sqrt(2)),
    "sic-rocksalt": lambda: bulk("SiC", "rocksalt", a=4.03, cubic=True),
    "cu-fcc": lambda: bulk("Cu", "fcc", a=3.615, cubic=True),
    "cu-bcc": lambda: bulk("Cu", "bcc", a=2.87, cubic=True),
    "cu-hcp": lambda: bulk("Cu", "hcp", a=2.556, c=4.174),
}

# Set name -> list of (prototype, n_aniso, n_rattle, n_strain_rattle, n_vac).
_SETS: dict[str, list[tuple[str, int, int, int, int]]] = {
    "si": [
        ("si-diamond", 4, 6, 4, 3),
        ("si-hexdiamond", 3, 4, 3, 2),
        ("si-4h", 2, 3, 2, 1),
        ("si-betatin", 2, 3, 2, 1),
    ],
    "si-tetrahedral": [
        ("si-diamond", 8, 12, 8, 4),
        ("si-hexdiamond", 6, 8, 6, 3),
        ("si-4h", 5, 6, 5, 2),
    ],
    "sic": [
        ("si-diamond", 2, 3, 2, 1),
        ("c-diamond", 2, 3, 2, 1),
        ("sic-3c", 3, 5, 3, 2),
        ("sic-2h", 3, 4, 3, 2),
        ("sic-4h", 2, 3, 2, 1),
        ("sic-6h", 2, 3, 2, 1),
        ("sic-rocksalt", 1, 2, 1, 1),
    ],
    "sic-tetrahedral": [
        ("si-diamond", 4, 6, 4, 2),
        ("c-diamond", 4, 6, 4, 2),
        ("sic-3c", 6, 8, 6, 3),
        ("sic-2h", 5, 6, 5, 2),
        ("sic-4h", 4, 5, 4, 2),
        ("sic-6h", 3, 4, 3, 1),
    ],
    "cu": [("cu-fcc", 1, 1, 1, 1), ("cu-bcc", 1, 1, 0, 0), ("cu-hcp", 1, 1, 0, 0)],
}
# Set name -> (strain amplitude, (smallest, largest) rattle sigma in Å) where not the defaults.
# "sic-tetrahedral" keeps every pair at least 0.02 Å outside the cutoff-switching zones of
# Erhart-Albe Tersoff SiC (Si-Si second neighbours are 3.08 Å apart, the zone ends at 2.96 Å).
_AMPLITUDES: dict[str, tuple[float, tuple[float, float]]] = {"sic-tetrahedral": (0.01, (0.01, 0.02))}
#: Names accepted by :func:`structure_set`.
STRUCTURE_SETS = tuple(_SETS)


def prototype(name: str) -> Atoms:
    """Return a new copy of a named prototype (see the module docstring).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in PROTOTYPES:
        raise ValueError(f"unknown prototype {name!r}; known: {', '.join(PROTOTYPES)}")
    return PROTOTYPES[name]()


def structure_rng(seed: int, label: str) -> np.random.Generator:
    """The random generator of one structure: a function of ``(seed, label)`` only."""
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    """A copy with cell ``cell @ (1 + eps)`` and the atoms moved with it (``eps`` (3, 3), strain)."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def random_strain(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A symmetric (3, 3) strain with components uniform in ±``amplitude``."""
    eps = rng.uniform(-amplitude, amplitude, size=(3, 3))
    return np.triu(eps) + np.triu(eps, 1).T


def rattled(atoms: Atoms, sigma: float, rng: np.random.Generator) -> Atoms:
    """A copy with Gaussian displacements of standard deviation ``sigma`` (Å) on every atom."""
    out = atoms.copy()
    out.positions += rng.normal(0.0, sigma, size=out.positions.shape)
    return out


def _vacancy(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    reps = np.ones(3, dtype=int)
    while len(atoms) * reps.prod() < VACANCY_MIN_ATOMS:
        reps[np.argmin(reps * plane_spacings(atoms.cell.array))] += 1
    out = atoms.repeat(tuple(reps))
    del out[int(rng.integers(len(out)))]
    return out


def _sigma(k: int, n: int, sigma_range: tuple[float, float]) -> float:
    lo, hi = sigma_range
    return lo if n == 1 else lo + (hi - lo) * k / (n - 1)


def variants(
    name: str,
    seed: int,
    n_aniso: int = 2,
    n_rattle: int = 3,
    n_strain_rattle: int = 2,
    n_vac: int = 1,
    strain: float = STRAIN,
    sigma_range: tuple[float, float] = RATTLE_SIGMA,
) -> list[tuple[str, Atoms]]:
    """Ideal, strained, rattled and vacancy variants of one prototype.

    Parameters
    ----------
    name : str
        Prototype name (key of ``PROTOTYPES``).
    seed : int
        Seed; with the label it fixes every random choice.
    n_aniso, n_rattle, n_strain_rattle, n_vac : int
        Number of variants of each random kind (see the module docstring).
    strain : float
        Strain amplitude (dimensionless): the isotropic variants scale the
        lattice by ``1 ∓ strain``, random strain components are uniform in
        ``[-strain, strain]``.
    sigma_range : (float, float)
        Smallest and largest rattle σ, Å.

    Returns
    -------
    list of (str, ase.Atoms)
        ``(label, atoms)`` with labels ``f"{name}-{variant}"``, unique, usable
        as folder names; positions in Å, periodic cells.
    """
    base = prototype(name)
    out = [(f"{name}-ideal", base.copy())]
    percent = f"{100 * strain:g}"
    for tag, scale in ((f"iso-m{percent}", 1.0 - strain), (f"iso-p{percent}", 1.0 + strain)):
        out.append((f"{name}-{tag}", strained(base, (scale - 1.0) * np.eye(3))))
    for k in range(n_aniso):
        label = f"{name}-aniso-{k}"
        out.append((label, strained(base, random_strain(structure_rng(seed, label), strain))))
    for k in range(n_rattle):
        label = f"{name}-rattle-{k}"
        sigma = _sigma(k, n_rattle, sigma_range)
        out.append((label, rattled(base, sigma, structure_rng(seed, label))))
    for k in range(n_strain_rattle):
        label = f"{name}-strain-rattle-{k}"
        rng = structure_rng(seed, label)
        deformed = strained(base, random_strain(rng, strain))
        out.append((label, rattled(deformed, _sigma(k, n_strain_rattle, sigma_range), rng)))
    for k in range(n_vac):
        label = f"{name}-vac-{k}"
        out.append((label, _vacancy(base, structure_rng(seed, label))))
    return out


def structure_set(name: str, seed: int = 0) -> list[tuple[str, Atoms]]:
    """Named structure set: ``"si"``, ``"si-tetrahedral"``, ``"sic"``, ``"sic-tetrahedral"`` or ``"cu"``.

    ``"si"``: diamond, hexagonal-diamond, 4H and β-tin Si with variants (for
    Stillinger–Weber), 57 structures. ``"si-tetrahedral"``: the tetrahedral
    ones only (diamond, hexagonal diamond, 4H), with about twice as many random
    variants each, 82 structures. ``"sic"``: diamond Si and C, 3C/2H/4H/6H and rock-salt
    SiC with variants (for Tersoff), 83 structures. ``"sic-tetrahedral"``: diamond Si and C,
    3C/2H/4H/6H SiC with more variants, 117 structures, but with strain amplitude 0.01 and
    rattle σ in [0.01, 0.02] Å, so that no pair enters the cutoff-switching zone of Tersoff SiC
    (labels ``iso-m1`` / ``iso-p1``). ``"cu"``: fcc/bcc/hcp Cu (for EMT tests).

    Parameters
    ----------
    name : str
        Set name, one of ``STRUCTURE_SETS``.
    seed : int
        Random seed; the same ``(name, seed)`` always gives identical structures.

    Returns
    -------
    list of (str, ase.Atoms)
        Unique labels with structures; use :func:`split_of` for the split.

    Raises
    ------
    ValueError
        For an unknown set name.
    """
    if name not in _SETS:
        raise ValueError(f"unknown structure set {name!r}; known: {', '.join(STRUCTURE_SETS)}")
    out: list[tuple[str, Atoms]] = []
    strain, sigma_range = _AMPLITUDES.get(name, (STRAIN, RATTLE_SIGMA))
    for proto, *counts in _SETS[name]:
        out += variants(proto, seed, *counts, strain=strain, sigma_range=sigma_range)
    return out


def split_of(label: str) -> str:
    """``"train"`` or ``"held-out"`` for a structure label (rule in the module docstring)."""
    if label.endswith("-ideal"):
        return "train"
    digest = hashlib.sha256(label.encode()).digest()
    return "held-out" if int.from_bytes(digest[:8], "big") % 5 == 0 else "train"
