"""Benchmark: what a larger default model would cost per call.

The default model's size is bounded by the speed target of the default-model
issue (phonons at least 5× faster than the teacher in-process; 6.9× was
measured on 216-atom NaCl, the tightest case). This times one energy+forces
call and the two Hessian-vector products 216-atom NaCl needs, for the
default-size architecture and for larger variants (random weights, float64,
2 threads, the ``fcnet`` allocator setting; minimum of 7 after a warm-up call).

    python benchmarks/model_size_cost.py

Writes docs/benchmarks/model_size_cost.json; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks" / "model_size_cost.json"
VARIANTS = {
    "default size": {},
    "node products, 32 channels": {"product_channels": 32},
    "scalar channels 48": {"scalar_channels": 48},
    "tensor channels 16": {"tensor_channels": 16},
    "radial MLP width 64": {"radial_hidden": 64},
    "scalar 64, tensor 16": {"scalar_channels": 64, "tensor_channels": 16},
    "3 interaction blocks": {"num_layers": 3},
}


def _best(fn, repeats: int = 7) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    from ase_fcnet.allocator import tune_glibc_malloc

    tune_glibc_malloc()
    import torch
    from ase.build import bulk

    from ase_fcnet.graph import atoms_to_graph
    from ase_fcnet.model import ModelConfig, build_model, energy_forces_stress, graph_hessian_vector_products

    torch.set_num_threads(2)
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)
    rows = {}
    for name, overrides in VARIANTS.items():
        config = ModelConfig(species=("Na", "Cl"), **overrides)
        model = build_model(config, seed=0)
        graph = atoms_to_graph(atoms, config.cutoff, config.species)
        directions = torch.zeros(2, len(atoms), 3, dtype=torch.float64)
        directions[0, 0, 0] = directions[1, 4, 0] = 1.0  # one Na and one Cl direction
        rows[name] = {
            "overrides": overrides,
            "parameters": sum(p.numel() for p in model.parameters()),
            "energy_forces_s": _best(lambda: energy_forces_stress(model, graph)),
            "two_hvps_s": _best(lambda: graph_hessian_vector_products(model, graph, directions)),
        }
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}, flush=True)
    base = rows["default size"]
    for row in rows.values():
        row["energy_forces_ratio"] = row["energy_forces_s"] / base["energy_forces_s"]
        row["two_hvps_ratio"] = row["two_hvps_s"] / base["two_hvps_s"]
    OUT.write_text(json.dumps({"command": "python benchmarks/model_size_cost.py", "atoms": len(atoms),
                               "crystal": "NaCl rock salt, conventional a = 5.64 Å, 3×3×3",
                               "variants": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
