"""Cases and per-process measurements of ``benchmarks/phonons_end_to_end.py``.

Every function here runs inside one child process (one case, one method), so
that the peak RSS of that process belongs to that measurement alone.

Methods
-------
``fcnet``
    ase_fcnet: exact force constants by automatic differentiation,
    :func:`ase_fcnet.phonons.workflow.run_phonons` (what ``fcnet phonons`` runs).
``teacher``
    SevenNet-0 with phonopy's standard finite displacements (default
    displacement set, 0.01 Å).
``chgnet``
    CHGNet with the same finite-displacement route (only when installed).
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np

METHODS = ("teacher", "fcnet", "chgnet")
#: case name -> (builder key, supercell multiples of the input cell)
CASES = {
    "si-64": ("si", (2, 2, 2)),
    "si-216": ("si", (3, 3, 3)),
    "nacl-64": ("nacl", (2, 2, 2)),
    "nacl-216": ("nacl", (3, 3, 3)),
    "tio2-72": ("tio2", (2, 2, 3)),
}
DESCRIPTION = {
    "si": "Si diamond (Fd-3m), conventional cell a = 5.43 Å",
    "nacl": "NaCl rock salt (Fm-3m), conventional cell a = 5.64 Å",
    "tio2": "TiO2 rutile (P4_2/mnm), a = 4.594 Å, c = 2.959 Å, x(O) = 0.3049",
}


def unit_cell(key: str):
    """The input cell of a structure (conventional cells, Å)."""
    from ase.build import bulk
    from ase.spacegroup import crystal

    if key == "si":
        return bulk("Si", "diamond", a=5.43, cubic=True)
    if key == "nacl":
        return bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    if key == "tio2":
        return crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3049, 0.3049, 0)], spacegroup=136,
                       cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    raise KeyError(key)


def write_cif(case: str, folder: Path) -> Path:
    """Write the input cell of ``case`` as a CIF file (full-precision coordinates)."""
    from ase.io import write

    path = Path(folder) / f"{CASES[case][0]}.cif"
    if not path.exists():
        write(path, unit_cell(CASES[case][0]))
    return path


def default_settings(case: str):
    """``fcnet phonons`` defaults (PhononSettings) with the case's supercell."""
    from ase_fcnet.phonons.workflow import PhononSettings

    return PhononSettings(supercell_matrix=list(CASES[case][1]))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_calculator(method: str, model: str | None):
    """A fresh calculator of ``method`` on the CPU (ase_fcnet in float64, as ``fcnet phonons``)."""
    if method == "fcnet":
        from ase_fcnet.cli.common import load_calculator as fcnet_calculator

        return fcnet_calculator(model, "auto", "float64")
    if method == "teacher":
        from ase_fcnet.generation.teacher import sevennet_calculator

        return sevennet_calculator()
    if method == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device="cpu")
    raise ValueError(f"unknown method {method!r}")


def _post_process(phonon, s, steps):
    """Band structure, DOS, thermal properties and frequency summary, as in run_phonons."""
    from ase_fcnet.phonons.analysis import (
        band_structure,
        dos,
        frequency_summary,
        thermal_properties,
    )

    band = steps.run("band structure", band_structure, phonon, npoints=s.npoints)
    steps.run("density of states", dos, phonon, mesh=s.mesh)
    steps.run("thermal properties", thermal_properties, phonon,
              t_min=s.t_min, t_max=s.t_max, t_step=s.t_step, mesh=s.mesh)
    steps.run("frequency summary", frequency_summary, phonon, band=band, mesh=s.mesh)
    return band


def phonopy_setup_time(atoms, s) -> float:
    """Seconds phonopy takes to build the supercell and analyse its symmetry.

    Every route pays this once, inside its force-constant step (``Phonopy(...)``
    finds the supercell's space group and the atom permutation of each of its
    operations). Every in-process route builds its phonopy object through
    ``phonopy_from_atoms``, so this is timed the same way, with
    :func:`ase_fcnet.phonons.symmetry.fast_phonopy_symmetry`.
    """
    from phonopy import Phonopy

    from ase_fcnet.phonons.adapter import atoms_to_phonopy, resolve_supercell_matrix
    from ase_fcnet.phonons.symmetry import fast_phonopy_symmetry

    matrix = resolve_supercell_matrix(atoms.cell[:], s.supercell_matrix, s.min_length)
    start = time.perf_counter()
    with fast_phonopy_symmetry():
        Phonopy(atoms_to_phonopy(atoms), supercell_matrix=matrix,
                primitive_matrix=s.primitive_matrix, symprec=s.symprec)
    return time.perf_counter() - start


def run_in_process(case: str, method: str, model: str | None, threads: int, work: Path) -> dict:
    """Load + force constants + post-processing of one case in this process.

    Parameters
    ----------
    case, method : str
        Keys of :data:`CASES` and :data:`METHODS`.
    model : str or None
        ase_fcnet model file (``fcnet`` only).
    threads : int
        torch intra-op threads.
    work : Path
        Folder with the case's CIF; the frequencies for the comparison are
        saved there as ``<case>_<method>.npz``.

    Returns
    -------
    dict
        ``load_s``, ``force_constants_s``, ``post_s``, ``total_s``, per-step
        ``steps_s``, ``phonopy_setup_s`` (:func:`phonopy_setup_time`, measured
        after the timed run), ``n_atoms``, ``n_force_calls`` (displaced supercells or
        Hessian directions), ``peak_MB``, ``gamma_optical_THz``.
    """
    import torch
    from ase.io import read

    from ase_fcnet.allocator import tune_glibc_malloc

    tune_glibc_malloc()  # as the fcnet command does; every method alike, in-process
    torch.set_num_threads(threads)
    from ase_fcnet.phonons.adapter import phonopy_from_atoms
    from ase_fcnet.phonons.workflow import _Steps, run_phonons

    if method == "chgnet":
        import chgnet  # noqa: F401  (import time stays outside the timing, as for the others)
    atoms = read(write_cif(case, work))
    s = default_settings(case)
    rss_imports = _peak_mb()
    start = time.perf_counter()
    calc = load_calculator(method, model)
    load_s = time.perf_counter() - start
    if method == "fcnet":
        result = run_phonons(atoms, calc, s)
        phonon, band, steps = result.phonon, result.band, result.timings
        fc_key = "force constants (analytic)"
    else:
        fc_key = "force constants (finite displacements)"
        timer = _Steps(None)
        phonon = timer.run(fc_key, phonopy_from_atoms, atoms, calc, supercell_matrix=s.supercell_matrix,
                           primitive_matrix=s.primitive_matrix, method="finite-displacement",
                           displacement_distance=0.01, symprec=s.symprec)
        band = _post_process(phonon, s, timer)
        steps = timer.timings
    total_s = time.perf_counter() - start
    out = {"case": case, "method": method, "n_atoms": len(phonon.supercell),
           "n_primitive": len(phonon.primitive), "n_force_calls": len(phonon.displacements),
           "load_s": load_s, "force_constants_s": steps[fc_key],
           "post_s": sum(v for k, v in steps.items() if k != fc_key), "total_s": total_s,
           "steps_s": dict(steps), "peak_MB": _peak_mb(), "peak_after_imports_MB": rss_imports,
           "torch_threads": torch.get_num_threads(), "phonopy_setup_s": phonopy_setup_time(atoms, s)}
    out.update(_save_frequencies(phonon, band, s.mesh, work / f"{case}_{method}.npz"))
    return out


def _save_frequencies(phonon, band, mesh, path: Path) -> dict:
    """Band, full-mesh and Γ frequencies (THz) for the comparison between methods (untimed)."""
    result = phonon.run_mesh(mesh, is_mesh_symmetry=False, is_gamma_center=True)
    mesh_q, mesh_f = np.array(result.qpoints), np.array(result.frequencies)
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    gamma = np.sort(np.array(phonon.qpoints.frequencies)[0])
    np.savez(path, band_q=np.concatenate(band.qpoints), band_f=band.all_frequencies,
             mesh_q=mesh_q, mesh_f=mesh_f, gamma_f=gamma)
    return {"gamma_optical_THz": gamma[3:].round(4).tolist(), "mesh_points": len(mesh_q),
            "band_points": int(band.all_frequencies.shape[0])}


def compare_frequencies(work: Path, case: str, method: str, reference: str = "teacher") -> dict:
    """MAE and max |Δf| (THz) of ``method`` vs ``reference`` on identical q-points."""
    a, b = np.load(work / f"{case}_{method}.npz"), np.load(work / f"{case}_{reference}.npz")
    out = {}
    for kind in ("band", "mesh"):
        qa, qb = a[f"{kind}_q"], b[f"{kind}_q"]
        if qa.shape != qb.shape or not np.allclose(qa, qb, atol=1e-10):
            out[f"{kind}_error"] = f"q-points differ ({qa.shape} vs {qb.shape})"
            continue
        diff = np.abs(a[f"{kind}_f"] - b[f"{kind}_f"])
        out[f"{kind}_mae_THz"] = float(diff.mean())
        out[f"{kind}_max_abs_THz"] = float(diff.max())
    out["gamma_optical_max_abs_THz"] = float(np.abs(a["gamma_f"][3:] - b["gamma_f"][3:]).max())
    return out


# The whole-command equivalent of `fcnet phonons` for a finite-displacement calculator,
# written without ase_fcnet: ase + phonopy + the calculator's own package.
SCRIPT = '''"""Phonons of a CIF with {label} and phonopy finite displacements.

    python {name} STRUCTURE.cif OUT_DIR A B C
"""
import json
import sys
from pathlib import Path

import torch

torch.set_num_threads({threads})
import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.dft.kpoints import parse_path_string
from ase.io import read
from matplotlib.figure import Figure
from phonopy import Phonopy
from phonopy.file_IO import write_FORCE_CONSTANTS
from phonopy.phonon.band_structure import get_band_qpoints_and_path_connections
from phonopy.structure.atoms import PhonopyAtoms
{calc_import}

MESH, NPOINTS, T_MIN, T_MAX, T_STEP, SYMPREC = {mesh!r}, {npoints}, {t_min}, {t_max}, {t_step}, {symprec}
atoms = read(sys.argv[1])
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell[:],
                    scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())
ph = Phonopy(unit, supercell_matrix=np.diag([int(n) for n in sys.argv[3:6]]),
             primitive_matrix="auto", symprec=SYMPREC)
ph.generate_displacements(distance=0.01)
calc = {calc_make}
forces = []
for cell in ph.supercells_with_displacements:
    displaced = Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions,
                      masses=cell.masses, pbc=True)
    displaced.calc = calc
    forces.append(displaced.get_forces())
ph.forces = np.array(forces)
ph.produce_force_constants()
write_FORCE_CONSTANTS(ph.force_constants, filename=str(out / "FORCE_CONSTANTS"), p2s_map=ph.primitive.p2s_map)
ph.save(out / "phonopy.yaml", settings={{"force_constants": True}})

path = Cell(np.array(ph.primitive.cell)).bandpath(npoints=0)
groups = parse_path_string(path.path)
qpoints, connections = get_band_qpoints_and_path_connections(
    [[path.special_points[p] for p in g] for g in groups], npoints=NPOINTS)
labels = [p for g in groups for p in g]
ph.run_band_structure(qpoints, path_connections=connections, labels=labels)
ph.write_yaml_band_structure(filename=out / "band.yaml")
ph.run_mesh(MESH, is_mesh_symmetry=False, with_eigenvectors=True, is_gamma_center=True)
ph.run_projected_dos(freq_pitch=0.05)
ph.write_projected_dos(filename=out / "projected_dos.dat")
ph.run_mesh(MESH, is_gamma_center=True)
ph.run_thermal_properties(t_min=T_MIN, t_max=T_MAX, t_step=T_STEP)
ph.write_yaml_thermal_properties(filename=out / "thermal_properties.yaml")

band = ph.get_band_structure_dict()
pdos = ph.get_projected_dos_dict()
fig = Figure(figsize=(8, 4.8))
ax, ax_dos = fig.subplots(1, 2, sharey=True, gridspec_kw={{"width_ratios": [3, 1]}})
for d, f in zip(band["distances"], band["frequencies"]):
    ax.plot(d, f, "k-", lw=0.8)
ax_dos.plot(np.sum(pdos["projected_dos"], axis=0), pdos["frequency_points"], "k-")
ax.set_ylabel("frequency (THz)")
fig.savefig(out / "band_dos.png", dpi=150)
tp = ph.get_thermal_properties_dict()
fig = Figure(figsize=(6, 4.5))
ax = fig.subplots()
for key in ("free_energy", "entropy", "heat_capacity"):
    ax.plot(tp["temperatures"], tp[key], label=key)
ax.legend()
fig.savefig(out / "thermal_properties.png", dpi=150)
freqs = np.concatenate([np.ravel(f) for f in band["frequencies"]])
(out / "summary.json").write_text(json.dumps({{"min_frequency_THz": float(freqs.min()),
                                               "max_frequency_THz": float(freqs.max()),
                                               "n_displacements": len(forces)}}))
'''
CALC_CODE = {
    "teacher": ("from sevenn.calculator import SevenNetCalculator",
                'SevenNetCalculator("7net-0", device="cpu")', "SevenNet-0"),
    "chgnet": ("from chgnet.model.dynamics import CHGNetCalculator",
               'CHGNetCalculator(use_device="cpu")', "CHGNet"),
}


def write_script(method: str, case: str, threads: int, folder: Path) -> Path:
    """Write the stand-alone finite-displacement script of ``method`` (same settings as fcnet)."""
    s = default_settings(case)
    calc_import, calc_make, label = CALC_CODE[method]
    path = Path(folder) / f"phonons_{method}.py"
    path.write_text(SCRIPT.format(
        label=label, name=path.name, threads=threads, calc_import=calc_import, calc_make=calc_make,
        mesh=s.mesh, npoints=s.npoints, t_min=s.t_min, t_max=s.t_max, t_step=s.t_step,
        symprec=s.symprec))
    return path


def whole_command(method: str, case: str, model: str, threads: int, work: Path) -> list[str]:
    """The command line a user types for ``case`` with ``method``."""
    import sys

    cif = write_cif(case, work)
    out = work / f"out_{case}_{method}"
    cell = [str(n) for n in CASES[case][1]]
    if method == "fcnet":
        exe = Path(sys.executable).parent / "fcnet"
        exe = str(exe) if exe.exists() else "fcnet"
        from ase_fcnet.pretrained import bundled_models

        default = bundled_models().get("default")
        # the bundled default runs as users type it: no --model
        chosen = [] if default and Path(model).resolve() == default.resolve() else ["--model", str(model)]
        return [exe, "phonons", str(cif), *chosen, "--supercell", *cell, "--out", str(out)]
    return [sys.executable, str(write_script(method, case, threads, work)), str(cif), str(out), *cell]


def dump(result: dict) -> str:
    """One JSON line (the child's answer to the parent)."""
    return json.dumps(result)
