"""Matplotlib figures for phonon results, drawn without pyplot or global state.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas and
saved atomically; importing this module does not touch the global backend.
Matplotlib is imported when the first figure is made (about 0.4 s), not with
the package: screening workers and commands that draw nothing skip it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .analysis import DOS, BandStructure, ThermalProperties
from .io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GAS_CONSTANT = 8.314462618  # J/K/mol


def _new_figure(**kwargs) -> Figure:
    """A matplotlib Figure (no pyplot)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Figure, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=150))


def _frequency_limits(values: np.ndarray) -> tuple[float, float]:
    fmin, fmax = float(np.min(values)), float(np.max(values))
    span = max(fmax - min(fmin, 0.0), 1e-3)
    lower = min(fmin, 0.0) - 0.04 * span
    return lower, fmax + 0.05 * span


def plot_band_dos(band: BandStructure, dos: DOS | None, path) -> Figure:
    """Band structure (left) and total/element-projected DOS (right).

    Negative (imaginary) frequencies are shown in full; a dashed line marks zero.

    Parameters
    ----------
    band : BandStructure
        From :func:`ase_fcnet.phonons.band_structure`; frequencies in THz.
    dos : DOS or None
        From :func:`ase_fcnet.phonons.dos`; omitted panel when None.
    path : str or os.PathLike
        Output image (format from the suffix, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = band.all_frequencies
    if dos is not None:
        values = np.concatenate([values.ravel(), dos.frequency_points[dos.total_dos > 0]])
    ylim = _frequency_limits(values)
    # fixed margins: a constrained layout costs ~0.25 s per figure, a tenth of `fcnet phonons`
    fig = _new_figure(figsize=(8.0, 4.8) if dos is not None else (6.0, 4.8))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.09, top=0.93, wspace=0.04)
    if dos is not None:
        ax_band, ax_dos = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    else:
        ax_band, ax_dos = fig.subplots(), None

    for dist, freq in zip(band.distances, band.frequencies):
        ax_band.plot(dist, freq, color="tab:blue", lw=1.2)
    for x in band.label_positions[1:-1]:
        ax_band.axvline(x, color="0.6", lw=0.6)
    ax_band.axhline(0.0, color="k", ls="--", lw=0.8)
    ax_band.set_xticks(band.label_positions, band.labels)
    ax_band.set_xlim(band.label_positions[0], band.label_positions[-1])
    ax_band.set_ylim(*ylim)
    ax_band.set_ylabel("Frequency (THz)")
    ax_band.set_title(f"Phonon bands ({band.path})")

    if ax_dos is not None:
        ax_dos.plot(dos.total_dos, dos.frequency_points, color="k", lw=1.2, label="total")
        if len(dos.pdos_by_element) > 1:
            for element, pdos in dos.pdos_by_element.items():
                ax_dos.plot(pdos, dos.frequency_points, lw=1.0, label=element)
        ax_dos.axhline(0.0, color="k", ls="--", lw=0.8)
        ax_dos.set_xlim(0.0, 1.05 * float(dos.total_dos.max()))
        ax_dos.set_xlabel("DOS (states/THz)")
        ax_dos.legend(loc="lower right", fontsize="small")
    _save(fig, path)
    return fig


def plot_thermal(thermal: ThermalProperties, path) -> Figure:
    """Free energy, entropy and heat capacity versus temperature.

    The Dulong–Petit limit ``3 n R`` of the heat capacity is drawn dashed.

    Parameters
    ----------
    thermal : ThermalProperties
        From :func:`ase_fcnet.phonons.thermal_properties`.
    path : str or os.PathLike
        Output image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _new_figure(figsize=(11.0, 3.8))
    fig.subplots_adjust(left=0.075, right=0.98, bottom=0.13, top=0.88, wspace=0.34)
    axes = fig.subplots(1, 3, sharex=True)
    t = thermal.temperatures
    limit = 3 * thermal.n_atoms * GAS_CONSTANT
    panels = [
        (thermal.free_energy, "Free energy F (kJ/mol)", "tab:blue"),
        (thermal.entropy, "Entropy S (J/K/mol)", "tab:orange"),
        (thermal.heat_capacity, "Heat capacity $C_V$ (J/K/mol)", "tab:green"),
    ]
    for ax, (values, label, color) in zip(axes, panels):
        ax.plot(t, values, color=color, lw=1.5)
        ax.set_ylabel(label)
        ax.set_xlabel("Temperature (K)")
        ax.set_xlim(t[0], t[-1])
        ax.grid(alpha=0.3)
    axes[0].axhline(0.0, color="k", lw=0.5)
    axes[2].axhline(limit, color="k", ls="--", lw=0.8, label=f"3nR = {limit:.1f} J/K/mol")
    axes[2].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Harmonic thermal properties per mole of primitive cells ({thermal.n_atoms} atoms)")
    _save(fig, path)
    return fig


def draw_band_comparison(ax, bands: dict[str, BandStructure], title: str = "") -> dict[str, float]:
    """Draw band structures on the same q-path into matplotlib axes; the first is the reference.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw into (for multi-panel figures).
    bands : dict
        Legend label -> band structure (THz), all from the same path and
        q-points; the first entry is drawn as the reference (thick black).
    title : str
        Axes title.

    Returns
    -------
    dict
        Label -> mean absolute frequency difference from the reference over
        all path points and bands, THz (reference label excluded).
    """
    names = list(bands)
    ref = bands[names[0]]
    mae = {name: float(np.abs(bands[name].all_frequencies - ref.all_frequencies).mean())
           for name in names[1:]}
    colors = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
    for k, name in enumerate(names):
        style = (dict(color="k", lw=2.0) if k == 0
                 else dict(color=colors[(k - 1) % len(colors)], lw=1.1, ls="-" if k == 1 else "--"))
        label = name if k == 0 else f"{name} (MAE {mae[name]:.2f} THz)"
        for j, (dist, freq) in enumerate(zip(bands[name].distances, bands[name].frequencies)):
            lines = ax.plot(dist, freq, **style)
            if j == 0:
                lines[0].set_label(label)
    for x in ref.label_positions[1:-1]:
        ax.axvline(x, color="0.7", lw=0.6)
    ax.axhline(0.0, color="k", ls=":", lw=0.6)
    ax.set_xticks(ref.label_positions, ref.labels)
    ax.set_xlim(ref.label_positions[0], ref.label_positions[-1])
    ax.set_ylabel("Frequency (THz)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return mae


def plot_band_comparison(bands: dict[str, BandStructure], path, title: str = "") -> dict[str, float]:
    """Overlay band structures on the same q-path in one figure; the first is the reference.

    Parameters
    ----------
    bands : dict
        Legend label -> band structure (THz), as for :func:`draw_band_comparison`.
    path : str or os.PathLike
        Output image.
    title : str
        Axes title.

    Returns
    -------
    dict
        Label -> mean absolute frequency difference from the reference, THz
        (see :func:`draw_band_comparison`).
    """
    fig = _new_figure(figsize=(7.0, 4.5), layout="constrained")
    mae = draw_band_comparison(fig.subplots(), bands, title)
    _save(fig, path)
    return mae
