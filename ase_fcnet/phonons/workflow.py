"""The whole phonon workflow: structure → force constants → bands, DOS, thermal properties.

Used by ``fcnet phonons`` and usable in-process::

    result = run_phonons(atoms, calc, PhononSettings(min_length=12.0))
    write_outputs(result, "out")
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from threadpoolctl import threadpool_limits

from ase_fcnet.fileio import check_output_folder, staged_folder
from ase_fcnet.phonons.adapter import phonopy_from_atoms, prepare_phonopy, set_force_constants
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
from ase_fcnet.phonons.estimate import DEFAULT_MAX_ATOMS, CostEstimate, available_memory, estimate_cost
from ase_fcnet.phonons.nac import may_be_polar, read_born
from ase_fcnet.phonons.plotting import plot_band_dos, plot_thermal
from ase_fcnet.phonons.validate import check_settings
from ase_fcnet.progress import Progress

#: BLAS/LAPACK threads for phonopy's steps (dynamical matrices, their eigh). A P1
#: 360-atom cell's band structure took 0.75-0.78 s per q-point on one thread,
#: 3.4 s on two and 3.8-6.1 s with OpenBLAS's default (2 cores, torch loaded;
#: benchmarks/blas_threads_eigh.py, docs/cli.md).
PHONOPY_BLAS_THREADS = 1
#: Share of the available memory the force constants may be estimated to need.
MEMORY_SHARE = 0.8


class CostLimitError(ValueError):
    """The force constants would exceed a size limit (``max_atoms``, ``max_memory_gb``)."""


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
    born : str, path-like or dict, optional
        Phonopy ``BORN`` file (or its content) of the primitive cell: phonopy's
        non-analytic correction (LO–TO splitting) is applied.
    max_atoms : int or None
        Refuse supercells of more atoms (None: no limit).
    max_memory_gb : float or None
        Refuse force constants estimated to need more memory, GB (None:
        ``MEMORY_SHARE`` of the memory available when the run starts).
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
    born: object = None
    max_atoms: int | None = DEFAULT_MAX_ATOMS
    max_memory_gb: float | None = None


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
    bars: bool = False,
) -> PhononResult:
    """Force constants from the calculator's exact Hessian, then bands, DOS and thermal properties.

    The settings are checked first (:func:`ase_fcnet.phonons.validate.check_settings`),
    then the supercell size and, for large supercells, a timed probe's estimate
    of time and memory against the limits, all before the force constants.

    Parameters
    ----------
    atoms : Atoms
        Periodic unit cell (relax it beforehand if needed).
    calculator : FCNetCalculator or any calculator with the Hessian protocol
    settings : PhononSettings, optional
    progress : callable(str), optional
        Receives one line per step, and progress lines inside the long steps.
    bars : bool
        Show tqdm bars on stderr (terminals) instead of progress lines.

    Raises
    ------
    SettingsError, CostLimitError, BornFileError
        Before any model evaluation.
    """
    s = settings or PhononSettings()
    check_settings(s)
    steps = _Steps(progress)
    phonon = prepare_phonopy(atoms, s.supercell_matrix, s.primitive_matrix, "analytic", s.min_length,
                             symprec=s.symprec, progress=steps.progress)
    n_super, n_dir = len(phonon.supercell), len(phonon.displacements)
    check_supercell_size(n_super, s.max_atoms)
    nac_params = None if s.born is None else read_born(phonon, s.born, s.symprec)
    estimate = estimate_cost(atoms, calculator, n_super, n_dir)
    if estimate is not None:
        steps.progress(estimate.line())
        _check_memory(estimate, s.max_memory_gb)
    bar = Progress(n_dir, "Hessian directions", steps.progress, bar=bars)
    try:
        steps.run("force constants (analytic)", set_force_constants, phonon, calculator, "analytic",
                  steps.progress, bar.update)
    finally:
        bar.close()
    if nac_params is not None:
        phonon.nac_params = nac_params
    with threadpool_limits(limits=PHONOPY_BLAS_THREADS, user_api="blas"):
        n_q = s.npoints * _n_segments(phonon)
        bar = Progress(n_q, "band q-points", steps.progress, bar=bars)
        try:
            band = steps.run("band structure", band_structure, phonon, npoints=s.npoints,
                             progress=bar.update)
        finally:
            bar.close()
        steps.progress(f"density of states and thermal properties on mesh {_mesh_text(s.mesh)}")
        density = steps.run("density of states", dos, phonon, mesh=s.mesh)
        thermal = steps.run("thermal properties", thermal_properties, phonon,
                            t_min=s.t_min, t_max=s.t_max, t_step=s.t_step, mesh=s.mesh)
        freqs = steps.run("frequency summary", frequency_summary, phonon, band=band, mesh=s.mesh)
    summary = _summary(atoms, phonon, freqs)
    summary["non_analytic_correction"] = s.born is not None
    summary["may_be_polar"] = bool(may_be_polar(atoms.get_chemical_symbols()))
    if estimate is not None:
        summary["cost_estimate"] = {"seconds": round(estimate.seconds, 2),
                                    "memory_GB": round(estimate.memory_bytes / 1e9, 3),
                                    "probe_atoms": estimate.probe_atoms}
    if s.compare_fd:
        fd = steps.run(
            "force constants (finite displacements)", phonopy_from_atoms, atoms, calculator,
            supercell_matrix=phonon.supercell_matrix, primitive_matrix=s.primitive_matrix,
            method="finite-displacement", symprec=s.symprec, progress=steps.progress, born=s.born,
        )
        with threadpool_limits(limits=PHONOPY_BLAS_THREADS, user_api="blas"):
            fd_band = band_structure(fd, npoints=s.npoints)
        summary["finite_displacement_comparison"] = {
            "n_displacements": len(fd.displacements),
            **_band_difference(band, fd_band),
        }
    summary["timings_s"] = {k: round(v, 4) for k, v in steps.timings.items()}
    return PhononResult(phonon, band, density, thermal, freqs, summary, steps.timings)


def check_supercell_size(n_atoms: int, max_atoms: int | None) -> None:
    """Refuse a supercell of more than ``max_atoms`` atoms (None: no limit).

    Raises
    ------
    CostLimitError
    """
    if max_atoms is not None and n_atoms > max_atoms:
        raise CostLimitError(f"the supercell has {n_atoms} atoms, more than the limit of {max_atoms} "
                             "(--max-atoms N raises it, --max-atoms 0 lifts it; or use a smaller "
                             "--supercell / --min-length)")


def _check_memory(estimate: CostEstimate, max_memory_gb: float | None) -> None:
    if max_memory_gb is not None:
        limit, what = max_memory_gb * 1e9, f"max_memory_gb = {max_memory_gb:g} (--max-memory)"
    else:
        available = available_memory()
        if available is None:
            return
        limit = MEMORY_SHARE * available
        what = (f"{MEMORY_SHARE:.0%} of the {available / 1e9:.1f} GB available now "
                "(--max-memory GB sets another limit)")
    if estimate.memory_bytes > limit:
        raise CostLimitError(f"the force constants of the {estimate.n_atoms}-atom supercell need "
                             f"about {estimate.memory_bytes / 1e9:.1f} GB, more than {what}")


def _n_segments(phonon: Phonopy) -> int:
    from ase.cell import Cell
    from ase.dft.kpoints import parse_path_string

    path = Cell(np.array(phonon.primitive.cell)).bandpath(npoints=0).path
    return sum(len(group) - 1 for group in parse_path_string(path))


def _mesh_text(mesh) -> str:
    return f"{mesh:g} Å" if np.ndim(mesh) == 0 else " x ".join(str(int(m)) for m in mesh)


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


def write_outputs(result: PhononResult, out_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write FORCE_CONSTANTS, phonopy.yaml, band.yaml, thermal tables, figures and summary.json.

    Everything is written into a hidden temporary folder beside ``out_dir``,
    which becomes ``out_dir`` in one rename only when every file exists
    (:func:`ase_fcnet.fileio.staged_folder`): a failure or a signal leaves no
    partial output and an earlier ``out_dir`` as it was. An existing
    ``out_dir`` is replaced whole with ``overwrite`` (only when it is empty
    or holds a summary.json, i.e. is an earlier output) and refused without.

    Returns
    -------
    list of Path
        The files written.
    """
    out = check_output_folder(out_dir, overwrite, marker="summary.json")
    with staged_folder(out) as staging:
        _write_all(result, staging)
        names = sorted(p.name for p in staging.iterdir())
    return [out / name for name in names]


def settings_dict(settings: PhononSettings) -> dict:
    """Plain form of the settings (for summary.json)."""
    data = asdict(settings)
    for key in ("supercell_matrix", "primitive_matrix", "mesh"):
        if isinstance(data[key], np.ndarray):
            data[key] = data[key].tolist()
    if data["born"] is not None and not isinstance(data["born"], str):
        data["born"] = str(data["born"]) if isinstance(data["born"], os.PathLike) else "(given as a dict)"
    return data
