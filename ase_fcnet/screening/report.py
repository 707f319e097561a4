"""What people look at after a screen: a summary table, a CSV export and a figure.

All three work on database rows (``ase.db`` rows without ``data``), so they
describe a resumed screen as a whole, not just its last run.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from ase_fcnet.fileio import atomic_write

#: Columns first in the CSV, in this order; every other key-value pair follows, sorted.
FIRST_COLUMNS = ["id", "name", "status", "formula", "natoms", "space_group", "supercell", "fmin_THz",
                 "fmax_THz", "imaginary", "q_lowest", "S300_kB_per_atom", "Cv300_kB_per_atom",
                 "F300_eV_per_atom", "zpe_eV_per_atom", "time_total_s", "error_type", "error"]


def _value(row, column):
    if column in ("id", "formula", "natoms"):
        return getattr(row, column)
    return row.get(column)


def summarize(rows, slowest: int = 5) -> dict:
    """Counts of stable / unstable / failed materials, the slowest ones and failures by reason.

    Returns
    -------
    dict
        ``n_rows``, ``n_stable``, ``n_unstable``, ``n_failed``, ``slowest`` (list of
        ``(name, seconds)``), ``failures`` (list of ``(error_type, count, example message)``).
    """
    done = [r for r in rows if r.get("status") == "done"]
    failed = [r for r in rows if r.get("status") == "failed"]
    unstable = [r for r in done if r.get("imaginary")]
    timed = sorted((r for r in done if r.get("time_total_s") is not None),
                   key=lambda r: -r.get("time_total_s"))
    reasons = Counter(r.get("error_type", "Error") for r in failed)
    example = {}
    for r in failed:
        example.setdefault(r.get("error_type", "Error"), f"{r.get('name')}: {r.get('error', '')}")
    return {
        "n_rows": len(rows), "n_stable": len(done) - len(unstable), "n_unstable": len(unstable),
        "n_failed": len(failed),
        "slowest": [(r.get("name"), float(r.get("time_total_s"))) for r in timed[:slowest]],
        "failures": [(kind, count, example[kind]) for kind, count in reasons.most_common()],
    }


def format_summary(summary: dict, width: int = 100) -> str:
    """The summary as a plain-text table."""
    lines = [f"materials {summary['n_rows']}: stable {summary['n_stable']}, "
             f"unstable (imaginary modes) {summary['n_unstable']}, failed {summary['n_failed']}"]
    if summary["slowest"]:
        lines.append("slowest:")
        lines += [f"  {name:<30s} {seconds:8.2f} s" for name, seconds in summary["slowest"]]
    if summary["failures"]:
        lines.append("failures by reason:")
        for kind, count, example in summary["failures"]:
            text = f"  {kind:<16s} {count:4d}  e.g. {example}"
            lines.append(text if len(text) <= width else text[: width - 1] + "…")
    return "\n".join(lines)


def write_csv(rows, path) -> Path:
    """One line per row: the columns of :data:`FIRST_COLUMNS`, then every other key-value pair."""
    others = sorted({k for r in rows for k in r.key_value_pairs} - set(FIRST_COLUMNS))
    columns = FIRST_COLUMNS + others

    def writer(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(columns)
            for r in rows:
                out.writerow(["" if (v := _value(r, c)) is None else v for c in columns])

    return atomic_write(path, writer)


def plot(rows, path) -> Path:
    """Lowest frequency per material coloured by stability (left), histogram of S(300 K) (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = sorted((r for r in rows if r.get("status") == "done"), key=lambda r: r.get("fmin_THz"))
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    fmin = np.array([r.get("fmin_THz") for r in done], dtype=float)
    unstable = np.array([bool(r.get("imaginary")) for r in done], dtype=bool)
    x = np.arange(len(done))
    left.scatter(x[~unstable], fmin[~unstable], s=18, color="tab:blue", label=f"stable ({(~unstable).sum()})")
    left.scatter(x[unstable], fmin[unstable], s=18, color="tab:red",
                 label=f"imaginary modes ({unstable.sum()})")
    left.axhline(0.0, color="0.5", lw=0.8, ls="--")
    if len(done):  # stable materials sit at ~0 THz (acoustic modes at Γ): keep ±1 THz in view
        lowest = min(float(fmin.min()), -1.0)
        left.set_ylim(lowest - 0.05 * abs(lowest), max(1.0, float(fmin.max()) + 0.05 * abs(lowest)))
    left.set_xlabel("material (sorted by lowest frequency)")
    left.set_ylabel("lowest frequency (THz; negative = imaginary)")
    n_failed = sum(r.get("status") == "failed" for r in rows)
    left.set_title(f"{len(done)} materials done, {n_failed} failed")
    if len(done) <= 20:
        left.set_xticks(x, [str(r.get("name")) for r in done], rotation=60, ha="right", fontsize=7)
    left.legend(loc="lower right", fontsize=8)
    entropy = np.array([r.get("S300_kB_per_atom") for r in done], dtype=float)
    right.hist(entropy, bins=max(5, min(30, len(entropy) // 2 or 1)), color="tab:green", alpha=0.8)
    right.set_xlabel("S at 300 K (k_B per atom)")
    right.set_ylabel("materials")
    right.set_title("vibrational entropy at 300 K")
    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in Path(path).name else "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=130))
