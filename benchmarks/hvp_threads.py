"""Benchmark: Hessian-vector rows in a loop vs in two Python threads (CPU).

The analytic force constants are K rows H·v computed on one first-derivative
graph. ``graph_hessian_vector_products(..., row_threads=1)`` runs them in a loop
with torch's 2 intra-op threads; the default splits them over 2 Python threads
that share the graph, each with one intra-op thread. Same P1 SiC cells and
seeded default-size random model as ``benchmarks/force_constants.py``; 24
rows (the count phonopy needs for that cell); both ways must agree exactly.

    python benchmarks/hvp_threads.py            # writes docs/benchmarks/hvp_threads.json

The process takes the allocator setting of the ``fcnet`` command first
(``ase_fcnet.allocator``; ``FCNET_MALLOC_TUNING=0`` for glibc's default).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import force_constants as fcb  # noqa: E402

from ase_fcnet.allocator import tune_glibc_malloc  # noqa: E402
from ase_fcnet.model.derivatives import graph_hessian_vector_products  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "hvp_threads.json"
ROWS = 24


def main() -> None:
    tuned = tune_glibc_malloc()
    torch.set_num_threads(2)
    calc = fcb._model(None)
    atoms, sizes = fcb.crystals()["SiC distorted (P1)"]
    results = []
    for size in sizes:
        cell = atoms * size
        graph = calc._graph(cell)
        vectors = torch.zeros(ROWS, len(cell), 3, dtype=torch.float64)
        for r in range(ROWS):
            vectors[r, r % len(cell), r % 3] = 1.0
        loop = graph_hessian_vector_products(calc.model, graph, vectors, row_threads=1)
        split = graph_hessian_vector_products(calc.model, graph, vectors)
        assert torch.equal(loop, split), "threaded rows differ from the loop"
        times = {"loop_2_intra_op_threads_s": [], "two_python_threads_s": []}
        for _ in range(3):
            start = time.perf_counter()
            graph_hessian_vector_products(calc.model, graph, vectors, row_threads=1)
            times["loop_2_intra_op_threads_s"].append(time.perf_counter() - start)
            start = time.perf_counter()
            graph_hessian_vector_products(calc.model, graph, vectors)
            times["two_python_threads_s"].append(time.perf_counter() - start)
        row = {"atoms": len(cell), "rows": ROWS, **{k: min(v) for k, v in times.items()}}
        row["speed_up"] = row["loop_2_intra_op_threads_s"] / row["two_python_threads_s"]
        results.append(row)
        print(json.dumps(row))
    OUT.write_text(json.dumps({"command": "python benchmarks/hvp_threads.py",
                               "case": "SiC distorted (P1), seeded random default-size model",
                               "allocator": "fcnet's setting" if tuned else "glibc default",
                               "results": results}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
