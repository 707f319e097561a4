"""Per-epoch metrics: ``metrics.csv``, ``metrics.json`` and ``loss_curves.png``."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ase_fcnet.fileio import atomic_write, atomic_write_text


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    return cols


def metrics_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV text (union of the keys as columns; empty cells where missing)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def loss_curves_figure(rows: Sequence[dict[str, Any]]) -> Figure:
    """Training and validation losses per epoch (log scale), total and per term.

    Parameters
    ----------
    rows : sequence of dict
        Per-epoch metrics with ``epoch``, ``train_loss``, optional ``val_loss``
        and ``train_<term>`` / ``val_<term>`` entries.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (no global matplotlib state is touched).
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_total, ax_terms = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in rows]
    for prefix, style in (("train", "-"), ("val", "--")):
        values = [r.get(f"{prefix}_loss") for r in rows]
        if any(v is not None for v in values):
            ax_total.plot(epochs, values, style, marker="o", ms=3, label=prefix)
    terms = sorted({k[len("train_"):] for r in rows for k in r
                    if k.startswith("train_") and k != "train_loss" and not k.endswith("_mae")})
    for k, term in enumerate(terms):
        color = f"C{k}"
        for prefix, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{prefix}_{term}") for r in rows]
            if any(v is not None for v in values):
                ax_terms.plot(epochs, values, style, color=color, label=f"{prefix} {term}")
    for ax, title in ((ax_total, "weighted total loss"), (ax_terms, "loss terms (own units)")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if ax.lines:
            ax.set_yscale("log")
            ax.legend(fontsize=7)
    return fig


class MetricsLog:
    """Rows of per-epoch metrics, written to ``out_dir`` after each epoch.

    Parameters
    ----------
    out_dir : path-like
    rows : list of dict, optional — earlier rows (when resuming)
    """

    def __init__(self, out_dir: str | os.PathLike, rows: list[dict[str, Any]] | None = None):
        self.out_dir = Path(out_dir)
        self.rows: list[dict[str, Any]] = list(rows or [])

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def write(self) -> None:
        """Write ``metrics.csv``, ``metrics.json`` and ``loss_curves.png`` (atomically)."""
        atomic_write_text(self.out_dir / "metrics.csv", metrics_csv(self.rows))
        atomic_write_text(self.out_dir / "metrics.json", json.dumps(self.rows, indent=1))
        fig = loss_curves_figure(self.rows)
        atomic_write(self.out_dir / "loss_curves.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
