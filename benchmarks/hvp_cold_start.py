"""Benchmark: the first energy+forces call and the first Hessian-vector product of a process.

High-symmetry crystals need one or two directions, so the analytic route's
cost there is its first Hessian-vector product, in a fresh process, against
finite displacements' first one or two energy+force calls. This measures each
call of a short sequence in fresh processes: wall time, user and system CPU
time (``getrusage``) and minor page faults, with the allocator setting the
``fcnet`` command applies (as in ``force_constants.py``: random-weight
default-size model, float64, 2 threads).

    python benchmarks/hvp_cold_start.py [--repeats 3]

Writes docs/benchmarks/hvp_cold_start.json; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks" / "hvp_cold_start.json"
CASES = {"Si diamond (Fd-3m)": 1, "NaCl rock salt (Fm-3m)": 1}  # supercell size index (216 atoms)
SEQUENCES = {"energy+forces first": ["ef", "ef", "hvp", "hvp"], "HVP first": ["hvp", "hvp", "ef", "ef"]}


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def run_sequence(case: str, calls: list[str]) -> list[dict]:
    """In this process: time each call of ``calls`` ('ef' or 'hvp')."""
    from ase_fcnet.allocator import tune_glibc_malloc

    tune_glibc_malloc()
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from force_constants import _model, crystals

    from ase_fcnet.model import energy_forces_stress, graph_hessian_vector_products

    torch.set_num_threads(2)
    atoms, sizes = crystals()[case]
    supercell = atoms.repeat(sizes[CASES[case]])
    calc = _model(None)
    graph = calc._graph(supercell)
    direction = torch.zeros(1, len(supercell), 3, dtype=torch.float64)
    direction[0, 0, 0] = 1.0
    out = []
    for call in calls:
        before, start = _usage(), time.perf_counter()
        if call == "ef":
            energy_forces_stress(calc.model, graph)
        else:
            graph_hessian_vector_products(calc.model, graph, direction)
        wall, after = time.perf_counter() - start, _usage()
        out.append({"call": call, "wall_s": wall, "user_s": after[0] - before[0],
                    "sys_s": after[1] - before[1], "minor_faults": after[2] - before[2]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_sequence(args.child[0], SEQUENCES[args.child[1]])))
        return
    results = []
    for repeat in range(args.repeats):
        for case in CASES:
            for name in SEQUENCES:
                res = subprocess.run([sys.executable, __file__, "--child", case, name],
                                     capture_output=True, text=True, check=True)
                calls = json.loads(res.stdout.strip().splitlines()[-1])
                results.append({"case": case, "sequence": name, "repeat": repeat, "calls": calls})
                shown = ", ".join(f"{c['call']} {c['wall_s']:.3f}s (sys {c['sys_s']:.3f})" for c in calls)
                print(f"{case} [{name}] {shown}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": "python benchmarks/hvp_cold_start.py", "atoms": 216,
                               "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
