"""One differentiable pass giving energies, forces, stress and Hessian-vector products.

Training's entry point to :func:`ase_fcnet.model.energy_forces_stress`: one
forward pass and one first-derivative graph give energies, forces, stress and
the probed Hessian-vector products, all differentiable in the weights, so a
step with force and force-constant losses does not evaluate the model twice.
"""
from __future__ import annotations

import torch

from ase_fcnet.graph import AtomicGraph
from ase_fcnet.model.derivatives import energy_forces_stress


def predict(model: torch.nn.Module, graph: AtomicGraph, forces: bool = True,
            stress: bool = False, vectors: torch.Tensor | None = None,
            create_graph: bool = True) -> dict[str, torch.Tensor]:
    """Model predictions for a batch, differentiable in the weights.

    Parameters
    ----------
    model : torch.nn.Module (any registered architecture)
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
    return energy_forces_stress(model, graph, forces=forces, stress=stress,
                                create_graph=create_graph, vectors=vectors)
