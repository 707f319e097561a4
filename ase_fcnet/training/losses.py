"""Loss functions of a batch of B structures with N atoms in all.

Every function returns a scalar ``Σ_s w_s l_s / normalizer``: a per-structure
loss ``l_s`` weighted by ``w_s`` (0 for a structure without that label; its
target entries must then be finite, e.g. zero) and divided by ``normalizer``
(default ``Σ_s w_s``). In data-parallel training each process passes the
normalizer of the *global* batch, so that the sum over processes of the local
losses is the loss of the global batch.

Force-constant losses work on Hessian-vector products only, never the full
Hessian: ``pred`` is ``H·v`` for K probe vectors v (each vector probes every
structure of the block-diagonal batch at once), ``target`` the same rows of
the reference force constants. ``counts[s]`` is how many of the K probe rows
(or P probe blocks) carry a target in structure s (the rest are zero vectors
with zero targets).
"""
from __future__ import annotations

import torch

__all__ = [
    "energy_loss", "forces_loss", "stress_loss", "fc_rows_loss", "fc_frobenius_loss",
    "fc_spectral_loss", "weighted_sum", "per_structure_sum", "mass_scale",
]


def per_structure_sum(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Sum per-atom values over the atoms of each structure.

    Parameters
    ----------
    values : Tensor, shape (N,)
    batch : Tensor, shape (N,), long — structure index of each atom
    n_structures : int
        B.

    Returns
    -------
    Tensor, shape (B,)
    """
    out = torch.zeros(n_structures, dtype=values.dtype, device=values.device)
    return out.index_add(0, batch, values)


def weighted_sum(per_structure: torch.Tensor, weights: torch.Tensor,
                 normalizer: float | torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_s w_s l_s / normalizer``; 0 when the normalizer is 0 (nothing labelled).

    Parameters
    ----------
    per_structure : Tensor, shape (B,)
    weights : Tensor, shape (B,)
    normalizer : float or 0-d Tensor, optional
        Default ``Σ_s w_s``.

    Returns
    -------
    Tensor, shape ()
    """
    norm = float(weights.sum() if normalizer is None else normalizer)
    total = (weights.to(per_structure.dtype) * per_structure).sum()
    return total / norm if norm > 0 else total * 0.0


def energy_loss(pred: torch.Tensor, target: torch.Tensor, n_atoms: torch.Tensor,
                weights: torch.Tensor, normalizer=None) -> torch.Tensor:
    """Mean squared error of the energy per atom, (eV/atom)².

    Parameters
    ----------
    pred, target : Tensor, shape (B,), eV — total energies
    n_atoms : Tensor, shape (B,) — atoms per structure
    weights : Tensor, shape (B,)
    normalizer : float, optional

    Returns
    -------
    Tensor, shape (), (eV/atom)² — ``Σ_s w_s ((E_s − E_s^ref)/n_s)² / normalizer``
    """
    per = ((pred - target) / n_atoms.to(pred.dtype)) ** 2
    return weighted_sum(per, weights, normalizer)


def forces_loss(pred: torch.Tensor, target: torch.Tensor, batch: torch.Tensor,
                weights: torch.Tensor, normalizer=None) -> torch.Tensor:
    """Mean squared force error, (eV/Å)²; each structure's mean over its 3·n_s components.

    Parameters
    ----------
    pred, target : Tensor, shape (N, 3), eV/Å
    batch : Tensor, shape (N,), long
    weights : Tensor, shape (B,)
    normalizer : float, optional

    Returns
    -------
    Tensor, shape (), (eV/Å)²
    """
    b = weights.shape[0]
    n_atoms = per_structure_sum(torch.ones_like(batch, dtype=pred.dtype), batch, b)
    sq = per_structure_sum(((pred - target) ** 2).sum(dim=1), batch, b)
    return weighted_sum(sq / (3.0 * n_atoms.clamp(min=1)), weights, normalizer)


def stress_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                normalizer=None) -> torch.Tensor:
    """Mean squared error of the 6 Voigt stress components, (eV/Å³)².

    Parameters
    ----------
    pred, target : Tensor, shape (B, 6), eV/Å³
    weights : Tensor, shape (B,)
    normalizer : float, optional

    Returns
    -------
    Tensor, shape (), (eV/Å³)²
    """
    return weighted_sum(((pred - target) ** 2).mean(dim=1), weights, normalizer)


def mass_scale(vectors: torch.Tensor, masses: torch.Tensor, batch: torch.Tensor,
               n_structures: int, power: float, reference: float) -> torch.Tensor:
    """Mass weights ``(M² / (m_i m_j))^(p/2)`` of the entries of the probed rows.

    Entry j of product k (``(H·v_k)_j``) gets the weight of the pair (probed
    atom i, atom j). The probed atom's mass is ``Σ_i |v_k,i|² m_i`` over the
    atoms of j's structure: exactly m_i for ``block`` and ``row`` probes (one
    atom each), the |v|²-weighted mean mass of a ``random`` probe. Entries of
    a structure that product k does not probe (zero vector) get weight 1;
    their errors are zero anyway.

    Parameters
    ----------
    vectors : Tensor, shape (K, N, 3) — unit probe vectors (zero outside their structure)
    masses : Tensor, shape (N,), amu
    batch : Tensor, shape (N,), long
    n_structures : int — B
    power : float — p
    reference : float — M, amu

    Returns
    -------
    Tensor, shape (K, N, 1), dimensionless
    """
    weight = (vectors ** 2).sum(dim=-1)
    probe_mass = torch.zeros(vectors.shape[0], n_structures, dtype=vectors.dtype,
                             device=vectors.device).index_add(1, batch, weight * masses)
    m_i = probe_mass[:, batch]
    probed = m_i > 0
    ratio = reference ** 2 / (torch.where(probed, m_i, torch.ones_like(m_i)) * masses)
    return torch.where(probed, ratio ** (0.5 * power), torch.ones_like(m_i)).unsqueeze(-1)


def _per_probe_entry(values: torch.Tensor, batch: torch.Tensor, counts: torch.Tensor,
                     entries_per_atom: int) -> torch.Tensor:
    """Per-structure mean of ``values`` (K, N, ...) over valid probes and atom entries."""
    b = counts.shape[0]
    per_atom = values.reshape(values.shape[0], values.shape[1], -1).sum(dim=(0, 2))
    n_atoms = per_structure_sum(torch.ones_like(per_atom), batch, b)
    total = per_structure_sum(per_atom, batch, b)
    denom = counts.to(values.dtype) * n_atoms * entries_per_atom
    return total / denom.clamp(min=1)


def fc_rows_loss(pred: torch.Tensor, target: torch.Tensor, batch: torch.Tensor,
                 counts: torch.Tensor, weights: torch.Tensor, metric: str = "mse",
                 normalizer=None) -> torch.Tensor:
    """Element-wise error of probed force-constant rows.

    Parameters
    ----------
    pred, target : Tensor, shape (K, N, 3), eV/Å² — ``H·v`` for unit probes v and
        the reference ``Φ·v``
    batch : Tensor, shape (N,), long
    counts : Tensor, shape (B,) — valid probe rows (vectors) per structure
    weights : Tensor, shape (B,)
    metric : {"mse", "mae"}
    normalizer : float, optional

    Returns
    -------
    Tensor, shape () — (eV/Å²)² for mse, eV/Å² for mae; each structure's mean
    over its ``counts[s] · n_s · 3`` probed entries.
    """
    diff = pred - target
    if metric == "mse":
        err = diff ** 2
    elif metric == "mae":
        err = diff.abs()
    else:
        raise ValueError(f"metric must be 'mse' or 'mae', got {metric!r}")
    return weighted_sum(_per_probe_entry(err, batch, counts, 3), weights, normalizer)


def fc_frobenius_loss(pred: torch.Tensor, target: torch.Tensor, batch: torch.Tensor,
                      counts: torch.Tensor, weights: torch.Tensor, normalizer=None) -> torch.Tensor:
    """Mean Frobenius norm of the 3×3 block errors ``‖Φ_pred_ij − Φ_ref_ij‖_F``.

    Parameters
    ----------
    pred, target : Tensor, shape (P, N, 3, 3), eV/Å² — for probe atom i_p of
        each structure, the blocks ``Φ[i_p, j]`` for every atom j of that structure
    batch : Tensor, shape (N,), long
    counts : Tensor, shape (B,) — valid probe atoms per structure
    weights : Tensor, shape (B,)
    normalizer : float, optional

    Returns
    -------
    Tensor, shape (), eV/Å² — each structure's mean over its ``counts[s] · n_s`` blocks
    """
    norms = torch.linalg.matrix_norm(pred - target, ord="fro")
    return weighted_sum(_per_probe_entry(norms, batch, counts, 1), weights, normalizer)


def fc_spectral_loss(pred: torch.Tensor, target: torch.Tensor, batch: torch.Tensor,
                     counts: torch.Tensor, weights: torch.Tensor, normalizer=None) -> torch.Tensor:
    """Squared differences of the sorted eigenvalues of the symmetrised 3×3 blocks.

    For each block, ``λ(A)`` are the ascending eigenvalues of ``(A + Aᵀ)/2``;
    the block's error is ``mean_k (λ_k(Φ_pred_ij) − λ_k(Φ_ref_ij))²``. It is
    invariant to rotations of the blocks, so it weighs the stiffness spectrum
    of each interaction independently of its orientation.

    Parameters
    ----------
    pred, target : Tensor, shape (P, N, 3, 3), eV/Å² (as :func:`fc_frobenius_loss`)
    batch : Tensor, shape (N,), long
    counts : Tensor, shape (B,)
    weights : Tensor, shape (B,)
    normalizer : float, optional

    Returns
    -------
    Tensor, shape (), (eV/Å²)² — each structure's mean over its ``counts[s] · n_s`` blocks
    """
    lam_pred = torch.linalg.eigvalsh(0.5 * (pred + pred.transpose(-1, -2)))
    lam_ref = torch.linalg.eigvalsh(0.5 * (target + target.transpose(-1, -2)))
    err = ((lam_pred - lam_ref) ** 2).mean(dim=-1)
    return weighted_sum(_per_probe_entry(err, batch, counts, 1), weights, normalizer)
