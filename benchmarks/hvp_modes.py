"""Benchmark: ways to compute one Hessian-vector product of the energy model.

Compares, on a 64-atom Si cell with a default-size random-weight model and one
CPU thread: one energy+forces evaluation; reverse-over-reverse (what
``ase_fcnet.model.graph_hessian_vector_products`` does); forward-over-reverse
(``torch.func.jvp`` of ``torch.func.grad``); reverse-over-forward. All three
products agree to round-off (checked here).

    python benchmarks/hvp_modes.py

It also times several rows on one first-derivative graph, in a loop and
batched with ``is_grads_batched``.
"""
from __future__ import annotations

import time

import torch
from ase.build import bulk
from torch.func import grad, jvp

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import ModelConfig, build_model, energy_forces_stress, graph_hessian_vector_products


def timed(fn, repeat=5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def main():
    torch.set_num_threads(1)
    cfg = ModelConfig(species=("Si",))
    model = build_model(cfg, seed=0)
    g = atoms_to_graph(bulk("Si", "diamond", a=5.43, cubic=True).repeat(2), cfg.cutoff, cfg.species)

    def energy(p):
        return model(p, g.cell, g.species, g.edge_index, g.shifts, g.batch).sum()

    v = torch.zeros(g.n_atoms, 3, dtype=torch.float64)
    v[0, 0] = 1.0
    ref = graph_hessian_vector_products(model, g, v[None])[0]
    fwd_rev = jvp(grad(energy), (g.positions,), (v,))[1]
    rev_fwd = grad(lambda p: jvp(energy, (p,), (v,))[1])(g.positions)
    err = max(float((fwd_rev - ref).abs().max().detach()), float((rev_fwd - ref).abs().max().detach()))
    print(f"64-atom Si, {g.edge_index.shape[1]} edges, 1 thread; max difference between modes {err:.1e} eV/Å²")
    rows = {
        "energy + forces": lambda: energy_forces_stress(model, g),
        "H·v reverse-over-reverse (used)": lambda: graph_hessian_vector_products(model, g, v[None]),
        "H·v forward-over-reverse": lambda: jvp(grad(energy), (g.positions,), (v,)),
        "H·v reverse-over-forward": lambda: grad(lambda p: jvp(energy, (p,), (v,))[1])(g.positions),
    }
    for name, fn in rows.items():
        print(f"{name:34s} {timed(fn):8.1f} ms")
    batching(model, g)


def batching(model, g, n_rows=3):
    """Rows on one first-derivative graph: a loop vs ``is_grads_batched``."""
    pos = g.positions.detach().requires_grad_(True)
    e = model(pos, g.cell, g.species, g.edge_index, g.shifts, g.batch).sum()
    (first,) = torch.autograd.grad(e, pos, create_graph=True)
    vs = torch.zeros(n_rows, g.n_atoms, 3, dtype=pos.dtype)
    for k in range(n_rows):
        vs[k, 0, k] = 1.0

    def loop():
        return [torch.autograd.grad(first, pos, vs[k], retain_graph=True)[0] for k in range(n_rows)]

    def batched():
        return torch.autograd.grad(first, pos, vs, retain_graph=True, is_grads_batched=True)[0]

    assert torch.allclose(torch.stack(loop()), batched(), rtol=0, atol=1e-12)
    print(f"{n_rows} rows on one first-derivative graph: loop {timed(loop):.1f} ms, "
          f"is_grads_batched {timed(batched):.1f} ms")


if __name__ == "__main__":
    main()
