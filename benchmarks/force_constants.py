"""Benchmark: analytic force constants vs phonopy finite displacements vs the full Hessian.

Each (crystal, supercell, method) runs in its own Python process so that peak
memory (ru_maxrss) belongs to that case alone. Results go to
``docs/benchmarks/force_constants.json``, a table in ``docs/benchmarks.md``
(between markers) and a figure ``docs/benchmarks/force_constants.png``.

    python benchmarks/force_constants.py            # all cases (~15 min on 2 cores)
    python benchmarks/force_constants.py --quick    # 64-atom cases only
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARK_BEGIN = "<!-- force-constants-benchmark:begin -->"
MARK_END = "<!-- force-constants-benchmark:end -->"
SPECIES = ("C", "O", "Na", "Si", "Cl")


def crystals():
    """Unit cells and (≈64, ≈216)-atom supercell multiples of each."""
    from ase.build import bulk
    from ase.spacegroup import crystal

    si = bulk("Si", "diamond", a=5.43, cubic=True)
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    quartz = crystal(
        ["Si", "O"], basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)], spacegroup=154,
        cellpar=[4.916, 4.916, 5.405, 90, 90, 120],
    )
    sic = bulk("SiC", "zincblende", a=4.36, cubic=True)
    sic.set_cell(sic.cell @ np.array([[1.0, 0.02, 0.01], [0.0, 1.0, 0.03], [0.0, 0.0, 1.0]]),
                 scale_atoms=True)
    sic.rattle(0.03, seed=7)
    return {
        "Si diamond (Fd-3m)": (si, [(2, 2, 2), (3, 3, 3)]),
        "NaCl rock salt (Fm-3m)": (nacl, [(2, 2, 2), (3, 3, 3)]),
        "SiO2 alpha-quartz (P3_221)": (quartz, [(2, 2, 2), (3, 3, 3)]),
        "SiC distorted (P1)": (sic, [(2, 2, 2), (3, 3, 3)]),
    }


def _model(path):
    from ase_fcnet import FCNetCalculator
    from ase_fcnet.model import ModelConfig, build_model

    if path:
        return FCNetCalculator(model=path, device="cpu")
    model = build_model(ModelConfig(species=SPECIES), seed=0)
    model.energy_scale.fill_(5.0)
    return FCNetCalculator(model=model, device="cpu")


def run_case(name: str, size: int, method: str, model_path: str | None) -> dict:
    """One measurement, in this process. Returns timings (s) and peak RSS (MB).

    The process first takes the allocator setting the ``fcnet`` command uses
    (every route alike; ``FCNET_MALLOC_TUNING=0`` for glibc's default).
    """
    from phonopy.harmonic.force_constants import compact_fc_to_full_fc

    from ase_fcnet.allocator import tune_glibc_malloc

    tuned = tune_glibc_malloc()

    from ase_fcnet.phonons import phonopy_from_atoms
    from ase_fcnet.phonopy_bridge import phonopy_to_atoms, rows_to_force_constants

    atoms, sizes = crystals()[name]
    calc = _model(model_path)
    sc = np.diag(sizes[size])
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"crystal": name, "supercell": sizes[size], "method": method, "allocator_tuned": tuned}
    start = time.perf_counter()
    if method in ("analytic", "finite-displacement"):
        ph = phonopy_from_atoms(atoms, calc, supercell_matrix=sc, method=method)
        out["seconds"] = time.perf_counter() - start
        out["n_atoms"] = len(ph.supercell)
        out["n_directions"] = len(ph.displacements)
        np.save(_fc_file(name, size, method), ph.force_constants)
    elif method == "full-hessian":
        ph = phonopy_from_atoms(atoms, calc, supercell_matrix=sc, method="analytic")
        supercell = phonopy_to_atoms(ph.supercell)
        start = time.perf_counter()
        hess = calc.get_hessian(supercell)
        out["seconds"] = time.perf_counter() - start
        n = len(supercell)
        out["n_atoms"] = n
        full = compact_fc_to_full_fc(ph.primitive, ph.force_constants)
        out["max_abs_diff_vs_analytic"] = float(
            np.abs(rows_to_force_constants(hess) - full).max())
        out["max_abs_hessian"] = float(np.abs(hess).max())
    elif method == "energy-forces":
        ph = phonopy_from_atoms(atoms, calc, supercell_matrix=sc, method="analytic")
        supercell = phonopy_to_atoms(ph.supercell)
        calc.calculate(supercell, ["energy", "forces"])
        start = time.perf_counter()
        for _ in range(5):
            calc.calculate(supercell, ["energy", "forces"])
        out["seconds"] = (time.perf_counter() - start) / 5
        out["n_atoms"] = len(supercell)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_rss_MB"] = peak
    out["rss_before_MB"] = base_rss
    return out


def _fc_file(name, size, method):
    tmp = Path(os.environ.get("FCNET_BENCH_TMP", "/tmp")) / "fcnet_bench"
    tmp.mkdir(parents=True, exist_ok=True)
    tag = "".join(c for c in name if c.isalnum())
    return tmp / f"{tag}_{size}_{method}.npy"


def _subprocess(name, size, method, model_path):
    cmd = [sys.executable, __file__, "--case", name, "--size", str(size), "--method", method]
    if model_path:
        cmd += ["--model", model_path]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"case {name} {size} {method} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_all(model_path, quick: bool) -> list[dict]:
    results = []
    sizes = [0] if quick else [0, 1]
    methods = ["energy-forces", "analytic", "finite-displacement", "full-hessian"]
    for name in crystals():
        for size in sizes:
            for method in methods:
                r = _subprocess(name, size, method, model_path)
                print(f"{name:28s} {r['n_atoms']:4d} atoms {method:20s} {r['seconds']:8.3f} s "
                      f"peak {r['peak_rss_MB']:.0f} MB", flush=True)
                results.append(r)
            a = np.load(_fc_file(name, size, "analytic"))
            f = np.load(_fc_file(name, size, "finite-displacement"))
            results[-3]["max_abs_diff_vs_fd"] = float(np.abs(a - f).max())
    return results


def table(results: list[dict]) -> str:
    rows = ["| crystal | atoms | E+F call (s) | analytic FC (s) [dirs] | finite disp. (s) [disps] "
            "| full Hessian (s) | FD / analytic | full / analytic | peak RSS analytic (MB) "
            "| max abs(analytic − full Hessian) (eV/Å²) | max abs(analytic − FD) (eV/Å²) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in range(0, len(results), 4):
        ef, an, fd, fh = results[k: k + 4]
        rows.append(
            f"| {an['crystal']} | {an['n_atoms']} | {ef['seconds']:.3f} | {an['seconds']:.2f} "
            f"[{an['n_directions']}] | {fd['seconds']:.2f} [{fd['n_directions']}] | {fh['seconds']:.1f} "
            f"| {fd['seconds'] / an['seconds']:.2f} | {fh['seconds'] / an['seconds']:.1f} "
            f"| {an['peak_rss_MB']:.0f} | {fh['max_abs_diff_vs_analytic']:.1e} "
            f"| {an['max_abs_diff_vs_fd']:.1e} |")
    return "\n".join(rows)


def figure(results: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    an = [r for r in results if r["method"] == "analytic"]
    fd = [r for r in results if r["method"] == "finite-displacement"]
    fh = [r for r in results if r["method"] == "full-hessian"]
    labels = [f"{r['crystal'].split(' (')[0]}\n{r['n_atoms']} at." for r in an]
    x = np.arange(len(an))
    fig = Figure(figsize=(10, 4.5))
    ax = fig.add_subplot()
    for k, (rows, lab) in enumerate([(an, "analytic (this package)"), (fd, "phonopy finite displacements"),
                                     (fh, "full Hessian")]):
        ax.bar(x + (k - 1) * 0.27, [r["seconds"] for r in rows], 0.27, label=lab)
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("wall time (s)")
    ax.set_title("Force constants with the same model (CPU, 2 cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_docs(results: list[dict], model_path) -> None:
    (DOCS / "benchmarks").mkdir(parents=True, exist_ok=True)
    allocator = ("fcnet's setting (`ase_fcnet.allocator`), every route"
                 if all(r["allocator_tuned"] for r in results) else "glibc default")
    meta = {"model": model_path or f"random-weight default-size model, species {SPECIES}",
            "torch_threads": __import__("torch").get_num_threads(), "allocator": allocator,
            "results": results}
    (DOCS / "benchmarks" / "force_constants.json").write_text(json.dumps(meta, indent=1) + "\n")
    figure(results, DOCS / "benchmarks" / "force_constants.png")
    md = DOCS / "benchmarks.md"
    text = md.read_text() if md.exists() else f"# Benchmarks\n\n{MARK_BEGIN}\n{MARK_END}\n"
    if MARK_BEGIN not in text:
        text += f"\n{MARK_BEGIN}\n{MARK_END}\n"
    head, rest = text.split(MARK_BEGIN)
    _, tail = rest.split(MARK_END)
    body = (f"Model: {meta['model']}; torch threads: {meta['torch_threads']}; "
            f"allocator: {meta['allocator']}. "
            "Command: `python benchmarks/force_constants.py`.\n\n" + table(results) + "\n\n"
            "![force constant timings](benchmarks/force_constants.png)\n")
    md.write_text(head + MARK_BEGIN + "\n" + body + MARK_END + tail)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model file (default: seeded random default-size model)")
    p.add_argument("--quick", action="store_true", help="only the ~64-atom supercells")
    p.add_argument("--case"), p.add_argument("--size", type=int), p.add_argument("--method")
    args = p.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.method, args.model)))
        return
    results = run_all(args.model, args.quick)
    write_docs(results, args.model)
    print(table(results))


if __name__ == "__main__":
    main()
