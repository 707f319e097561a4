"""One differentiable pass giving energies, forces, stress and Hessian-vector products.

The same quantities as :func:`ase_fcnet.model.energy_forces_stress` and
:func:`ase_fcnet.model.hessian_vector_products` (same sign conventions), but
from a single forward pass and a single first-derivative graph, so a training
step with force and force-constant losses does not evaluate the model twice.
"""
from __future__ import annotations

import torch

from ase_fcnet.graph import AtomicGraph
from ase_fcnet.model.derivatives import VOIGT


def predict(model: torch.nn.Module, graph: AtomicGraph, forces: bool = True,
            stress: bool = False, vectors: torch.Tensor | None = None,
            create_graph: bool = True) -> dict[str, torch.Tensor]:
    """Model predictions for a batch, differentiable in the weights.

    Parameters
    ----------
    model : FCNet
    graph : AtomicGraph
        B structures, N atoms in all.
    forces, stress : bool
        Whether to return forces and stress.
    vectors : Tensor, shape (K, N, 3), optional
        Probe directions; ``H·v`` is returned for each (K backward passes).
    create_graph : bool
        Keep the graph of all derivatives (needed for a loss on them).

    Returns
    -------
    dict with ``energy`` (B,) eV; ``forces`` (N, 3) eV/Å; ``stress`` (B, 6)
    eV/Å³ (ASE sign, Voigt); ``hvp`` (K, N, 3) eV/Å² times the vectors' length
    """
    need_pos = forces or vectors is not None
    positions = graph.positions.detach().requires_grad_(need_pos)
    cell = graph.cell.detach()
    inputs = [positions] if need_pos else []
    if stress:
        strain = torch.zeros_like(cell).requires_grad_(True)
        eye_plus = torch.eye(3, dtype=cell.dtype, device=cell.device) + strain
        positions_s = torch.einsum("ni,nij->nj", positions, eye_plus[graph.batch])
        cell_s = cell @ eye_plus
        inputs.append(strain)
    else:
        positions_s, cell_s = positions, cell
    energy = model(positions_s, cell_s, graph.species, graph.edge_index, graph.shifts, graph.batch)
    out = {"energy": energy}
    if not inputs:
        return out
    keep = create_graph or vectors is not None
    grads = torch.autograd.grad(energy.sum(), inputs, create_graph=keep)
    if forces:
        out["forces"] = -grads[0]
    if stress:
        volume = torch.linalg.det(cell).abs()
        g = grads[-1]
        sym = 0.5 * (g + g.transpose(1, 2)) / volume[:, None, None]
        out["stress"] = torch.stack([sym[:, a, b] for a, b in VOIGT], dim=1)
    if vectors is not None:
        vectors = vectors.to(dtype=positions.dtype, device=positions.device)
        rows = [torch.autograd.grad(grads[0], positions, v, retain_graph=True,
                                    create_graph=create_graph)[0] for v in vectors]
        out["hvp"] = torch.stack(rows) if rows else torch.zeros_like(vectors)
    return out
