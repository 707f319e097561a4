"""The whole phonon workflow: structure → force constants → bands, DOS, thermal properties.

Used by ``fcnet phonons`` and usable in-process::

    result = run_phonons(atoms, calc, PhononSettings(min_length=12.0))
    write_outputs(result, "out")
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from phonopy import Phonopy

from ase_fcnet.phonons.adapter import phonopy_from_atoms
from ase_fcnet.phonons.analysis import (
    DOS,
    BandStructure,
    FrequencySummary,
    ThermalProperties,
    band_structure,
    dos,
    frequency_summary,
    thermal_properties,
)
from ase_fcnet.phonons.io import (
    write_band_yaml,
    write_force_constants,
    write_phonopy_yaml,
    write_thermal_properties_table,
    write_thermal_properties_yaml,
)
from ase_fcnet.phonons.plotting import plot_band_dos, plot_thermal


@dataclass
class PhononSettings:
    """Options of the phonon workflow (units: Å, K, THz).

    Parameters
    ----------
    supercell_matrix : None, 3 ints or (3, 3) ints
        ``None`` picks the smallest diagonal supercell whose lattice planes are
        all ≥ ``min_length`` apart (:func:`ase_fcnet.phonopy_bridge.default_supercell_matrix`).
    min_length : float
        Minimum supercell plane spacing for the automatic choice, Å.
    primitive_matrix : str or (3, 3)
        ``"auto"`` (phonopy finds the primitive cell) or ``"P"`` (keep the cell).
    mesh : 3 ints or float
        q-point mesh for DOS and thermal properties, or a length (Å).
    npoints : int
        q-points per band-path segment.
    t_min, t_max, t_step : float
        Temperature grid, K.
    symprec : float
        Symmetry tolerance, Å.
    compare_fd : bool
        Also compute force constants by phonopy's finite displacements with the
        same calculator and report the frequency differences.
    """

    supercell_matrix: object = None
    min_length: float = 10.0
    primitive_matrix: object = "auto"
    mesh: object = 30.0
    npoints: int = 51
    t_min: float = 0.0
    t_max: float = 1000.0
    t_step: float = 10.0
    symprec: float = 1e-5
    compare_fd: bool = False


@dataclass
class PhononResult:
    """Everything the workflow computed (see :func:`run_phonons`)."""

    phonon: Phonopy
    band: BandStructure
    dos: DOS
    thermal: ThermalProperties
    frequencies: FrequencySummary
    summary: dict
    timings: dict = field(default_factory=dict)


class _Steps:
    """Times named steps and reports one line per step."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.progress = progress or (lambda line: None)
        self.timings: dict[str, float] = {}

    def run(self, name: str, func, *args, **kwargs):
        self.progress(f"{name} ...")
        start = time.perf_counter()
        out = func(*args, **kwargs)
        self.timings[name] = time.perf_counter() - start
        self.progress(f"{name}: done in {self.timings[name]:.2f} s")
        return out


def _band_difference(a: BandStructure, b: BandStructure) -> dict:
    fa, fb = a.all_frequencies, b.all_frequencies
    diff = np.abs(fa - fb)
    return {"max_abs_diff_THz": float(diff.max()), "mean_abs_diff_THz": float(diff.mean())}


def run_phonons(
    atoms: Atoms,
    calculator,
    settings: PhononSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> PhononResult:
    """Force constants from the calculator's exact Hessian, then bands, DOS and thermal properties.

    Parameters
    ----------
    atoms : Atoms
        Periodic unit cell (relax it beforehand if needed).
    calculator : FCNetCalculator or any calculator with the Hessian protocol
    settings : PhononSettings, optional
    progress : callable(str), optional
        Receives one line per step.
    """
    s = settings or PhononSettings()
    steps = _Steps(progress)
    phonon = steps.run(
        "force constants (analytic)", phonopy_from_atoms, atoms, calculator,
        supercell_matrix=s.supercell_matrix, primitive_matrix=s.primitive_matrix,
        min_length=s.min_length, symprec=s.symprec, progress=steps.progress,
    )
    band = steps.run("band structure", band_structure, phonon, npoints=s.npoints)
    density = steps.run("density of states", dos, phonon, mesh=s.mesh)
    thermal = steps.run("thermal properties", thermal_properties, phonon,
                        t_min=s.t_min, t_max=s.t_max, t_step=s.t_step, mesh=s.mesh)
    freqs = steps.run("frequency summary", frequency_summary, phonon, band=band, mesh=s.mesh)
    summary = _summary(atoms, phonon, freqs)
    if s.compare_fd:
        fd = steps.run(
            "force constants (finite displacements)", phonopy_from_atoms, atoms, calculator,
            supercell_matrix=phonon.supercell_matrix, primitive_matrix=s.primitive_matrix,
            method="finite-displacement", symprec=s.symprec, progress=steps.progress,
        )
        fd_band = band_structure(fd, npoints=s.npoints)
        summary["finite_displacement_comparison"] = {
            "n_displacements": len(fd.displacements),
            **_band_difference(band, fd_band),
        }
    summary["timings_s"] = {k: round(v, 4) for k, v in steps.timings.items()}
    return PhononResult(phonon, band, density, thermal, freqs, summary, steps.timings)


def _summary(atoms: Atoms, phonon: Phonopy, freqs: FrequencySummary) -> dict:
    return {
        "formula": atoms.get_chemical_formula(mode="hill"),
        "space_group": phonon.symmetry.get_international_table(),
        "n_atoms_unit_cell": len(atoms),
        "n_atoms_primitive": len(phonon.primitive),
        "n_atoms_supercell": len(phonon.supercell),
        "supercell_matrix": np.asarray(phonon.supercell_matrix).astype(int).tolist(),
        "n_hessian_directions": len(phonon.displacements),
        "min_frequency_THz": freqs.min_frequency,
        "max_frequency_THz": freqs.max_frequency,
        "has_imaginary_modes": bool(freqs.has_imaginary),
        "lowest_frequency_qpoint": np.asarray(freqs.lowest_qpoint).tolist(),
        "imaginary_tolerance_THz": freqs.imaginary_tolerance,
    }


def _write_all(result: PhononResult, folder: Path) -> None:
    write_force_constants(result.phonon, folder / "FORCE_CONSTANTS")
    write_phonopy_yaml(result.phonon, folder / "phonopy.yaml")
    write_band_yaml(result.phonon, folder / "band.yaml")
    write_thermal_properties_yaml(result.phonon, folder / "thermal_properties.yaml")
    write_thermal_properties_table(result.thermal, folder / "thermal_properties.dat")
    plot_band_dos(result.band, result.dos, folder / "band_dos.png")
    plot_thermal(result.thermal, folder / "thermal_properties.png")
    (folder / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")


def write_outputs(result: PhononResult, out_dir: str | os.PathLike) -> list[Path]:
    """Write FORCE_CONSTANTS, phonopy.yaml, band.yaml, thermal tables, figures and summary.json.

    Everything is first written into a temporary folder beside ``out_dir`` and
    moved in only when all files exist, so a failure leaves no partial output.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_all(result, staging)
        out.mkdir(exist_ok=True)
        written = []
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
            written.append(out / path.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def settings_dict(settings: PhononSettings) -> dict:
    """Plain form of the settings (for summary.json)."""
    data = asdict(settings)
    for key in ("supercell_matrix", "primitive_matrix", "mesh"):
        if isinstance(data[key], np.ndarray):
            data[key] = data[key].tolist()
    return data
