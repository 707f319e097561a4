"""What runs inside a worker: the model, loaded once per process, and one material's phonons.

Both the local process pool and Dask workers call :func:`compute`; the first
call in a process loads the calculator and sets torch's thread count, later
calls reuse them (a warm process is much faster than a fresh one per
material, see ``benchmarks/screening.py``). Every exception is turned into a
failed result with a one-line reason; only the death of the process itself
escapes, and the driver records that.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import dataclass
from functools import reduce

import numpy as np
from ase import Atoms

from ase_fcnet.screening.inputs import one_line
from ase_fcnet.screening.settings import ScreenSettings

#: kJ/mol per eV; the gas constant.
KJ_PER_MOL_PER_EV = 96.48533212
GAS_CONSTANT = 8.314462618  # J/(K mol)


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker builds its calculator.

    Attributes
    ----------
    model_path : str
        Model file.
    device : str
        ``"cpu"``, ``"cuda:N"`` or ``"auto"``.
    dtype : str or None
    threads : int or None
        torch intra-op threads of this process (``None`` leaves torch's default).
    tune_malloc : bool
        Apply :func:`ase_fcnet.allocator.tune_glibc_malloc` on first use: set for
        worker processes (local and Dask), which exist to compute Hessians, not for
        the caller's own process (``workers=0``). ``FCNET_MALLOC_TUNING=0`` opts out.
    """

    model_path: str
    device: str = "auto"
    dtype: str | None = None
    threads: int | None = None
    tune_malloc: bool = False


_STATE: dict = {}


def calculator(config: WorkerConfig):
    """This process's calculator for ``config`` (loaded on first use, then reused)."""
    cached = _STATE.get("config")
    if cached == config:
        return _STATE["calc"]
    import torch

    from ase_fcnet.calculator import FCNetCalculator
    from ase_fcnet.model import ModelCautionWarning

    if config.tune_malloc:
        # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, and a spawned process
        # has glibc's defaults: both hand freed memory back at once, and Hessian rows re-touch it
        from ase_fcnet.allocator import tune_glibc_malloc

        tune_glibc_malloc()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelCautionWarning)
        calc = FCNetCalculator(model=config.model_path, device=config.device, dtype=config.dtype)
    _STATE.update(config=config, calc=calc, loads=_STATE.get("loads", 0) + 1)
    return calc


def check_material(atoms: Atoms, species, cutoff: float) -> None:
    """Raise ``StructureError`` for a structure the model cannot evaluate or phonopy cannot use."""
    from ase_fcnet.graph import StructureError, neighbour_pairs, validate_structure
    from ase_fcnet.phonons.validate import occupancy_problems

    validate_structure(atoms, "structure")
    if not atoms.pbc.all():
        raise StructureError(f"phonons need a cell periodic in all three directions (pbc = {atoms.pbc.tolist()})")
    if atoms.cell.rank < 3:
        raise StructureError("the cell is singular or missing")
    disordered = occupancy_problems(atoms)  # partial, mixed or merged CIF sites
    if disordered:
        more = f" (and {len(disordered) - 1} more sites)" if len(disordered) > 1 else ""
        raise StructureError(disordered[0] + more)
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(species), key=atoms.get_chemical_symbols().index)
    if unknown:
        known = ", ".join(species) if len(species) <= 8 else f"{len(species)} elements, {species[0]}–{species[-1]}"
        raise StructureError(f"element(s) {', '.join(unknown)} not supported by this model (it knows {known})")
    neighbour_pairs(atoms, cutoff)


def _formula_units(atoms) -> int:
    """Formula units in a cell: gcd of the element counts."""
    _, counts = np.unique(np.asarray(atoms.numbers), return_counts=True)
    return int(reduce(math.gcd, counts.tolist()))


def compute(task: tuple, settings: ScreenSettings, config: WorkerConfig) -> dict:
    """One material: validate, relax (optional), force constants, bands, DOS, thermal properties.

    Parameters
    ----------
    task : (key, name, Atoms)
    settings : ScreenSettings
    config : WorkerConfig

    Returns
    -------
    dict
        ``key``, ``status`` (``"done"``/``"failed"``), ``atoms`` (relaxed when asked),
        ``kvp`` (the row's key-value pairs), ``data`` (band path, DOS, thermal table).
    """
    key, name, atoms = task
    start = time.perf_counter()
    out = {"key": key, "atoms": atoms, "data": {}}
    timings: dict[str, float] = {}
    try:
        calc = calculator(config)
        timings["setup"] = time.perf_counter() - start
        check_material(atoms, calc.species, calc.model.cutoff)
        with _thread_share(config.threads), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kvp, data, final = _phonons(atoms, calc, settings, timings)
        if caught:  # kept with the material instead of printed over the progress bar
            kvp["warnings"] = _warning_line(caught)
        out.update(status="done", kvp=kvp, data=data, atoms=final)
    except Exception as err:  # noqa: BLE001 - every failure becomes a row, the run goes on
        out.update(status="failed", kvp={"error": one_line(str(err) or repr(err)),
                                          "error_type": type(err).__name__})
    timings["total"] = time.perf_counter() - start
    out["kvp"].update({f"time_{k}_s": round(v, 4) for k, v in timings.items()})
    out["kvp"].update(worker_pid=os.getpid(), model_loads=_STATE.get("loads", 0),
                      worker_peak_rss_MB=round(_peak_rss_mb(), 1))
    return out


#: Longest ``warnings`` value stored in a row, characters.
MAX_WARNINGS_CHARS = 500


def _warning_line(caught) -> str:
    """One line of the distinct warnings raised for a material (category: message), shortened."""
    seen: list[str] = []
    for w in caught:
        text = one_line(f"{w.category.__name__}: {w.message}")
        if text not in seen:
            seen.append(text)
    return one_line(" | ".join(seen), MAX_WARNINGS_CHARS)


def _thread_share(threads: int | None):
    """Context in which BLAS and OpenMP pools (numpy's OpenBLAS, phonopy's OpenMP) use ``threads``.

    torch's own pool is set by :func:`calculator`; the others start one thread per
    core in every process, so two single-threaded workers on two cores would run
    four threads in phonopy's steps (eigensolvers, mesh sums). Entered per material
    because OpenMP's thread count belongs to the calling thread (a Dask worker may
    run tasks on another thread); about 1 ms each time.
    """
    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _step(timings, name, func, *args, **kwargs):
    t0 = time.perf_counter()
    result = func(*args, **kwargs)
    timings[name] = time.perf_counter() - t0
    return result


def _phonons(atoms: Atoms, calc, s: ScreenSettings, timings: dict) -> tuple[dict, dict, Atoms]:
    from ase_fcnet.phonons import band_structure, dos, frequency_summary, phonopy_from_atoms, thermal_properties
    from ase_fcnet.phonons.relax import relax

    kvp: dict = {}
    if s.relax:
        atoms, info = _step(timings, "relax", relax, atoms, calc, fmax=s.fmax, max_steps=int(s.steps),
                            symprec=s.symprec)
        kvp.update(relax_steps=info["steps"], relax_converged=info["converged"],
                   relax_volume_change=info["volume_change"])
    phonon = _step(timings, "force_constants", phonopy_from_atoms, atoms, calc,
                   supercell_matrix=list(s.supercell) if s.supercell else None,
                   primitive_matrix="auto" if s.primitive == "auto" else "P",
                   min_length=s.min_length, symprec=s.symprec)
    band = _step(timings, "bands", band_structure, phonon, npoints=int(s.npoints))
    density = _step(timings, "dos", dos, phonon, mesh=s.mesh)
    table = _step(timings, "thermal", thermal_properties, phonon, t_min=s.t_min, t_max=s.t_max,
                  t_step=s.t_step, mesh=s.mesh)
    at300 = thermal_properties(phonon, t_min=0.0, t_max=300.0, t_step=300.0, mesh=s.mesh)
    freqs = _step(timings, "frequency_scan", frequency_summary, phonon, band=band, mesh=s.mesh)
    n_prim = len(phonon.primitive)
    per_fu = n_prim / _formula_units(phonon.primitive)
    matrix = np.asarray(phonon.supercell_matrix).astype(int)
    supercell = "x".join(map(str, np.diag(matrix))) if np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0 \
        else " ".join(map(str, matrix.ravel()))
    f_atom = at300.free_energy / KJ_PER_MOL_PER_EV / n_prim          # eV per atom, at 0 K and 300 K
    s_atom = at300.entropy / GAS_CONSTANT / n_prim                     # k_B per atom
    cv_atom = at300.heat_capacity / GAS_CONSTANT / n_prim
    kvp.update(
        space_group=str(phonon.symmetry.dataset.international),
        space_group_number=int(phonon.symmetry.dataset.number),
        natoms_primitive=n_prim, atoms_per_formula_unit=per_fu,
        supercell=supercell, natoms_supercell=len(phonon.supercell),
        fmin_THz=float(freqs.min_frequency), fmax_THz=float(freqs.max_frequency),
        imaginary=bool(freqs.has_imaginary),
        q_lowest=" ".join(f"{q:.4f}" for q in np.asarray(freqs.lowest_qpoint) + 0.0),
        zpe_eV_per_atom=float(f_atom[0]), zpe_eV_per_fu=float(f_atom[0] * per_fu),
        F300_eV_per_atom=float(f_atom[1]), F300_eV_per_fu=float(f_atom[1] * per_fu),
        S300_kB_per_atom=float(s_atom[1]), S300_kB_per_fu=float(s_atom[1] * per_fu),
        Cv300_kB_per_atom=float(cv_atom[1]), Cv300_kB_per_fu=float(cv_atom[1] * per_fu),
    )
    data = {
        "band": {"path": band.path, "labels": list(band.labels), "label_positions": band.label_positions,
                 "distances": band.distances, "frequencies_THz": band.frequencies, "qpoints": band.qpoints},
        "dos": {"frequency_THz": density.frequency_points, "total_per_THz": density.total_dos,
                "by_element_per_THz": dict(density.pdos_by_element)},
        "thermal": {"T_K": table.temperatures,
                    "F_eV_per_atom": table.free_energy / KJ_PER_MOL_PER_EV / n_prim,
                    "S_kB_per_atom": table.entropy / GAS_CONSTANT / n_prim,
                    "Cv_kB_per_atom": table.heat_capacity / GAS_CONSTANT / n_prim},
    }
    return kvp, data, atoms
