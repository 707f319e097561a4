"""Benchmark: screening throughput with 1 and 2 local workers, a Dask LocalCluster of 2, and a naive loop.

The materials are the project's own prototype sets (``ase_fcnet.generation.prototypes``:
the ``si`` set, diamond / hexagonal-diamond / 4H / β-tin Si with strained,
rattled and vacancy variants, and the ``cu`` set, fcc / bcc / hcp Cu): 74
crystals of 2–15 atoms (supercells of 54–180), space groups from Fd-3m to P1.
Every configuration computes the same phonons (analytic force constants, band
path, DOS, thermal properties) with the fast ``fcnet-small`` model:

* ``naive``: the loop a user writes first, in a fresh process: for each
  material a new ``FCNetCalculator``, then the same phonon steps, results kept
  in a list; torch's default threads (all cores);
* ``local-1`` / ``local-2``: ``ase_fcnet.screen`` with 1 or 2 local worker
  processes (cores // workers torch threads each), rows in a new SQLite file;
* ``local-1x1`` (not in the default runs): 1 worker with 1 torch thread, the
  same per-worker threads as ``local-2``, so their ratio is the parallel scaling;
* ``dask-2``: ``ase_fcnet.screen`` on a Dask LocalCluster of 2 single-threaded
  workers (needs ``ase_fcnet[dask]``);
* ``dask-2-default`` (not in the default runs): the same with Dask's own worker
  settings instead of ``dask_pool.QUIET_CLUSTER``;
* ``dask-2-arenas`` (not in the default runs): ``QUIET_CLUSTER`` without
  ``MALLOC_ARENA_MAX=1``, so the task threads get glibc's own malloc arenas.

Times are wall-clock for the whole call (worker start and model loading
included), so materials per minute is what a user sees. Memory per worker is
the peak RSS each worker process reports in its rows (``worker_peak_rss_MB``);
``worker_cpu_s`` and ``worker_page_faults`` (minor faults) sum the worker
processes (and Dask's nannies) once they have ended.

    python benchmarks/screening.py [--materials 74] [--runs naive local-1 local-2 dask-2] [--rounds 1] [--out FILE]

Single runs vary by 15-25 % on a 2-core machine; ``--rounds N`` repeats the
configurations in rotated order and reports the median of each ratio.

Writes docs/benchmarks/screening.json; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "screening.json"
MODEL = "fcnet-small"
SETTINGS = {"min_length": 8.0, "mesh": 10.0, "npoints": 21}


def materials(n: int):
    """The first ``n`` of the ``si`` and ``cu`` prototype sets (seed 0), as ``(label, Atoms)``."""
    from ase_fcnet.generation.prototypes import structure_set

    items = structure_set("si", seed=0) + structure_set("cu", seed=0)
    if n > len(items):
        raise SystemExit(f"--materials: at most {len(items)}")
    step = len(items) / n                      # spread over the sets: every symmetry and size
    return [items[int(k * step)] for k in range(n)]


def _naive_loop(items) -> dict:
    """In a fresh process: a new calculator per material, phonons, results in a list."""
    import resource
    import warnings

    from ase_fcnet import FCNetCalculator, phonopy_from_atoms
    from ase_fcnet.phonons import band_structure, dos, frequency_summary, thermal_properties

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    results = []
    for label, atoms in items:
        calc = FCNetCalculator(model=MODEL)
        phonon = phonopy_from_atoms(atoms, calc, min_length=SETTINGS["min_length"])
        band = band_structure(phonon, npoints=SETTINGS["npoints"])
        dos(phonon, mesh=SETTINGS["mesh"])
        thermal_properties(phonon, mesh=SETTINGS["mesh"])
        results.append((label, frequency_summary(phonon, band=band, mesh=SETTINGS["mesh"]).min_frequency))
    return {"wall_s": time.perf_counter() - start,
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "fmin_THz": dict(results)}


def naive(items) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        start = time.perf_counter()
        out = pool.submit(_naive_loop, items).result()
        out["wall_with_start_s"] = time.perf_counter() - start
    return out


def screened(items, folder: Path, name: str, **kwargs) -> dict:
    import resource

    import ase.db

    from ase_fcnet.screening import ScreenSettings, screen

    db = folder / f"{name}.db"
    used = resource.getrusage(resource.RUSAGE_CHILDREN)      # of this process's finished children
    start = time.perf_counter()
    result = screen(items, db, model=MODEL, settings=ScreenSettings(**SETTINGS), progress=False, **kwargs)
    wall = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)        # the workers (and Dask's nannies) have ended
    rows = list(ase.db.connect(str(db)).select())
    rss: dict = {}
    for row in rows:
        pid = row.get("worker_pid")
        if pid is not None:
            rss[pid] = max(rss.get(pid, 0.0), row.get("worker_peak_rss_MB", 0.0))
    n_workers = len(rss) or 1
    compute = sum(row.get("time_total_s", 0.0) for row in rows)
    return {"wall_s": wall, "n_done": result.n_done, "n_failed": result.n_failed, "n_workers": n_workers,
            # wall time not spent computing materials: worker start, model loads, scheduling, writing
            "not_computing_s": wall - compute / n_workers,
            "worker_peak_rss_MB": sorted(rss.values()),
            "compute_s": compute,
            "worker_cpu_s": now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime,
            "worker_page_faults": now.ru_minflt - used.ru_minflt,
            "fmin_THz": {row.name: row.get("fmin_THz") for row in rows}}


def _dask_with(settings: dict, items, folder: Path, name: str) -> dict:
    """``dask-2`` with ``settings`` in place of ``dask_pool.QUIET_CLUSTER``."""
    from ase_fcnet.screening import dask_pool

    saved, dask_pool.QUIET_CLUSTER = dask_pool.QUIET_CLUSTER, settings
    try:
        return screened(items, folder, name, dask_local=2)
    finally:
        dask_pool.QUIET_CLUSTER = saved


def dask_default(items, folder: Path) -> dict:
    """``dask-2`` with Dask's own worker settings (profiler, 20 ms ticks, 100 ms memory checks)."""
    return _dask_with({}, items, folder, "dask-2-default")


def dask_arenas(items, folder: Path) -> dict:
    """``dask-2`` with glibc's own malloc arenas in the workers (``MALLOC_ARENA_MAX`` not set)."""
    from ase_fcnet.screening.dask_pool import QUIET_CLUSTER

    arenas = {k: v for k, v in QUIET_CLUSTER.items() if not k.endswith("MALLOC_ARENA_MAX")}
    return _dask_with(arenas, items, folder, "dask-2-arenas")


RUNS = {
    "naive": lambda items, folder: naive(items),
    "local-1": lambda items, folder: screened(items, folder, "local-1", workers=1),
    "local-1x1": lambda items, folder: screened(items, folder, "local-1x1", workers=1, threads=1),
    "local-2": lambda items, folder: screened(items, folder, "local-2", workers=2),
    "dask-2": lambda items, folder: screened(items, folder, "dask-2", dask_local=2),
    "dask-2-default": dask_default,
    "dask-2-arenas": dask_arenas,
}


def ratios(runs: dict) -> dict:
    """The benchmark's ratios from one round's runs (those whose runs are present)."""
    out = {}
    if "local-1" in runs and "local-2" in runs:
        out["speedup_2_over_1"] = runs["local-2"]["materials_per_min"] / runs["local-1"]["materials_per_min"]
    if "local-1x1" in runs and "local-2" in runs:
        out["speedup_2_over_1x1"] = runs["local-2"]["materials_per_min"] / runs["local-1x1"]["materials_per_min"]
    if "local-2" in runs and "dask-2" in runs:
        out["dask_overhead"] = runs["dask-2"]["wall_s"] / runs["local-2"]["wall_s"] - 1.0
        # the same, counting only time not spent computing (less sensitive to other load on the machine)
        out["dask_overhead_not_computing"] = (
            runs["dask-2"]["not_computing_s"] - runs["local-2"]["not_computing_s"]) / runs["local-2"]["wall_s"]
    if "local-2" in runs and "dask-2-default" in runs:
        out["dask_default_overhead"] = runs["dask-2-default"]["wall_s"] / runs["local-2"]["wall_s"] - 1.0
    if "local-2" in runs and "dask-2-arenas" in runs:
        out["dask_arenas_overhead"] = runs["dask-2-arenas"]["wall_s"] / runs["local-2"]["wall_s"] - 1.0
    if "naive" in runs and "local-1" in runs:
        out["local_1_over_naive"] = runs["local-1"]["materials_per_min"] / runs["naive"]["materials_per_min"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--materials", type=int, default=74)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=["naive", "local-1", "local-2", "dask-2"],
                        help="which configurations, in this order")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the runs; round k starts k places later in --runs (rotated order); "
                             "the ratios reported are the medians over rounds")
    parser.add_argument("--out", type=Path, default=OUT, help="results JSON")
    args = parser.parse_args()
    items = materials(args.materials)
    report = {"command": "python benchmarks/screening.py " + f"--materials {args.materials} --runs "
              + " ".join(args.runs) + (f" --rounds {args.rounds}" if args.rounds > 1 else ""),
              "model": MODEL, "settings": SETTINGS, "n_materials": len(items), "cores": os.cpu_count(),
              "load_average_before": os.getloadavg(), "runs": {}, "rounds": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            shift = k % len(args.runs)
            runs = {}
            folder = Path(tmp) / f"round{k}"
            folder.mkdir()
            for name in args.runs[shift:] + args.runs[:shift]:
                out = RUNS[name](items, folder)
                out["materials_per_min"] = 60.0 * len(items) / out["wall_s"]
                out["load_average_after"] = os.getloadavg()
                runs[name] = out
                print(f"round {k + 1} {name:9s} {out['wall_s']:7.1f} s  {out['materials_per_min']:6.1f} "
                      f"materials/min  load {out['load_average_after'][0]:.1f}", flush=True)
            report["rounds"].append({"order": list(runs), "ratios": ratios(runs),
                                     "wall_s": {n: r["wall_s"] for n, r in runs.items()},
                                     "not_computing_s": {n: r.get("not_computing_s") for n, r in runs.items()},
                                     "compute_s": {n: r.get("compute_s") for n, r in runs.items()},
                                     "worker_cpu_s": {n: r.get("worker_cpu_s") for n, r in runs.items()},
                                     "worker_page_faults": {n: r.get("worker_page_faults") for n, r in runs.items()}})
            if k == 0:
                report["runs"] = runs          # the first round in full (memory, frequencies)
            ref = next(iter(report["runs"].values()))["fmin_THz"]
            report["max_abs_fmin_difference_THz"] = max(
                report.get("max_abs_fmin_difference_THz", 0.0),
                max(abs(run["fmin_THz"][m] - ref[m]) for run in runs.values() for m in ref))
    for key in report["rounds"][0]["ratios"]:
        report[key] = statistics.median(r["ratios"][key] for r in report["rounds"])
    report["benchmark_wall_s"] = time.perf_counter() - started
    for key in ("speedup_2_over_1", "speedup_2_over_1x1", "dask_overhead", "dask_overhead_not_computing",
                "dask_default_overhead", "dask_arenas_overhead", "local_1_over_naive", "max_abs_fmin_difference_THz"):
        if key in report:
            each = " ".join(f"{r['ratios'][key]:.3g}" for r in report["rounds"]) if key in report["rounds"][0]["ratios"] else ""
            print(f"{key}: {report[key]:.3g}" + (f"  (rounds: {each})" if args.rounds > 1 and each else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
