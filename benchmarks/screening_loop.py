"""Benchmark: both force-constant routes inside one long-running process, as in a screening loop.

``force_constants.py`` runs every route in its own fresh process, so each
timing includes the memory that process touches for the first time (on the
project's machine that costs 15 times more than memory a process reuses, see
``first_touch.py``), and the analytic route touches more of it. A screening
loop over many materials pays that once. This times ``phonopy_from_atoms``
with ``method="analytic"`` and ``method="finite-displacement"`` alternately,
``--rounds`` times each, in one process with the ``fcnet`` allocator setting
(same random-weight default-size model, crystals and supercells as
``force_constants.py``, float64, 2 threads), and reports the first round and
the fastest round of each.

    python benchmarks/screening_loop.py [--rounds 4] [--size 0 1]

Writes docs/benchmarks/screening_loop.json; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from force_constants import _model, crystals  # noqa: E402

from ase_fcnet.allocator import tune_glibc_malloc  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "screening_loop.json"
METHODS = ("analytic", "finite-displacement")


def measure(calc, atoms, supercell: np.ndarray, rounds: int) -> dict:
    """Seconds per round of each route, alternating, in this process."""
    from ase_fcnet.phonons import phonopy_from_atoms

    seconds = {m: [] for m in METHODS}
    n_atoms = None
    for _ in range(rounds):
        for method in METHODS:
            calc.results.clear()
            start = time.perf_counter()
            ph = phonopy_from_atoms(atoms, calc, supercell_matrix=supercell, method=method)
            seconds[method].append(time.perf_counter() - start)
            n_atoms = len(ph.supercell)
    return {"n_atoms": n_atoms, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size", type=int, nargs="+", default=[0, 1],
                        help="supercell index: 0 for about 64 atoms, 1 for about 216")
    args = parser.parse_args()
    tuned = tune_glibc_malloc()
    import torch

    torch.set_num_threads(2)
    calc = _model(None)
    results = []
    for name, (atoms, sizes) in crystals().items():
        for size in args.size:
            r = measure(calc, atoms, np.diag(sizes[size]), args.rounds)
            a, f = r["seconds"]["analytic"], r["seconds"]["finite-displacement"]
            r.update(crystal=name, fd_over_analytic_first=f[0] / a[0],
                     fd_over_analytic_fastest=min(f) / min(a))
            results.append(r)
            print(f"{name:28s} {r['n_atoms']:4d} atoms  analytic first {a[0]:.3f} s fastest {min(a):.3f} s"
                  f"  FD first {f[0]:.3f} s fastest {min(f):.3f} s  FD/analytic fastest "
                  f"{r['fd_over_analytic_fastest']:.2f}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": "python benchmarks/screening_loop.py", "rounds": args.rounds,
                               "allocator_tuned": tuned, "torch_threads": 2, "results": results},
                              indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
