"""Faster set-up of phonopy's supercell symmetry, with phonopy's own results.

Constructing a :class:`phonopy.Phonopy` finds the space group of the supercell
and, for each of its operations, the permutation of the supercell's atoms.
A 216-atom rock-salt supercell has 5184 operations (48 rotations times 108
pure translations), and phonopy matches the atoms of each one separately in
Python; that took about as long as the analytic force constants themselves.

Here the permutations come from the structure of the space group: operations
with the same rotation differ by a pure translation, so the permutation of
operation ``(R, t)`` is that of one representative ``(R, t_R)`` followed by
that of the translation ``t − t_R``. Only one match per rotation and per
distinct translation is needed (a periodic k-d tree over fractional
coordinates), and the rest is array indexing. Every result is checked: each
matched atom lies within ``symprec`` (Å) of its image, with the errors of the
two factors added, and each permutation is a bijection within each atomic
type. Anything that fails the check falls back to phonopy's own function, so
the permutations are always the ones phonopy would find.

The site symmetry of an atom (which phonopy's displacement generation and
force-constant distribution ask for) is likewise found for all operations at
once rather than in a Python loop, and the Cartesian form of each operation's
rotation, which the distribution computes once per operation, is computed
once per distinct rotation. :func:`fast_phonopy_symmetry` swaps these
functions into phonopy for the duration of a ``with`` block.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["atomic_permutations", "unique_rotations", "site_rotations", "fast_phonopy_symmetry"]

#: Fractional resolution at which translations are grouped (dimensionless).
_TRANSLATION_GRID = 1e6


def _wrap(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates in [0, 1)."""
    out = frac - np.floor(frac)
    out[out >= 1.0] -= 1.0
    return out


def _distance(diff: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Length (Å) of fractional differences brought into [-1/2, 1/2]; shape diff.shape[:-1]."""
    diff = diff - np.rint(diff)
    return np.sqrt(((diff @ lattice.T) ** 2).sum(axis=-1))


def _match(positions: np.ndarray, targets: np.ndarray, types: np.ndarray,
           lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target, the nearest atom of the same type, and how far it is.

    Parameters
    ----------
    positions : ndarray, shape (n, 3) — fractional
    targets : ndarray, shape (m, n, 3) — fractional images of the atoms
    types : ndarray, shape (n,), int
    lattice : ndarray, shape (3, 3), Å — lattice vectors as columns

    Returns
    -------
    perm : ndarray, shape (m, n), int64 — ``positions[perm[k, i]] ≈ targets[k, i]``
    error : ndarray, shape (m,), Å — largest distance in each row, inf if a row
        is not a bijection
    """
    m, n = targets.shape[:2]
    perm = np.empty((m, n), dtype=np.int64)
    for t in np.unique(types):
        idx = np.flatnonzero(types == t)
        tree = cKDTree(_wrap(positions[idx]), boxsize=1.0)
        _, nearest = tree.query(_wrap(targets[:, idx]).reshape(-1, 3))
        perm[:, idx] = idx[nearest.reshape(m, len(idx))]
    error = _distance(targets - positions[perm], lattice).max(axis=1)
    bijective = (np.sort(perm, axis=1) == np.arange(n)).all(axis=1)
    return perm, np.where(bijective, error, np.inf)


def atomic_permutations(positions, rotations, translations, lattice, symprec: float,
                        types=None) -> np.ndarray | None:
    """Atomic permutations of space-group operations, or None if not verified.

    Same contract as ``phonopy.structure.cells.compute_all_sg_permutations``:
    ``positions[perm[k]] ≡ positions @ rotations[k].T + translations[k]``
    modulo the lattice, atoms matched within their type.

    Parameters
    ----------
    positions : array_like, shape (n, 3) — fractional
    rotations : array_like, shape (n_ops, 3, 3), int — in fractional coordinates
    translations : array_like, shape (n_ops, 3) — fractional
    lattice : array_like, shape (3, 3), Å — lattice vectors as columns
    symprec : float, Å
    types : array_like, shape (n,), int, optional

    Returns
    -------
    ndarray, shape (n_ops, n), int64, or None when some operation could not be
    matched within ``symprec`` (the caller should then use phonopy's function)
    """
    positions = np.asarray(positions, dtype=float)
    rotations = np.asarray(rotations)
    translations = np.asarray(translations, dtype=float)
    lattice = np.asarray(lattice, dtype=float)
    n = len(positions)
    types = np.zeros(n, dtype=np.int64) if types is None else np.asarray(types)
    if len(rotations) == 0 or n == 0:
        return None
    _, first, which = np.unique(rotations.reshape(len(rotations), 9), axis=0,
                                return_index=True, return_inverse=True)
    which = which.ravel()
    images = positions @ rotations[first].astype(float).transpose(0, 2, 1)
    rep_perm, rep_error = _match(positions, images + translations[first][:, None, :], types,
                                 lattice)
    shift = translations - translations[first][which]
    shift -= np.rint(shift)
    keys = np.rint(shift * _TRANSLATION_GRID).astype(np.int64) % int(_TRANSLATION_GRID)
    _, first_shift, shift_idx = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    shift_idx = shift_idx.ravel()
    shifts = shift[first_shift]
    shift_perm, shift_error = _match(positions, positions[None] + shifts[:, None, :], types,
                                     lattice)
    grouping = _distance(shift - shifts[shift_idx], lattice)
    bound = rep_error[which] + shift_error[shift_idx] + grouping
    if not np.all(bound < symprec):
        return None
    return np.ascontiguousarray(shift_perm[shift_idx[:, None], rep_perm[which]])


def unique_rotations(rotations) -> np.ndarray:
    """Distinct rotation matrices in order of first appearance.

    Parameters
    ----------
    rotations : array_like, shape (n, 3, 3), int

    Returns
    -------
    ndarray, shape (n_unique, 3, 3), int64, C order — as
    ``phonopy.structure.symmetry.collect_unique_rotations``
    """
    rotations = np.asarray(rotations, dtype=np.int64)
    if len(rotations) == 0:
        return np.zeros((0, 3, 3), dtype=np.int64)
    _, first = np.unique(rotations.reshape(len(rotations), 9), axis=0, return_index=True)
    return np.ascontiguousarray(rotations[np.sort(first)])


def site_rotations(position, lattice_rows, rotations, translations, symprec: float) -> np.ndarray:
    """Rotations of the operations that map one site onto itself.

    Parameters
    ----------
    position : array_like, shape (3,) — fractional
    lattice_rows : array_like, shape (3, 3), Å — lattice vectors as rows
    rotations : array_like, shape (n_ops, 3, 3), int
    translations : array_like, shape (n_ops, 3) — fractional
    symprec : float, Å

    Returns
    -------
    ndarray, shape (n_site, 3, 3), int64 — in operation order, as
    ``phonopy.structure.symmetry.Symmetry.get_site_symmetry``
    """
    position = np.asarray(position, dtype=float)
    rotations = np.asarray(rotations, dtype=np.int64)
    images = rotations.astype(float) @ position + np.asarray(translations, dtype=float)
    fixed = _distance(position - images, np.asarray(lattice_rows, dtype=float).T) < symprec
    return np.array(rotations[fixed], dtype=np.int64)


def _memoized(transform):
    """``transform(rot, mat)`` remembering its results for repeated array arguments.

    Phonopy turns every supercell operation's rotation into Cartesian form
    (``L R L⁻¹``) when it distributes force constants; a 216-atom rock-salt
    supercell has 5184 operations but 48 distinct rotations. Results are
    computed by phonopy's own function, so they are bitwise its own.
    """
    cache: dict = {}

    def cached(rot, mat):
        rot_a, mat_a = np.asarray(rot), np.asarray(mat)
        key = (rot_a.dtype.str, rot_a.shape, rot_a.tobytes(), mat_a.dtype.str, mat_a.shape,
               mat_a.tobytes())
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[key] = transform(rot, mat)
        return cache[key].copy()

    return cached


_LOCK = threading.Lock()
_ACTIVE = {"depth": 0, "saved": []}


def _patches() -> list[tuple[object, str, object]]:
    """(module, attribute, replacement) for each phonopy function replaced."""
    from phonopy.structure import cells, symmetry

    original = getattr(cells, "compute_all_sg_permutations", None)
    if original is None:
        return []

    def permutations(positions, rotations, translations, lattice, symprec, types=None,
                     *args, **kwargs):
        perms = atomic_permutations(positions, rotations, translations, lattice, symprec, types)
        if perms is None:
            return original(positions, rotations, translations, lattice, symprec, types,
                            *args, **kwargs)
        return perms

    out = [(mod, "compute_all_sg_permutations", permutations) for mod in (cells, symmetry)
           if getattr(mod, "compute_all_sg_permutations", None) is original]
    if hasattr(symmetry, "collect_unique_rotations"):
        out.append((symmetry, "collect_unique_rotations", unique_rotations))
    from phonopy.harmonic import force_constants

    transform = getattr(force_constants, "similarity_transformation", None)
    if transform is not None:
        out.append((force_constants, "similarity_transformation", _memoized(transform)))
    if hasattr(symmetry.Symmetry, "_get_site_symmetry"):
        def site(self, atom_number, lattice, positions, rotations, translations, symprec):
            return site_rotations(positions[atom_number], lattice, rotations, translations,
                                  symprec)

        out.append((symmetry.Symmetry, "_get_site_symmetry", site))
    return out


@contextmanager
def fast_phonopy_symmetry():
    """Use :func:`atomic_permutations`, :func:`unique_rotations` and
    :func:`site_rotations` inside phonopy, and remember its Cartesian rotations.

    Inside the block, phonopy's symmetry set-up (``Phonopy(...)``,
    ``Symmetry(...)``, ``Primitive(...)``), its site-symmetry queries
    (``generate_displacements``, ``produce_force_constants``) and its
    force-constant distribution use the functions of this module; the
    originals are restored when the last nested block exits. Results are
    phonopy's own (verified above, with phonopy's function as the fallback),
    so other threads that happen to call phonopy meanwhile are not affected.
    """
    with _LOCK:
        if _ACTIVE["depth"] == 0:
            saved = []
            for module, name, replacement in _patches():
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, replacement)
            _ACTIVE["saved"] = saved
        _ACTIVE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE["depth"] -= 1
            if _ACTIVE["depth"] == 0:
                for module, name, original in _ACTIVE["saved"]:
                    setattr(module, name, original)
                _ACTIVE["saved"] = []
