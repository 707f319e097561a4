"""The weighted training loss of a batch, and error sums for the metrics."""
from __future__ import annotations

import torch

from ase_fcnet.model.derivatives import energy_forces_stress
from ase_fcnet.training import losses
from ase_fcnet.training.config import LossConfig
from ase_fcnet.training.dataset import Batch
from ase_fcnet.training.terms import LOSS_TERMS, TermInput, needs_probes

#: Loss term names (:data:`~ase_fcnet.training.terms.LOSS_TERMS`), in the order they are logged.
TERMS = tuple(t.name for t in LOSS_TERMS)
#: Error sums (sum, count) kept for metrics: MAE of energy/atom (eV), forces (eV/Å),
#: probed force-constant entries (eV/Å²).
ERRORS = ("energy_mae", "forces_mae", "fc_mae")
#: Entries of the statistics vector of a step (summed over processes).
STATS = ("loss", *TERMS, *(f"{e}_{k}" for e in ERRORS for k in ("sum", "count")))
#: Factors to the reported units: energy meV/atom, forces eV/Å, force constants eV/Å².
ERROR_UNITS = {"energy_mae": 1000.0, "forces_mae": 1.0, "fc_mae": 1.0}


def active_terms(cfg: LossConfig) -> list[str]:
    """Loss terms with a positive weight."""
    return [t for t in TERMS if getattr(cfg, t) > 0]


def batch_loss(model: torch.nn.Module, batch: Batch, cfg: LossConfig,
               normalizers: dict[str, float], create_graph: bool = True
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted loss of a batch.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture)
    batch : Batch
    cfg : LossConfig
        Weights of the terms and the element-wise force-constant metric.
    normalizers : dict term → float
        ``Σ_s w_s`` of each term over the *global* batch (see :mod:`losses`).
    create_graph : bool
        Keep the graph for ``backward`` (False for validation).

    Returns
    -------
    total : Tensor, shape () — ``Σ_t weight_t · term_t`` (dimensionless)
    terms : dict term → Tensor, shape () — unweighted terms of :data:`TERMS`
        that have a positive weight, in their own units
    errors : dict name → Tensor, shape (2,) — (sum of absolute errors, count)
        for the names in :data:`ERRORS`
    """
    terms_on = active_terms(cfg)
    vectors = batch.vectors if needs_probes(cfg) else None
    stress_on = "stress" in terms_on and bool(batch.weights["stress"].sum() > 0)
    out = energy_forces_stress(model, batch.graph, forces=True, stress=stress_on,
                               create_graph=create_graph, vectors=vectors)
    hvp = out.get("hvp")
    fc_pred, fc_ref = hvp, batch.fc_targets
    if hvp is not None and cfg.fc_mass_power > 0:
        scale = losses.mass_scale(batch.vectors, batch.masses, batch.graph.batch,
                                  batch.n_atoms.shape[0], cfg.fc_mass_power, cfg.fc_mass_reference)
        fc_pred, fc_ref = hvp * scale, fc_ref * scale
    terms: dict[str, torch.Tensor] = {}
    zero = out["energy"].sum() * 0.0
    for term in LOSS_TERMS:
        if term.name not in terms_on:
            continue
        if term.output not in out:  # stress unlabelled in this batch, or no probes
            terms[term.name] = zero
            continue
        terms[term.name] = term.loss(TermInput(out, batch, cfg, batch.weights[term.name],
                                               normalizers[term.name], fc_pred, fc_ref))
    total = sum((getattr(cfg, t) * terms[t] for t in terms), zero)
    return total, terms, _errors(out, batch, hvp)


def _errors(out: dict, batch: Batch, hvp: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """(sum |error|, count) of energy per atom, force components and probed FC entries."""
    with torch.no_grad():
        g = batch.graph
        has_e = batch.weights["energy"] > 0
        de = ((out["energy"] - batch.energy) / batch.n_atoms).abs()[has_e]
        has_f = (batch.weights["forces"] > 0)[g.batch]
        df = (out["forces"] - batch.forces).abs()[has_f]
        errors = {"energy_mae": torch.stack([de.sum(), de.new_tensor(de.numel())]),
                  "forces_mae": torch.stack([df.sum(), df.new_tensor(df.numel())])}
        if hvp is None:
            errors["fc_mae"] = de.new_zeros(2)
        else:
            n_atoms = torch.zeros_like(batch.n_atoms).index_add(
                0, g.batch, torch.ones_like(g.batch, dtype=batch.n_atoms.dtype))
            count = (batch.fc_rows.to(n_atoms.dtype) * n_atoms * 3).sum()
            errors["fc_mae"] = torch.stack([(hvp - batch.fc_targets).abs().sum(), count])
        return errors


def stats_vector(total: torch.Tensor, terms: dict, errors: dict) -> torch.Tensor:
    """The values of :data:`STATS` of one batch, detached, Tensor shape (len(STATS),)."""
    values = [total.detach()] + [terms[t].detach() if t in terms else total.new_zeros(())
                                 for t in TERMS]
    values += [v for e in ERRORS for v in errors[e]]
    return torch.stack([v.to(total.dtype) for v in values])


def summarize(stats: torch.Tensor, n_steps: int, prefix: str, cfg: LossConfig,
              labelled: dict[str, float] | None = None) -> dict[str, float]:
    """Metrics from summed :data:`STATS`: mean loss and terms over ``n_steps``, MAEs.

    Parameters
    ----------
    stats : Tensor, shape (len(STATS),)
    n_steps : int
    prefix : str — ``train`` or ``val``
    cfg : LossConfig
    labelled : dict term → float, optional
        Normalisers of the structures summarised; terms with 0 (no structure
        has the label) are left out.

    Returns
    -------
    dict — ``<prefix>_loss``, ``<prefix>_<term>`` for active terms, and
    ``<prefix>_energy_mae`` (meV/atom), ``<prefix>_forces_mae`` (eV/Å),
    ``<prefix>_fc_mae`` (eV/Å², probed entries) where anything was counted
    """
    values = dict(zip(STATS, stats.tolist()))
    out = {f"{prefix}_loss": values["loss"] / n_steps}
    for t in active_terms(cfg):
        if labelled is None or labelled[t] > 0:
            out[f"{prefix}_{t}"] = values[t] / n_steps
    for e in ERRORS:
        count = values[f"{e}_count"]
        if count > 0:
            out[f"{prefix}_{e}"] = ERROR_UNITS[e] * values[f"{e}_sum"] / count
    return out
