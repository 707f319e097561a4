"""Figures are written, keep imaginary frequencies visible and leave matplotlib's global state alone."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from matplotlib.figure import Figure

from ase_fcnet.phonons import (
    band_structure,
    dos,
    draw_band_comparison,
    phonopy_from_atoms,
    plot_band_comparison,
    plot_band_dos,
    plot_thermal,
    thermal_properties,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_band_dos_figure(sic_phonon, tmp_path):
    band = band_structure(sic_phonon, npoints=11)
    density = dos(sic_phonon, mesh=(6, 6, 6))
    fig = plot_band_dos(band, density, tmp_path / "band_dos.png")
    data = (tmp_path / "band_dos.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    ax_band, ax_dos = fig.axes
    assert [t.get_text() for t in ax_band.get_xticklabels()] == band.labels
    assert ax_band.get_ylim()[1] >= band.all_frequencies.max()
    assert {line.get_label() for line in ax_dos.get_lines()} >= {"total", "Si", "C"}


def test_band_comparison_reports_the_mean_difference_from_the_reference(sic_phonon, tmp_path):
    band = band_structure(sic_phonon, npoints=11)
    shifted = dataclasses.replace(band, frequencies=[f + 0.25 for f in band.frequencies])
    scaled = dataclasses.replace(band, frequencies=[1.1 * f for f in band.frequencies])
    bands = {"reference": band, "shifted": shifted, "scaled": scaled}
    mae = plot_band_comparison(bands, tmp_path / "cmp.png", "SiC")
    assert (tmp_path / "cmp.png").read_bytes().startswith(PNG_SIGNATURE)
    assert mae["shifted"] == pytest.approx(0.25)
    assert mae["scaled"] == pytest.approx(0.1 * np.abs(band.all_frequencies).mean())
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert draw_band_comparison(axes[1], bands, "right") == mae
    assert axes[1].get_title() == "right" and not axes[0].get_lines()
    labels = [text.get_text() for text in axes[1].get_legend().get_texts()]
    assert labels == ["reference", "shifted (MAE 0.25 THz)", f"scaled (MAE {mae['scaled']:.2f} THz)"]


def test_imaginary_frequencies_are_not_clipped(tmp_path):
    calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0, smooth=True)
    phonon = phonopy_from_atoms(bulk("Ar", "fcc", a=6.0, cubic=True), calc, supercell_matrix=2, method="fd")
    band = band_structure(phonon, npoints=11)
    fmin = band.all_frequencies.min()
    assert fmin < -0.1
    fig = plot_band_dos(band, None, tmp_path / "band.png")
    (ax,) = fig.axes
    assert ax.get_ylim()[0] < fmin
    zero_lines = [line for line in ax.get_lines() if line.get_linestyle() == "--" and np.allclose(line.get_ydata(), 0)]
    assert zero_lines


def test_thermal_figure(si_phonon, tmp_path):
    thermal = thermal_properties(si_phonon, t_max=800, t_step=20, mesh=(6, 6, 6))
    fig = plot_thermal(thermal, tmp_path / "thermal.png")
    assert (tmp_path / "thermal.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(fig.axes) == 3
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(), thermal.heat_capacity)
    assert os.listdir(tmp_path) == ["thermal.png"]


def test_import_does_not_change_backend():
    code = "import matplotlib; import ase_fcnet.phonons.plotting; print(matplotlib.get_backend())"
    env = dict(os.environ, MPLBACKEND="svg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_matplotlib_is_imported_only_when_a_figure_is_made():
    """Screening workers and commands that draw nothing skip matplotlib's import (about 0.4 s)."""
    code = ("import sys, ase_fcnet.phonons, ase_fcnet.screening.worker; "
            "print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
