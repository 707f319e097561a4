"""Benchmark: the ported SevenNet models (ours) vs sevenn's own calculator, same weights.

For sevennet-0 (``7net-0``) and sevennet-l3i5 (``7net-l3i5``), with 1 and 2
torch threads, on rock-salt NaCl 2×2×2 and 3×3×3 conventional cells (64 and
216 atoms), this times, interleaved in one process per (model, threads):

- ``ours_ef``: ``FCNetCalculator(model, dtype="float32").calculate(atoms, ["energy", "forces"])``;
- ``ours_efs``: the same with ``"stress"`` too (sevenn's calculator always computes the stress);
- ``sevenn_ef``: ``SevenNetCalculator(...).calculate(atoms, ["energy", "forces"])`` (float32, sevenn's only dtype);
- ``ours_hvp32`` / ``ours_hvp64``: one Hessian-vector product
  ``calc.hessian_vector_products(atoms, v)`` (one unit displacement), float32 and float64.

Every call builds its neighbour list (as a user's call does). One warm-up call
of each first, then ``--repeats`` rounds (``--repeats-large`` for 216 atoms);
each round runs every operation once, in an order rotated from round to round.
Reported: the median of each, and the median over rounds of the per-round
ratio sevenn / ours (paired in time, so a busy neighbour on the machine
affects both sides of a ratio alike).

Peak memory: a fresh process per (model, dtype) loads the model, builds the
216-atom cell, and computes one Hessian-vector product; its ``ru_maxrss`` (MB)
after the product, and before it, are reported. For comparison, the same for
one energy+force call of ours and of sevenn's calculator (float32).

Each timing process runs with ``OMP_NUM_THREADS`` = ``torch.set_num_threads`` =
the thread count and takes the ``fcnet`` command's allocator setting
(``ase_fcnet.allocator``; ``FCNET_MALLOC_TUNING=0`` for glibc's default), which
applies to the whole process, sevenn's calls included.

    python benchmarks/sevennet_speed.py             # all (26 min on the shared 2-core machine)
    python benchmarks/sevennet_speed.py --quick     # 64-atom cells, 2 repeats, no memory check
    python benchmarks/sevennet_speed.py --models sevennet-0 --threads 2 --no-docs
    python benchmarks/sevennet_speed.py --only-memory   # rerun only the memory processes

Writes docs/benchmarks/sevennet_speed.json (``--out-json``) and prints markdown
tables; docs/benchmarks.md quotes them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "sevennet_speed.json"
SEVENN_NAME = {"sevennet-0": "7net-0", "sevennet-l3i5": "7net-l3i5"}
OPS = ("ours_ef", "ours_efs", "sevenn_ef", "ours_hvp32", "ours_hvp64")


def nacl(n: int):
    from ase.build import bulk

    return bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (n, n, n)


def unit_vector(n_atoms: int) -> np.ndarray:
    v = np.zeros((1, n_atoms, 3))
    v[0, 0, 0] = 1.0
    return v


def _env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    return env


def _child(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, __file__, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_env(threads))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def time_child(model: str, threads: int, sizes: list[int], repeats: int, repeats_large: int) -> dict:
    """In this (fresh) process: interleaved timings of every operation, per cell size."""
    from ase_fcnet.allocator import tune_glibc_malloc

    tuned = tune_glibc_malloc()
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    from ase_fcnet import FCNetCalculator

    ours32 = FCNetCalculator(model=model, device="cpu", dtype="float32")
    ours64 = FCNetCalculator(model=model, device="cpu", dtype="float64")
    sevenn = SevenNetCalculator(SEVENN_NAME[model], device="cpu")
    out = {"model": model, "threads": threads, "allocator_tuned": tuned, "cases": []}
    for n in sizes:
        atoms = nacl(n)
        v = unit_vector(len(atoms))
        calls = {
            "ours_ef": lambda: ours32.calculate(atoms, ["energy", "forces"]),
            "ours_efs": lambda: ours32.calculate(atoms, ["energy", "forces", "stress"]),
            "sevenn_ef": lambda: sevenn.calculate(atoms, ["energy", "forces"]),
            "ours_hvp32": lambda: ours32.hessian_vector_products(atoms, v),
            "ours_hvp64": lambda: ours64.hessian_vector_products(atoms, v),
        }
        warm = {}
        for op in OPS:  # warm-up, not timed in the medians
            start = time.perf_counter()
            calls[op]()
            warm[op] = time.perf_counter() - start
        check = float(np.abs(ours32.results["forces"] - sevenn.results["forces"]).max())
        seconds = {op: [] for op in OPS}
        for r in range(repeats if n < 3 else repeats_large):
            order = OPS[r % len(OPS):] + OPS[: r % len(OPS)]
            for op in order:
                start = time.perf_counter()
                calls[op]()
                seconds[op].append(time.perf_counter() - start)
        ratios = {
            "sevenn_over_ours_ef": [s / o for s, o in zip(seconds["sevenn_ef"], seconds["ours_ef"])],
            "sevenn_over_ours_efs": [s / o for s, o in zip(seconds["sevenn_ef"], seconds["ours_efs"])],
            "hvp32_over_ours_ef": [h / o for h, o in zip(seconds["ours_hvp32"], seconds["ours_ef"])],
            "hvp64_over_hvp32": [h / o for h, o in zip(seconds["ours_hvp64"], seconds["ours_hvp32"])],
        }
        case = {"atoms": len(atoms), "cell": f"NaCl rock salt {n}x{n}x{n} conventional",
                "warmup_s": warm, "seconds": seconds,
                "median_s": {op: float(np.median(t)) for op, t in seconds.items()},
                "paired_ratios": ratios,
                "median_ratio": {k: float(np.median(t)) for k, t in ratios.items()},
                "max_abs_force_diff_vs_sevenn_eV_per_A": check}
        out["cases"].append(case)
        m = case["median_s"]
        print(f"{model:14s} {threads} thr {len(atoms):4d} atoms  ours E+F {m['ours_ef']:.3f} s  "
              f"sevenn {m['sevenn_ef']:.3f} s  sevenn/ours {case['median_ratio']['sevenn_over_ours_ef']:.2f}  "
              f"H·v f32 {m['ours_hvp32']:.3f} s  f64 {m['ours_hvp64']:.3f} s", file=sys.stderr, flush=True)
    return out


def memory_child(model: str, dtype: str, n: int, threads: int, op: str = "hvp") -> dict:
    """In this (fresh) process: peak RSS of one Hessian-vector product (``op="hvp"``), or for
    comparison of one energy+force call of ours (``"ef"``) or of sevenn's calculator (``"sevenn_ef"``)."""
    from ase_fcnet.allocator import tune_glibc_malloc

    tuned = tune_glibc_malloc()
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    from ase_fcnet import FCNetCalculator

    if op == "sevenn_ef":
        from sevenn.calculator import SevenNetCalculator

        calc = SevenNetCalculator(SEVENN_NAME[model], device="cpu")
    else:
        calc = FCNetCalculator(model=model, device="cpu", dtype=dtype)
    atoms = nacl(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if op == "hvp":
        calc.hessian_vector_products(atoms, unit_vector(len(atoms)))
    else:
        calc.calculate(atoms, ["energy", "forces"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": model, "op": op, "dtype": dtype, "atoms": len(atoms), "threads": threads,
            "allocator_tuned": tuned, "rss_before_MB": before, "peak_rss_MB": peak, "seconds": seconds}


def speed_table(runs: list[dict]) -> str:
    """Median (fastest) seconds of each operation; sevenn / ours as the median of the per-round
    ratios (and as the ratio of the fastest calls, the least disturbed by other jobs)."""
    lines = ["| model | threads | atoms | ours E+F (s) | ours E+F+S (s) | sevenn E+F(+S) (s) "
             "| sevenn / ours (E+F) | sevenn / ours (E+F+S) | ours H·v f32 (s) | ours H·v f64 (s) "
             "| H·v f32 / E+F | max abs ΔF vs sevenn (eV/Å) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for c in run["cases"]:
            t = c["seconds"]
            med = {op: float(np.median(v)) for op, v in t.items()}
            low = {op: min(v) for op, v in t.items()}
            r = c["median_ratio"]

            def cell(op, digits=3):
                return f"{med[op]:.{digits}f} ({low[op]:.{digits}f})"

            lines.append(
                f"| {run['model']} | {run['threads']} | {c['atoms']} | {cell('ours_ef')} | {cell('ours_efs')} "
                f"| {cell('sevenn_ef')} | {r['sevenn_over_ours_ef']:.2f} ({low['sevenn_ef'] / low['ours_ef']:.2f}) "
                f"| {r['sevenn_over_ours_efs']:.2f} ({low['sevenn_ef'] / low['ours_efs']:.2f}) "
                f"| {cell('ours_hvp32', 2)} | {cell('ours_hvp64', 2)} "
                f"| {r['hvp32_over_ours_ef']:.1f} ({low['ours_hvp32'] / low['ours_ef']:.1f}) "
                f"| {c['max_abs_force_diff_vs_sevenn_eV_per_A']:.1e} |")
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    label = {"hvp": "ours, one H·v", "ef": "ours, energy+forces", "sevenn_ef": "sevenn, energy+forces(+stress)"}
    lines = ["| model | call | dtype | atoms | threads | RSS before the call (MB) | peak RSS (MB) "
             "| call (s, first in process) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {label[r['op']]} | {r['dtype']} | {r['atoms']} | {r['threads']} "
                     f"| {r['rss_before_MB']:.0f} | {r['peak_rss_MB']:.0f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(SEVENN_NAME), choices=list(SEVENN_NAME))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--sizes", nargs="+", type=int, default=[2, 3], help="NaCl conventional-cell repeats")
    p.add_argument("--repeats", type=int, default=3, help="rounds for the 64-atom cell")
    p.add_argument("--repeats-large", type=int, default=2, help="rounds for the 216-atom cell")
    p.add_argument("--memory-models", nargs="*", default=["sevennet-l3i5"], choices=list(SEVENN_NAME))
    p.add_argument("--memory-dtypes", nargs="*", default=["float32", "float64"])
    p.add_argument("--quick", action="store_true", help="64-atom cells, 2 repeats, no memory check")
    p.add_argument("--out-json", type=Path, default=OUT)
    p.add_argument("--no-docs", action="store_true", help="same as --out-json /dev/null")
    p.add_argument("--child-time", nargs=2, metavar=("MODEL", "THREADS"))
    p.add_argument("--only-memory", action="store_true",
                   help="run only the memory processes and replace the 'memory' entry of --out-json")
    p.add_argument("--child-memory", nargs=5, metavar=("MODEL", "DTYPE", "N", "THREADS", "OP"))
    args = p.parse_args()
    if args.child_time:
        print(json.dumps(time_child(args.child_time[0], int(args.child_time[1]), args.sizes, args.repeats,
                                    args.repeats_large)))
        return
    if args.child_memory:
        model, dtype, n, threads, op = args.child_memory
        print(json.dumps(memory_child(model, dtype, int(n), int(threads), op)))
        return
    if args.quick:
        args.sizes, args.repeats, args.memory_models = [2], 2, []
    start = time.perf_counter()
    runs = []
    for model in [] if args.only_memory else args.models:
        for threads in args.threads:
            child_args = ["--child-time", model, str(threads), "--repeats", str(args.repeats),
                          "--repeats-large", str(args.repeats_large),
                          "--sizes", *map(str, args.sizes)]
            run = _child(child_args, threads)
            runs.append(run)
            for c in run["cases"]:
                m = c["median_s"]
                print(f"{model:14s} {threads} thr {c['atoms']:4d} atoms  ours E+F {m['ours_ef']:.3f} s  "
                      f"sevenn {m['sevenn_ef']:.3f} s  sevenn/ours {c['median_ratio']['sevenn_over_ours_ef']:.2f}  "
                      f"H·v f32 {m['ours_hvp32']:.2f} s  f64 {m['ours_hvp64']:.2f} s", flush=True)
    memory = []
    mem_threads = max(args.threads)
    for model in args.memory_models:
        jobs = [(dtype, "hvp") for dtype in args.memory_dtypes] + [("float32", "ef"), ("float32", "sevenn_ef")]
        for dtype, op in jobs:
            r = _child(["--child-memory", model, dtype, "3", str(mem_threads), op], mem_threads)
            memory.append(r)
            print(f"memory {model} {op} {dtype} {r['atoms']} atoms: peak RSS {r['peak_rss_MB']:.0f} MB "
                  f"(before the call {r['rss_before_MB']:.0f} MB)", flush=True)
    if args.only_memory:
        result = json.loads(args.out_json.read_text())
        result.update(memory=memory, memory_command=" ".join(["python benchmarks/sevennet_speed.py",
                                                              *sys.argv[1:]]))
        args.out_json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"updated the memory entry of {args.out_json}\n\n{memory_table(memory)}")
        return
    import torch

    result = {
        "command": " ".join(["python benchmarks/sevennet_speed.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "load_average_at_end": os.getloadavg()},
        "repeats": args.repeats, "repeats_large": args.repeats_large, "timing": runs, "memory": memory,
        "wall_s": time.perf_counter() - start,
    }
    if not args.no_docs:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out_json}")
    print("\nmedian (fastest) of each; ratios: median of the per-round ratios (ratio of the fastest calls)")
    print(speed_table(runs))
    if memory:
        print()
        print(memory_table(memory))
    print(f"\nwall time {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
