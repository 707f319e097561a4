"""The loss terms of training, in one table.

Each :class:`LossTerm` says what a term is called (in the config and the
metrics), which label of a sample it fits, which model output it compares,
whether it needs whole 3×3 blocks of probed Hessian rows, and how it is
computed from a batch. The trainer, the objective, the dataset weights and
the config checks all read :data:`LOSS_TERMS`; adding a term is one entry here,
its function in :mod:`ase_fcnet.training.losses` and its weight field in
:class:`ase_fcnet.training.config.LossConfig` (named like the term).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ase_fcnet.phonopy_bridge import rows_to_force_constants
from ase_fcnet.training import losses

if TYPE_CHECKING:
    from ase_fcnet.training.config import LossConfig
    from ase_fcnet.training.dataset import Batch

__all__ = ["LOSS_TERMS", "LossTerm", "TermInput", "needs_probes"]


@dataclass(frozen=True)
class TermInput:
    """What a term's function sees.

    Attributes
    ----------
    out : dict — model outputs: ``energy`` (B,) eV, ``forces`` (N, 3) eV/Å,
        ``stress`` (B, 6) eV/Å³, ``hvp`` (K, N, 3) eV/Å² (see
        :func:`ase_fcnet.model.energy_forces_stress`)
    batch : Batch
    cfg : LossConfig
    weights : Tensor, shape (B,) — the term's per-structure weights
    normalizer : float — ``Σ_s w_s`` over the global batch
    fc_pred, fc_ref : Tensor, shape (K, N, 3), eV/Å², or None — probed rows of
        model and reference, mass-scaled when ``cfg.fc_mass_power > 0``
    """

    out: dict[str, torch.Tensor]
    batch: Batch
    cfg: LossConfig
    weights: torch.Tensor
    normalizer: float
    fc_pred: torch.Tensor | None
    fc_ref: torch.Tensor | None


@dataclass(frozen=True)
class LossTerm:
    """One loss term.

    Attributes
    ----------
    name : str — the :class:`LossConfig` weight key, and ``<split>_<name>`` in the metrics
    label : str — the :class:`~ase_fcnet.data.Sample` label it fits
        (energy, forces, stress, force_constants)
    output : str — the model output it needs: ``energy``, ``forces``,
        ``stress`` or ``hvp`` (Hessian-vector products of the probe vectors)
    blocks : bool — needs whole 3×3 blocks (``fc_probe_mode: block``)
    loss : callable(TermInput) -> Tensor, shape ()
    """

    name: str
    label: str
    output: str
    blocks: bool
    loss: Callable[[TermInput], torch.Tensor]

    @property
    def probes(self) -> bool:
        """Whether the term needs Hessian-vector products of probe vectors."""
        return self.output == "hvp"


def _fc_blocks(fn):
    def loss(x: TermInput) -> torch.Tensor:
        return fn(rows_to_force_constants(x.fc_pred), rows_to_force_constants(x.fc_ref),
                  x.batch.graph.batch, x.batch.fc_counts, x.weights, x.normalizer)
    return loss


#: Every loss term, in the order they are logged (the order is part of the
#: checkpoint's running statistics: append new terms at the end).
LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm("energy", "energy", "energy", False,
             lambda x: losses.energy_loss(x.out["energy"], x.batch.energy, x.batch.n_atoms,
                                          x.weights, x.normalizer)),
    LossTerm("forces", "forces", "forces", False,
             lambda x: losses.forces_loss(x.out["forces"], x.batch.forces, x.batch.graph.batch,
                                          x.weights, x.normalizer)),
    LossTerm("stress", "stress", "stress", False,
             lambda x: losses.stress_loss(x.out["stress"], x.batch.stress, x.weights,
                                          x.normalizer)),
    LossTerm("force_constants", "force_constants", "hvp", False,
             lambda x: losses.fc_rows_loss(x.fc_pred, x.fc_ref, x.batch.graph.batch,
                                           x.batch.fc_rows, x.weights, x.cfg.fc_metric,
                                           x.normalizer)),
    LossTerm("fc_frobenius", "force_constants", "hvp", True, _fc_blocks(losses.fc_frobenius_loss)),
    LossTerm("fc_spectral", "force_constants", "hvp", True, _fc_blocks(losses.fc_spectral_loss)),
)


def needs_probes(cfg: LossConfig) -> bool:
    """Whether a term with a positive weight needs Hessian-vector products of probes."""
    return any(t.probes and getattr(cfg, t.name) > 0 for t in LOSS_TERMS)

