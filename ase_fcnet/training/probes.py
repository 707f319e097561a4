"""Random probes of the force-constant rows: unit vectors v and reference rows Φ·v.

A probe is a direction v over the atoms of one structure (shape (N, 3),
dimensionless, unit length); the model gives ``H·v`` by one Hessian-vector
product and the reference gives ``Φ·v`` from its labelled rows. Because the
reference lists rows only for the atoms ``fc_atoms``, v is non-zero only on
those atoms (``Φ`` is symmetric, so ``(Φ·v)_j = Σ_i v_i · Φ[i, j]``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MODES = ("block", "row", "random")


def sample_probes(fc_atoms: np.ndarray, force_constants: np.ndarray, mode: str, n_probes: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Probe vectors of one structure and the matching reference rows.

    Parameters
    ----------
    fc_atoms : ndarray, shape (M,), int — atoms whose rows are labelled
    force_constants : ndarray, shape (M, N, 3, 3), eV/Å²
    mode : {"block", "row", "random"}
        ``block``: ``min(n_probes, M)`` distinct labelled atoms, each probed in
        all 3 Cartesian directions (vector ``3p + α`` is ``e_{i_p, α}``), so the
        products hold whole 3×3 blocks ``Φ[i_p, j]``; ``row``: ``min(n_probes,
        3M)`` distinct single rows ``e_{i, α}``; ``random``: ``n_probes`` random
        unit vectors over all labelled rows (Gaussian coefficients, normalised).
    n_probes : int
    rng : numpy.random.Generator

    Returns
    -------
    vectors : ndarray, shape (K, N, 3) — unit probe vectors
    targets : ndarray, shape (K, N, 3), eV/Å² — reference ``Φ·v``
    count : int — probes (block: atoms, so K = 3·count; otherwise K = count)
    """
    m, n = force_constants.shape[:2]
    if mode == "block":
        picks = np.sort(rng.choice(m, size=min(n_probes, m), replace=False))
        vectors = np.zeros((3 * len(picks), n, 3))
        targets = np.empty((3 * len(picks), n, 3))
        for p, a in enumerate(picks):
            vectors[3 * p: 3 * p + 3, fc_atoms[a], :] = np.eye(3)
            targets[3 * p: 3 * p + 3] = force_constants[a].transpose(1, 0, 2)
        return vectors, targets, len(picks)
    if mode == "row":
        picks = np.sort(rng.choice(3 * m, size=min(n_probes, 3 * m), replace=False))
        vectors = np.zeros((len(picks), n, 3))
        targets = np.empty((len(picks), n, 3))
        for k, r in enumerate(picks):
            a, alpha = divmod(int(r), 3)
            vectors[k, fc_atoms[a], alpha] = 1.0
            targets[k] = force_constants[a, :, alpha, :]
        return vectors, targets, len(picks)
    if mode == "random":
        coeff = rng.standard_normal((n_probes, m, 3))
        coeff /= np.linalg.norm(coeff.reshape(n_probes, -1), axis=1)[:, None, None]
        vectors = np.zeros((n_probes, n, 3))
        vectors[:, fc_atoms, :] = coeff
        targets = np.einsum("kma,mjab->kjb", coeff, force_constants)
        return vectors, targets, n_probes
    raise ValueError(f"probe mode must be one of {MODES}, got {mode!r}")


def stack_probes(per_structure: Sequence[tuple[np.ndarray, np.ndarray, int] | None],
                 n_atoms: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Probe vectors of a batch: structure s's probes placed on its atoms.

    Parameters
    ----------
    per_structure : sequence of (vectors (K_s, n_s, 3), targets (K_s, n_s, 3), count) or None
        None for a structure without force-constant labels.
    n_atoms : sequence of int — n_s

    Returns
    -------
    vectors : ndarray, shape (K, N, 3) with K = max K_s (zero-padded)
    targets : ndarray, shape (K, N, 3), eV/Å²
    counts : ndarray, shape (B,), int — probes per structure (0 when unlabelled)
    rows : ndarray, shape (B,), int — probe vectors K_s per structure
    """
    k_max = max((p[0].shape[0] for p in per_structure if p is not None), default=0)
    total = int(sum(n_atoms))
    vectors = np.zeros((k_max, total, 3))
    targets = np.zeros((k_max, total, 3))
    counts = np.zeros(len(n_atoms), dtype=np.int64)
    rows = np.zeros(len(n_atoms), dtype=np.int64)
    start = 0
    for s, (probe, n) in enumerate(zip(per_structure, n_atoms)):
        if probe is not None:
            v, t, c = probe
            vectors[: v.shape[0], start: start + n] = v
            targets[: v.shape[0], start: start + n] = t
            counts[s], rows[s] = c, v.shape[0]
        start += n
    return vectors, targets, counts, rows
