"""Benchmark: how energy+forces and Hessian-vector products scale with CPU threads.

On α-quartz (72-atom supercell, the seeded default-size random model of
``benchmarks/force_constants.py``) the analytic route needs 5 rows H·v where
phonopy's finite displacements need 9 energy+force calls, so it beats them by
1.5× only if one row costs at most about one energy+force call. This script
measures, with 1 and with 2 torch intra-op threads, interleaved over rounds
(minimum kept):

* one energy+force call;
* 5 rows on one first-derivative graph (forward pass included), in a loop;
* the same 5 rows split over 2 Python threads with one intra-op thread each
  (what ``graph_hessian_vector_products`` does from ``MIN_ROWS_PER_THREAD`` rows per
  thread on).

It prints the cost of one row in energy+force calls and the resulting bound on
finite-displacement time / analytic time (9 calls against the 5-row pass).
Each allocator setting runs in its own process: glibc's default, and the one
``fcnet`` applies at start-up (:func:`ase_fcnet.allocator.tune_glibc_malloc`);
minor page faults are counted over the timed work.

    python benchmarks/hvp_scaling.py [--rounds 5]   # writes docs/benchmarks/hvp_scaling.json
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import force_constants as fcb  # noqa: E402

import ase_fcnet.model.derivatives as derivatives  # noqa: E402
from ase_fcnet.allocator import tune_glibc_malloc  # noqa: E402
from ase_fcnet.model import energy_forces_stress  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "hvp_scaling.json"
CRYSTAL, ROWS, FD_CALLS = "SiO2 alpha-quartz (P3_221)", 5, 9


def _time(fn, repeat: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def measure(model, graph, vectors, threads: int) -> dict:
    """Seconds for one E+F call, the 5-row loop and the 5 rows in 2 Python threads."""
    torch.set_num_threads(threads)

    def rows(row_threads):
        return derivatives.graph_hessian_vector_products(model, graph, vectors, row_threads=row_threads)

    saved = derivatives.MIN_ROWS_PER_THREAD
    derivatives.MIN_ROWS_PER_THREAD = 1  # allow 5 rows over 2 threads
    try:
        out = {"threads": threads,
               "energy_forces_s": _time(lambda: energy_forces_stress(model, graph)),
               "rows_loop_s": _time(lambda: rows(1))}
        if threads > 1:
            out["rows_two_python_threads_s"] = _time(lambda: rows(2))
            assert torch.equal(rows(1), rows(2))
    finally:
        derivatives.MIN_ROWS_PER_THREAD = saved
    return out


def child(allocator: str, rounds: int) -> dict:
    """All measurements with one allocator setting, in this process."""
    tuned = tune_glibc_malloc() if allocator == "fcnet" else False
    calc = fcb._model(None)
    atoms, sizes = fcb.crystals()[CRYSTAL]
    cell = atoms * sizes[0]
    graph = calc._graph(cell)
    vectors = torch.zeros(ROWS, len(cell), 3, dtype=torch.float64)
    for r in range(ROWS):
        vectors[r, r % len(cell), r % 3] = 1.0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    best: dict[int, dict] = {}
    for _ in range(rounds):
        for threads in (1, 2):
            m = measure(calc.model, graph, vectors, threads)
            prev = best.setdefault(threads, m)
            for key, value in m.items():
                prev[key] = min(prev[key], value)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    results = []
    for threads, m in best.items():
        ef, loop = m["energy_forces_s"], m["rows_loop_s"]
        fastest = min(loop, m.get("rows_two_python_threads_s", loop))
        m["row_cost_in_energy_force_calls"] = (loop - ef) / ROWS / ef
        m["fd_over_analytic_bound"] = FD_CALLS * ef / fastest
        results.append(m)
    return {"allocator": allocator, "tuned": tuned, "n_atoms": len(cell), "minor_faults": faults,
            "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--child", choices=["glibc", "fcnet"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rounds)))
        return
    runs = []
    for allocator in ("glibc", "fcnet"):
        done = subprocess.run([sys.executable, __file__, "--child", allocator, "--rounds", str(args.rounds)],
                              capture_output=True, text=True, check=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        label = "glibc default" if allocator == "glibc" else "fcnet's setting"
        print(f"allocator: {label} ({run['minor_faults']} minor page faults)")
        for m in run["results"]:
            print(f"  {m['threads']} thread(s): E+F {m['energy_forces_s'] * 1e3:.1f} ms; "
                  f"5 rows in a loop {m['rows_loop_s'] * 1e3:.1f} ms"
                  + (f", in 2 Python threads {m['rows_two_python_threads_s'] * 1e3:.1f} ms"
                     if "rows_two_python_threads_s" in m else "")
                  + f"; one row = {m['row_cost_in_energy_force_calls']:.2f} E+F calls;"
                  f" 9 E+F / fastest 5-row pass = {m['fd_over_analytic_bound']:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"crystal": CRYSTAL, "rows": ROWS, "fd_calls": FD_CALLS,
                               "rounds": args.rounds, "runs": runs}, indent=2) + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
