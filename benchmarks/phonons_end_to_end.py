"""Benchmark: end-to-end phonons with an ase_fcnet model vs its teacher (SevenNet-0) and CHGNet.

For each case (structure + supercell; every method uses the same supercell and
phonopy's automatic primitive cell) and method:

1. *in-process*: after imports, calculator load + force constants + band
   structure + DOS + thermal properties (+ frequency summary), with the
   settings of ``fcnet phonons`` (``PhononSettings`` defaults). ase_fcnet uses
   :func:`ase_fcnet.phonons.workflow.run_phonons` (exact Hessian); the teacher
   and CHGNet use phonopy's standard finite displacements (0.01 Å) through
   ``phonopy_from_atoms(method="finite-displacement")`` and the same analysis
   helpers.
2. *whole command*: ``fcnet phonons CIF --model M --supercell A B C --out DIR``
   vs ``python phonons_teacher.py CIF DIR A B C``, a stand-alone ase + phonopy +
   sevenn script written by this benchmark (same outputs and settings).
3. Peak RSS (MB) of each child process (in-process: ``ru_maxrss`` of the child;
   whole command: ``os.wait4`` of the command).
4. Frequencies vs the teacher on identical q-points: MAE and max |Δf| (THz)
   over the band path and the full q-mesh, and the Γ optical frequencies.

Every measurement runs in its own process, with ``--threads`` torch threads
(``torch.set_num_threads`` and ``OMP_NUM_THREADS``). Run it on an otherwise idle
machine: with more busy threads than cores, OpenMP spin-waiting made a 2-thread
SevenNet force call ~20x slower (9.6 s instead of 0.45 s for 64 Si atoms).

    python benchmarks/phonons_end_to_end.py                 # all cases, bundled default model
    python benchmarks/phonons_end_to_end.py --quick         # 64-atom cases only
    python benchmarks/phonons_end_to_end.py --model examples/si_sw/model.pt --cases si-64 \\
        --no-docs --out-json /tmp/e2e.json                  # a quick check, docs/ untouched
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _e2e_cases as e2e

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DEFAULT_JSON = DOCS / "benchmarks" / "phonons_end_to_end.json"
MARK_BEGIN = "<!-- phonons-end-to-end:begin -->"
MARK_END = "<!-- phonons-end-to-end:end -->"
SECTION = "## End-to-end phonons: bundled model vs teacher"
LABEL = {"fcnet": "ase_fcnet (analytic)", "teacher": "SevenNet-0 teacher (FD)", "chgnet": "CHGNet (FD)"}


def _env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    return env


def run_child(case: str, method: str, model: str, threads: int, work: Path) -> dict:
    """In-process measurement of one case/method in a fresh Python process."""
    cmd = [sys.executable, __file__, "--child", case, "--method", method, "--model", model,
           "--threads", str(threads), "--work", str(work)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_env(threads))
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_command(cmd: list[str], threads: int, work: Path, tag: str) -> dict:
    """Wall time (s) and peak RSS (MB) of one command, as a user would run it."""
    log = work / f"{tag}.log"
    with open(log, "w") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(threads), cwd=work)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit status {proc.returncode}")
    out_dir = next((Path(a) for a in cmd if Path(a).name.startswith("out_")), None)
    files = sorted(p.name for p in out_dir.iterdir()) if out_dir and out_dir.is_dir() else []
    return {"wall_s": wall_s, "peak_MB": usage.ru_maxrss / 1024, "command": " ".join(cmd), "files": files}


def measure(case: str, method: str, args, work: Path) -> dict:
    """Both measurements of one case/method, ``args.repeats`` times each (min time, max RSS)."""
    row = {"case": case, "method": method}
    try:
        runs = [run_child(case, method, args.model, args.threads, work) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["total_s"])
        row.update(best, peak_MB=max(r["peak_MB"] for r in runs), in_process_s=best["total_s"],
                   in_process_all_s=[r["total_s"] for r in runs])
    except RuntimeError as err:
        row["in_process_error"] = str(err)
    try:
        cmd = e2e.whole_command(method, case, args.model, args.threads, work)
        cmds = [run_command(cmd, args.threads, work, f"{case}_{method}_{k}") for k in range(args.repeats)]
        row.update(whole_command_s=min(c["wall_s"] for c in cmds), whole_command_all_s=[c["wall_s"] for c in cmds],
                   whole_command_peak_MB=max(c["peak_MB"] for c in cmds), command=cmds[0]["command"],
                   output_files=cmds[0]["files"])
    except RuntimeError as err:
        row["whole_command_error"] = str(err)
    return row


def _fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def progress_line(row: dict) -> str:
    """One line per case/method."""
    if "in_process_s" in row:
        inproc = (f"in-process {row['in_process_s']:7.2f} s (load {row['load_s']:.2f}, FC "
                  f"{row['force_constants_s']:.2f} [{row['n_force_calls']}], post {row['post_s']:.2f}) "
                  f"peak {row['peak_MB']:.0f} MB")
    else:
        inproc = f"in-process FAILED: {row.get('in_process_error', 'skipped')}"
    cmd = (f"command {row['whole_command_s']:7.2f} s peak {row['whole_command_peak_MB']:.0f} MB"
           if "whole_command_s" in row else f"command FAILED: {row.get('whole_command_error', 'skipped')}")
    mae = row.get("vs_teacher", {}).get("mesh_mae_THz")
    extra = f"  mesh MAE vs teacher {mae:.4f} THz" if mae is not None else ""
    return f"{row['case']:9s} {row['method']:8s} {inproc} | {cmd}{extra}"


def run_all(args, cases: list[str], methods: list[str], work: Path) -> list[dict]:
    """All cases and methods; the teacher first, the others compared with it."""
    rows = []
    for case in cases:
        for method in methods:
            row = measure(case, method, args, work)
            if method != "teacher" and "in_process_s" in row and (work / f"{case}_teacher.npz").exists():
                row["vs_teacher"] = e2e.compare_frequencies(work, case, method)
            rows.append(row)
            print(progress_line(row), flush=True)
    return rows


def _ratio(ref, value):
    return ref / value if ref is not None and value else None


def table(rows: list[dict]) -> str:
    """Markdown table of the results."""
    header = ("| case | atoms | method | in-process s (load / FC / post) | speed-up vs teacher "
              "| whole-command s | speed-up | peak MB (in-process / command) "
              "| freq MAE vs teacher THz (band / mesh) |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    teacher = {r["case"]: r for r in rows if r["method"] == "teacher"}
    for r in rows:
        t = teacher.get(r["case"], {})
        n_atoms = r.get("n_atoms") or t.get("n_atoms")
        if "in_process_s" in r:
            inproc = (f"{r['in_process_s']:.2f} ({r['load_s']:.2f} / {r['force_constants_s']:.2f} / "
                      f"{r['post_s']:.2f})")
        else:
            inproc = "failed" if "in_process_error" in r else "not installed"
        vs = r.get("vs_teacher", {})
        mae = ("reference" if r["method"] == "teacher" else
               f"{_fmt(vs.get('band_mae_THz'), '.3f')} / {_fmt(vs.get('mesh_mae_THz'), '.3f')}" if vs else "–")
        lines.append(
            f"| {r['case']} | {_fmt(n_atoms, 'd')} | {LABEL[r['method']]} | {inproc} "
            f"| {_fmt(_ratio(t.get('in_process_s'), r.get('in_process_s')), '.2f')} "
            f"| {_fmt(r.get('whole_command_s'), '.2f')} "
            f"| {_fmt(_ratio(t.get('whole_command_s'), r.get('whole_command_s')), '.2f')} "
            f"| {_fmt(r.get('peak_MB'), '.0f')} / {_fmt(r.get('whole_command_peak_MB'), '.0f')} | {mae} |")
    return "\n".join(lines)


def shared_table(rows: list[dict]) -> str:
    """Markdown table: how much of the in-process time is phonopy's, the same in every route.

    Phonopy's share is its supercell set-up (symmetry analysis, timed on its
    own in each child) plus the post-processing (bands, DOS, thermal
    properties). The ceiling is the speed-up ase_fcnet would have over the
    teacher if loading the model and computing the force constants took no time.
    """
    lines = ["| case | atoms | teacher in-process s | phonopy's share s (set-up + post) "
             "| ase_fcnet's own s (load + Hessian + FC assembly) | speed-up | ceiling (own work free) |",
             "|---|---|---|---|---|---|---|"]
    teacher = {r["case"]: r for r in rows if r["method"] == "teacher" and "in_process_s" in r}
    for r in rows:
        t = teacher.get(r["case"])
        if r["method"] != "fcnet" or t is None or "phonopy_setup_s" not in r:
            continue
        share = r["phonopy_setup_s"] + r["post_s"]
        lines.append(
            f"| {r['case']} | {r['n_atoms']} | {t['in_process_s']:.2f} | {share:.2f} "
            f"| {r['in_process_s'] - share:.2f} | {t['in_process_s'] / r['in_process_s']:.2f} "
            f"| {t['in_process_s'] / share:.2f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def figure(rows: list[dict], path: Path) -> None:
    """Grouped bars: in-process and whole-command time per case and method (log scale)."""
    from matplotlib.figure import Figure

    cases = list(dict.fromkeys(r["case"] for r in rows))
    methods = [m for m in e2e.METHODS if any(r["method"] == m and "in_process_s" in r for r in rows)]
    lookup = {(r["case"], r["method"]): r for r in rows}
    x = np.arange(len(cases))
    width = 0.8 / max(1, 2 * len(methods))
    fig = Figure(figsize=(5.0 + 1.4 * len(cases), 4.5))
    ax = fig.add_subplot()
    k = 0
    for method in methods:
        for key, kind, hatch in (("in_process_s", "in-process", ""), ("whole_command_s", "whole command", "//")):
            values = [lookup.get((c, method), {}).get(key, np.nan) for c in cases]
            ax.bar(x + (k - (2 * len(methods) - 1) / 2) * width, values, width, hatch=hatch,
                   color=f"C{e2e.METHODS.index(method)}", edgecolor="k", linewidth=0.4,
                   label=f"{LABEL[method]}, {kind}")
            k += 1
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{c}\n{lookup.get((c, 'teacher'), {}).get('n_atoms', '')} at." for c in cases])
    ax.set_ylabel("wall time (s)")
    ax.set_title("End-to-end phonons on CPU (FC + bands + DOS + thermal)", fontsize=10)
    times = [r[k] for r in rows for k in ("in_process_s", "whole_command_s") if k in r] or [1.0]
    ax.set_ylim(min(times) / 2, max(times) * 12)  # room for the legend
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def machine_info(args) -> dict:
    """CPU, library versions and threads of this run."""
    import ase
    import phonopy
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(), "torch": torch.__version__, "phonopy": phonopy.__version__,
            "ase": ase.__version__, "torch_threads": args.threads}
    for pkg in ("sevenn", "chgnet"):
        spec = importlib.util.find_spec(pkg)
        info[pkg] = __import__(pkg).__version__ if spec else "not installed"
    return info


def write_docs(text_table: str, meta: dict, png: Path) -> None:
    """Replace the table between the markers in docs/benchmarks.md (section appended if absent)."""
    md = DOCS / "benchmarks.md"
    text = md.read_text() if md.exists() else "# Benchmarks\n"
    if MARK_BEGIN not in text:
        text = text.rstrip("\n") + (
            f"\n\n{SECTION}\n\nThe whole phonon workflow (force constants, band structure, DOS, thermal "
            "properties) with an ase_fcnet model (exact Hessian) and with its teacher SevenNet-0 "
            "(phonopy finite displacements, 0.01 Å); same supercell, primitive cell, band path, "
            "q-mesh and temperatures (`fcnet phonons` defaults).\n\n"
            f"{MARK_BEGIN}\n{MARK_END}\n")
    head, rest = text.split(MARK_BEGIN)
    _, tail = rest.split(MARK_END)
    m = meta["machine"]
    body = (f"Model: `{meta['model']}`; CPU: {m['cpu']} ({m['cpu_count']} cores), torch {m['torch']}, "
            f"{m['torch_threads']} threads; CHGNet: {m['chgnet']}. Times are the minimum of "
            f"{meta['repeats']} run(s). Command: `{meta['command']}`. Raw numbers: "
            "[benchmarks/phonons_end_to_end.json](benchmarks/phonons_end_to_end.json).\n\n"
            "*In-process*: after imports (and after taking the allocator setting of the `fcnet` "
            "command, `ase_fcnet.allocator`, in every method's process alike), load + force constants "
            "(FC) + post-processing (bands, DOS, "
            "thermal properties, frequency summary). *Whole command*: `fcnet phonons CIF "
            "--supercell A B C --out DIR` (`--model M` unless M is the bundled default) vs an equivalent stand-alone ase + phonopy + sevenn script, "
            "imports and file output included (`fcnet` takes its allocator setting itself; the "
            "teacher script runs with glibc's default). Speed-up = teacher time / method time.\n\n"
            + text_table + "\n\n" + f"![end-to-end phonon timings](benchmarks/{png.name})\n")
    md.write_text(head + MARK_BEGIN + "\n" + body + MARK_END + tail)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="ase_fcnet model file (default: the bundled default model)")
    p.add_argument("--quick", action="store_true", help="only the 64-atom cases")
    p.add_argument("--cases", nargs="+", choices=list(e2e.CASES), help="subset of cases (default: all)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads in every child (default 2; use 1 on a machine busy with other jobs)")
    p.add_argument("--repeats", type=int, default=1, help="repeat each measurement, keep the minimum time")
    p.add_argument("--out-json", type=Path, default=None,
                   help="also write the results (and a .png beside) here; docs/ gets them unless --no-docs")
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/ (table and default JSON/figure)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(e2e.dump(e2e.run_in_process(args.child, args.method, args.model, args.threads, args.work)))
        return
    if args.model is None:
        from ase_fcnet.pretrained import default_model_path

        args.model = default_model_path()  # a clear error naming --model when none is bundled
    args.model = str(Path(args.model).resolve())  # the commands run in a temporary folder
    cases = args.cases or [c for c in e2e.CASES if not args.quick or c.endswith("-64")]
    chgnet = importlib.util.find_spec("chgnet") is not None
    methods = ["teacher", "fcnet"] + (["chgnet"] if chgnet else [])
    model = Path(args.model)
    meta = {"model": str(model.relative_to(ROOT)) if model.is_relative_to(ROOT) else args.model,
            "repeats": args.repeats, "machine": machine_info(args),
            "command": "python " + " ".join([Path(__file__).relative_to(ROOT).as_posix(), *sys.argv[1:]]),
            "settings": {k: v for k, v in vars(e2e.default_settings(cases[0])).items()
                         if k != "supercell_matrix"},
            "cases": {c: {"structure": e2e.DESCRIPTION[e2e.CASES[c][0]], "supercell": e2e.CASES[c][1]}
                      for c in cases},
            "chgnet": "included" if chgnet else "not installed"}
    print(f"model {args.model}; {args.threads} threads; cases {', '.join(cases)}; "
          f"methods {', '.join(methods)}{'' if chgnet else ' (CHGNet not installed)'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fcnet_e2e_") as tmp:
        rows = run_all(args, cases, methods, Path(tmp))
    if not chgnet:
        rows += [{"case": c, "method": "chgnet", "status": "not installed"} for c in cases]
        print(f"{'all':9s} chgnet   not installed (no importable chgnet): recorded as such", flush=True)
    meta["results"] = rows
    text_table = table(rows)
    shared = shared_table(rows)
    if shared:
        text_table += ("\n\nPhonopy's own work (supercell set-up and symmetry, bands, DOS, thermal "
                       "properties) is the same in every route and bounds the in-process speed-up:\n\n"
                       + shared)
    targets = ([args.out_json] if args.out_json else []) + ([] if args.no_docs else [DEFAULT_JSON])
    for path in dict.fromkeys(targets):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta, indent=1) + "\n")
        figure(rows, path.with_suffix(".png"))
        print(f"wrote {path} and {path.with_suffix('.png')}")
    if not args.no_docs:
        write_docs(text_table, meta, DEFAULT_JSON.with_suffix(".png"))
        print(f"updated {DOCS / 'benchmarks.md'}")
    print(text_table)


if __name__ == "__main__":
    main()
