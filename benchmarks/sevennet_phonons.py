"""Benchmark: exact force constants of the ported SevenNet (ours) vs SevenNet + phonopy finite displacements.

Two routes to the force constants of one crystal and supercell, same weights,
both float32 (sevenn's only dtype):

- *ours*: ``phonopy_from_atoms(atoms, FCNetCalculator(model, dtype="float32"),
  supercell_matrix=...)``: phonopy's symmetry-irreducible directions, exact
  Hessian-vector products, compact force constants;
- *FD*: what a SevenNet user runs today: ``Phonopy(...)``,
  ``generate_displacements(distance=0.01, is_plusminus=True)``, forces of every
  displaced supercell from ``SevenNetCalculator`` (``atoms.get_forces()``),
  ``produce_force_constants()`` (phonopy's defaults).

Both start from the same ``ase.Atoms`` unit cell, ``primitive_matrix="auto"``.
One fresh process per (model, case) loads both calculators, makes one warm-up
energy+force call of each on the supercell (not timed), then runs
``--rounds`` rounds of both routes, ours first in even rounds and FD first in
odd ones; each route is timed end to end (phonopy set-up included; ours uses
ase_fcnet's faster phonopy symmetry set-up, FD phonopy's own, as users get).
Reported: the median over rounds of each, the median of the per-round ratio
FD / ours, and phonon frequencies on the same q-mesh from both routes' force
constants (MAE and max |Δf|, THz).

Targets (issue item 6): exact force constants at least 1.5× faster than FD on
the P1 cell; on high-symmetry cells at most 1.25× slower (FD / ours ≥ 0.8).

    python benchmarks/sevennet_phonons.py            # default cases and models (16 min, shared 2 cores)
    python benchmarks/sevennet_phonons.py --quick    # sevennet-0, 64/72-atom cases, 1 round
    python benchmarks/sevennet_phonons.py --models sevennet-0 --cases p1-64 --no-docs

Writes docs/benchmarks/sevennet_phonons.json (``--out-json``) and prints a
markdown table; docs/benchmarks.md quotes it. Each process takes the ``fcnet``
command's allocator setting (``ase_fcnet.allocator``, both routes alike) and
``--threads`` torch threads (default 1: with other jobs on the 2-core
machine, 2 threads made every call 2-6 times slower, see sevennet_speed.py).

A second check (``--convergence-cases``, float64, ase_fcnet's calculator in
both routes, not timed) runs phonopy's ± finite displacements at 0.03 to
0.0003 Å against the exact force constants, and reports how close the
supercell's pair distances come to the model's switching radii (SevenNet-0's
XPLOR switch starts at r_on = 4.5 Å; force constants jump where a pair
distance crosses it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from force_constants import crystals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "sevennet_phonons.json"
SEVENN_NAME = {"sevennet-0": "7net-0", "sevennet-l3i5": "7net-l3i5"}
#: case name -> (crystal in force_constants.crystals(), supercell repeats)
CASES = {
    "si-64": ("Si diamond (Fd-3m)", (2, 2, 2)),
    "si-216": ("Si diamond (Fd-3m)", (3, 3, 3)),
    "nacl-64": ("NaCl rock salt (Fm-3m)", (2, 2, 2)),
    "nacl-216": ("NaCl rock salt (Fm-3m)", (3, 3, 3)),
    "quartz-72": ("SiO2 alpha-quartz (P3_221)", (2, 2, 2)),
    "quartz-162": ("SiO2 alpha-quartz (P3_221)", (3, 3, 2)),
    "p1-64": ("SiC distorted (P1)", (2, 2, 2)),
    "p1-216": ("SiC distorted (P1)", (3, 3, 3)),
}
DEFAULT_CASES = ["si-216", "nacl-216", "quartz-72", "p1-64"]
QUICK_CASES = ["si-64", "nacl-64", "quartz-72", "p1-64"]
HIGH_SYMMETRY = ("si", "nacl")


def ours_route(atoms, calc, sc):
    """Exact force constants through ase_fcnet (timed by the caller)."""
    from ase_fcnet.phonons import phonopy_from_atoms

    ph = phonopy_from_atoms(atoms, calc, supercell_matrix=sc)
    return ph, {"n_directions": len(ph.displacements)}


def fd_route(atoms, calc, sc):
    """SevenNet + phonopy finite displacements, ± pairs, as a user script does it."""
    from phonopy import Phonopy

    from ase_fcnet.phonons.adapter import atoms_to_phonopy, phonopy_to_atoms

    calc.reset()
    t0 = time.perf_counter()
    ph = Phonopy(atoms_to_phonopy(atoms), supercell_matrix=sc, primitive_matrix="auto")
    ph.generate_displacements(distance=0.01, is_plusminus=True)
    t1 = time.perf_counter()
    forces = []
    for cell in ph.supercells_with_displacements:
        displaced = phonopy_to_atoms(cell)
        displaced.calc = calc
        forces.append(displaced.get_forces())
    ph.forces = np.array(forces)
    t2 = time.perf_counter()
    ph.produce_force_constants()
    t3 = time.perf_counter()
    return ph, {"n_displacements": len(forces), "setup_s": t1 - t0, "forces_s": t2 - t1, "fc_s": t3 - t2}


def switch_distances(model) -> dict:
    """Radii where the model's radial switching function changes form (Å): ``r_on`` if it has one."""
    for module in model.modules():
        if hasattr(module, "r_on") and hasattr(module, "r_max"):
            return {"r_on": float(module.r_on), "r_max": float(module.r_max)}
    return {"r_max": float(model.cutoff)}


def closest_pair_to(atoms, radii: dict) -> dict:
    """For each radius: the smallest |d_ij − radius| over the pairs of ``atoms`` (Å)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, max(radii.values()) + 0.5)
    return {name: float(np.abs(d - r).min()) for name, r in radii.items()}


def fd_convergence(model: str, case: str, mesh: int, distances=(0.03, 0.01, 0.003, 0.001, 0.0003)) -> dict:
    """Float64, our calculator in both routes: phonopy ± finite displacements of several
    amplitudes against the exact force constants (mesh frequency MAE, THz)."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    warnings.filterwarnings("ignore")
    from phonopy import Phonopy

    from ase_fcnet import FCNetCalculator
    from ase_fcnet.phonons.adapter import atoms_to_phonopy, phonopy_to_atoms

    name, reps = CASES[case]
    atoms = crystals()[name][0]
    sc = np.diag(reps)
    calc = FCNetCalculator(model=model, device="cpu", dtype="float64")
    exact = mesh_frequencies(ours_route(atoms, calc, sc)[0], mesh)
    radii = switch_distances(calc.model)
    rows = []
    for distance in distances:
        ph = Phonopy(atoms_to_phonopy(atoms), supercell_matrix=sc, primitive_matrix="auto")
        ph.generate_displacements(distance=distance, is_plusminus=True)
        forces = []
        for cell in ph.supercells_with_displacements:
            calc.calculate(phonopy_to_atoms(cell), ["energy", "forces"])
            forces.append(calc.results["forces"].copy())
        ph.forces = np.array(forces)
        ph.produce_force_constants()
        rows.append({"distance_A": distance,
                     "mesh_mae_THz": float(np.abs(mesh_frequencies(ph, mesh) - exact).mean())})
    return {"model": model, "case": case, "dtype": "float64", "switch_radii_A": radii,
            "closest_pair_to_radius_A": closest_pair_to(atoms * reps, radii), "fd": rows}


def mesh_frequencies(ph, mesh: int) -> np.ndarray:
    ph.run_mesh([mesh] * 3, is_mesh_symmetry=False, with_eigenvectors=False)
    return np.array(ph.mesh.frequencies)


def run_case(model: str, case: str, rounds: int, threads: int, mesh: int) -> dict:
    """In this (fresh) process: both routes, ``rounds`` times, alternating order."""
    from ase_fcnet.allocator import tune_glibc_malloc

    tuned = tune_glibc_malloc()
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    from ase_fcnet import FCNetCalculator

    name, reps = CASES[case]
    atoms = crystals()[name][0]
    sc = np.diag(reps)
    t0 = time.perf_counter()
    ours = FCNetCalculator(model=model, device="cpu", dtype="float32")
    t1 = time.perf_counter()
    sevenn = SevenNetCalculator(SEVENN_NAME[model], device="cpu")
    t2 = time.perf_counter()
    supercell = atoms * reps
    warm = {}
    for label, calc in (("ours", ours), ("sevenn", sevenn)):
        start = time.perf_counter()
        calc.calculate(supercell, ["energy", "forces"])
        warm[label] = time.perf_counter() - start
    routes = {"ours": (ours_route, ours), "fd": (fd_route, sevenn)}
    seconds = {"ours": [], "fd": []}
    details = {"ours": [], "fd": []}
    phonons = {}
    for r in range(rounds):
        for label in (("ours", "fd") if r % 2 == 0 else ("fd", "ours")):
            func, calc = routes[label]
            start = time.perf_counter()
            ph, info = func(atoms, calc, sc)
            seconds[label].append(time.perf_counter() - start)
            details[label].append(info)
            phonons[label] = ph
    f_ours = mesh_frequencies(phonons["ours"], mesh)
    f_fd = mesh_frequencies(phonons["fd"], mesh)
    gamma_ours = phonons["ours"].get_frequencies([0, 0, 0])
    gamma_fd = phonons["fd"].get_frequencies([0, 0, 0])
    ratios = [f / o for f, o in zip(seconds["fd"], seconds["ours"])]
    radii = switch_distances(ours.model)
    return {
        "switch_radii_A": radii, "closest_pair_to_radius_A": closest_pair_to(supercell, radii),
        "model": model, "case": case, "crystal": name, "supercell": list(reps),
        "n_atoms": len(phonons["ours"].supercell), "n_primitive": len(phonons["ours"].primitive),
        "threads": threads, "allocator_tuned": tuned, "load_s": {"ours": t1 - t0, "sevenn": t2 - t1},
        "warmup_energy_forces_s": warm, "seconds": seconds, "details": details,
        "median_s": {k: float(np.median(v)) for k, v in seconds.items()},
        "fd_over_ours": ratios, "median_fd_over_ours": float(np.median(ratios)),
        "n_directions": details["ours"][0]["n_directions"],
        "n_displacements": details["fd"][0]["n_displacements"],
        "mesh": [mesh] * 3,
        "mesh_mae_THz": float(np.abs(f_ours - f_fd).mean()),
        "mesh_max_abs_THz": float(np.abs(f_ours - f_fd).max()),
        "gamma_ours_THz": gamma_ours.tolist(), "gamma_fd_THz": gamma_fd.tolist(),
        "max_frequency_THz": float(f_fd.max()),
        "min_frequency_ours_THz": float(f_ours.min()), "min_frequency_fd_THz": float(f_fd.min()),
    }


def _child(model: str, case: str, args, flag: str = "--child") -> dict:
    cmd = [sys.executable, __file__, flag, model, case, "--rounds", str(args.rounds),
           "--threads", str(args.threads), "--mesh", str(args.mesh)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONWARNINGS="ignore")
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{model} {case} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def verdict(r: dict) -> str:
    ratio = r["median_fd_over_ours"]
    if r["case"].startswith("p1"):
        return "met" if ratio >= 1.5 else "not met"
    if r["case"].startswith(HIGH_SYMMETRY):
        return "met" if ratio >= 0.8 else "not met"
    return "–"


def table(rows: list[dict]) -> str:
    lines = ["| model | case | atoms | ours (s) [directions] | FD (s) [displacements] | FD set-up / forces / FC (s) "
             "| FD / ours | target | mesh MAE (THz) | max abs Δf (THz) | warm E+F ours / sevenn (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r["details"]["fd"]
        parts = " / ".join(f"{np.median([x[k] for x in d]):.2f}" for k in ("setup_s", "forces_s", "fc_s"))
        w = r["warmup_energy_forces_s"]
        lines.append(
            f"| {r['model']} | {r['crystal']} | {r['n_atoms']} | {r['median_s']['ours']:.2f} "
            f"({min(r['seconds']['ours']):.2f}) [{r['n_directions']}] | {r['median_s']['fd']:.2f} "
            f"({min(r['seconds']['fd']):.2f}) [{r['n_displacements']}] | {parts} | {r['median_fd_over_ours']:.2f} "
            f"({min(r['seconds']['fd']) / min(r['seconds']['ours']):.2f}) "
            f"| {verdict(r)} | {r['mesh_mae_THz']:.4f} | {r['mesh_max_abs_THz']:.4f} "
            f"| {w['ours']:.2f} / {w['sevenn']:.2f} |")
    return "\n".join(lines)


def convergence_table(rows: list[dict]) -> str:
    distances = [r["distance_A"] for r in rows[0]["fd"]]
    lines = ["| model | case | switch radii (Å) | closest pair distance to them (Å) | "
             + " | ".join(f"FD {d} Å" for d in distances) + " |",
             "|---|---|---|---|" + "---|" * len(distances)]
    for c in rows:
        radii = ", ".join(f"{k} {v}" for k, v in c["switch_radii_A"].items())
        close = ", ".join(f"{k} {v:.4f}" for k, v in c["closest_pair_to_radius_A"].items())
        lines.append(f"| {c['model']} | {c['case']} | {radii} | {close} | "
                     + " | ".join(f"{r['mesh_mae_THz']:.1e}" for r in c["fd"]) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["sevennet-l3i5", "sevennet-0"], choices=list(SEVENN_NAME))
    p.add_argument("--cases", nargs="+", default=DEFAULT_CASES, choices=list(CASES))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of both routes (1: on the shared 2-core machine 2 threads ran slower)")
    p.add_argument("--mesh", type=int, default=10, help="q-mesh per direction for the frequency comparison")
    p.add_argument("--quick", action="store_true", help="sevennet-0, the 64/72-atom cases, 1 round")
    p.add_argument("--out-json", type=Path, default=OUT)
    p.add_argument("--no-docs", action="store_true", help="write no JSON")
    p.add_argument("--convergence-cases", nargs="*", default=["si-64", "nacl-64"], choices=list(CASES),
                   help="cases of the float64 finite-displacement amplitude check (each model)")
    p.add_argument("--child", nargs=2, metavar=("MODEL", "CASE"))
    p.add_argument("--child-convergence", nargs=2, metavar=("MODEL", "CASE"))
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child[0], args.child[1], args.rounds, args.threads, args.mesh)))
        return
    if args.child_convergence:
        print(json.dumps(fd_convergence(args.child_convergence[0], args.child_convergence[1], args.mesh)))
        return
    if args.quick:
        args.models, args.cases, args.rounds, args.convergence_cases = ["sevennet-0"], QUICK_CASES, 1, []
    start = time.perf_counter()
    rows = []
    for model in args.models:
        for case in args.cases:
            r = _child(model, case, args)
            rows.append(r)
            print(f"{model:14s} {case:11s} {r['n_atoms']:4d} atoms  ours {r['median_s']['ours']:7.2f} s "
                  f"[{r['n_directions']}]  FD {r['median_s']['fd']:7.2f} s [{r['n_displacements']}]  "
                  f"FD/ours {r['median_fd_over_ours']:.2f} ({verdict(r)})  mesh MAE {r['mesh_mae_THz']:.4f} THz",
                  flush=True)
    convergence = []
    for model in args.models:
        for case in args.convergence_cases:
            c = _child(model, case, args, "--child-convergence")
            convergence.append(c)
            print(f"{model:14s} {case:11s} float64 FD vs exact, mesh MAE (THz): "
                  + ", ".join(f"{r['distance_A']} Å {r['mesh_mae_THz']:.2e}" for r in c["fd"])
                  + f"; closest pair to {c['closest_pair_to_radius_A']}", flush=True)
    import torch

    result = {"command": " ".join(["python benchmarks/sevennet_phonons.py", *sys.argv[1:]]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "load_average_at_end": os.getloadavg()},
              "rounds": args.rounds, "threads": args.threads, "results": rows, "fd_convergence": convergence,
              "wall_s": time.perf_counter() - start}
    if not args.no_docs:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out_json}")
    print()
    print(table(rows))
    if convergence:
        print()
        print(convergence_table(convergence))
    print(f"\nwall time {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
