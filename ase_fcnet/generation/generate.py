"""Generate phonopy reference data with any ASE calculator, as a DFT workflow would.

For each structure, ``out_dir/<label>/`` receives

* ``phonopy_params.yaml`` (``Phonopy.save``): unit cell, supercell and
  primitive matrices, the displacement dataset (phonopy's 0.01 Å displacements
  with the raw forces and ``supercell_energy`` of every displaced supercell;
  phonopy writes energies with 8 decimals) and the compact force constants
  (eV/Å²). Written last, via a temporary file and ``os.replace``: its presence
  marks a finished structure.
* ``FORCE_CONSTANTS``: the same compact force constants (rows ``p2s_map``).
* ``labels.json``: energy (eV), forces (eV/Å, (N, 3)) and stress (eV/Å³, ASE
  Voigt order xx yy zz yz xz xy, when the calculator provides it) of the
  perfect supercell, with the supercell matrix, how the force constants were
  obtained, and the wall time.

Force constants come from the calculator's analytic Hessian of the supercell
when it has ``get_hessian`` (method ``"analytic"``), after checking its columns
against central force differences; otherwise (``"finite-displacement"``)
phonopy fits them to the displacement forces minus the perfect-supercell
(residual) forces. ``method="auto"`` uses finite displacements when matscipy's
Hessian would be slow (estimated loop count above ``max_hessian_cost``) or
fails its check (see :mod:`ase_fcnet.generation.references`). The phonopy unit cell
is the given structure, with its masses (ASE's standard atomic weights unless
the structure sets others, e.g. isotopes); the primitive matrix is phonopy's symmetry guess when
that cell is smaller, else the identity (rattled and vacancy cells).
Each structure goes to ``<out>/<split>/<label>/`` (split ``train`` or
``held-out``, see :func:`ase_fcnet.generation.prototypes.split_of`), so a training
config names ``<out>/train`` and evaluation ``<out>/held-out``. A final
``index.json`` lists every folder with formula, atom counts, split and method. Reproduce a set with::

    fcnet data generate --set si --reference sw-si --out data/sw_si --seed 0
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from phonopy import Phonopy
from phonopy.file_IO import write_FORCE_CONSTANTS
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import guess_primitive_matrix
from tqdm import tqdm

from ase_fcnet.fileio import atomic_write
from ase_fcnet.phonopy_bridge import atoms_to_phonopy, default_supercell_matrix, phonopy_to_atoms

from .prototypes import split_of
from .references import (
    InaccurateHessianError,
    analytic_force_constants,
    matscipy_hessian_cost,
)

__all__ = [
    "MAX_HESSIAN_COST",
    "METHODS",
    "calculate_labels",
    "generate_reference_data",
    "generate_structure",
    "primitive_matrix",
    "run_labelled",
]

log = logging.getLogger(__name__)

YAML_NAME = "phonopy_params.yaml"
METHODS = ("auto", "analytic", "finite-displacement")
#: Default budget of matscipy Hessian loop iterations (~0.25 ms each).
MAX_HESSIAN_COST = 20_000
RELAX_FMAX = 1e-4


def primitive_matrix(unitcell: PhonopyAtoms) -> np.ndarray:
    """Phonopy's primitive matrix of ``unitcell`` (symprec 1e-5), or the identity when it is primitive."""
    pmat = guess_primitive_matrix(unitcell, symprec=1e-5)
    return pmat if abs(np.linalg.det(pmat)) < 1.0 - 1e-6 else np.eye(3)


def calculate_labels(atoms: Atoms, calc: Calculator, stress: bool = False) -> dict[str, Any]:
    """``energy`` (eV), ``forces`` ((N, 3), eV/Å) and, with ``stress``, ``stress`` ((6,) eV/Å³,
    ASE Voigt; None when the calculator has none) of ``atoms`` with ``calc``."""
    work = atoms.copy()
    work.calc = calc
    out: dict[str, Any] = {
        "energy": work.get_potential_energy(),
        "forces": work.get_forces(),
    }
    if stress:
        try:
            out["stress"] = work.get_stress(voigt=True)
        except PropertyNotImplementedError:
            out["stress"] = None
    return out


def _relaxed(atoms: Atoms, calc: Calculator) -> Atoms:
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = calc
    BFGS(work, logfile=None).run(fmax=RELAX_FMAX, steps=1000)
    out = atoms.copy()
    out.positions = work.positions
    return out


def generate_structure(
    label: str,
    atoms: Atoms,
    calculator_factory: Callable[[], Calculator],
    folder: str | os.PathLike,
    supercell_min_length: float = 10.0,
    method: str = "auto",
    relax: bool = False,
    max_hessian_cost: int = MAX_HESSIAN_COST,
    distance: float = 0.01,
) -> dict[str, Any]:
    """Compute and write the phonopy data of one structure (see the module docstring).

    Parameters
    ----------
    label : str
        Structure label (stored in ``labels.json``).
    atoms : ase.Atoms
        Periodic unit cell, positions in Å; becomes phonopy's unit cell.
    calculator_factory : callable
        Returns a fresh ASE calculator; called once for this structure.
    folder : path
        Output folder (created).
    supercell_min_length : float
        Minimum plane spacing of the supercell, Å (:func:`ase_fcnet.phonopy_bridge.default_supercell_matrix`).
    method : {"auto", "analytic", "finite-displacement"}
        Source of the force constants.
    relax : bool
        Relax the atomic positions first (fixed cell, BFGS to 1e-4 eV/Å).
    max_hessian_cost : int
        With ``"auto"``, use finite displacements when
        :func:`~ase_fcnet.generation.references.matscipy_hessian_cost` of the
        supercell exceeds this.
    distance : float
        Phonopy displacement distance, Å.

    Returns
    -------
    dict
        The content written to ``labels.json``.

    Raises
    ------
    ValueError
        Unknown method, or ``"analytic"`` for a calculator without ``get_hessian``.
    InaccurateHessianError
        ``"analytic"`` and the Hessian fails its check.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    start = time.perf_counter()
    calc = calculator_factory()
    has_hessian = callable(getattr(calc, "get_hessian", None))
    if method == "analytic" and not has_hessian:
        raise ValueError(f"method 'analytic' needs get_hessian, {type(calc).__name__} has none")
    atoms = _relaxed(atoms, calc) if relax else atoms
    smat = default_supercell_matrix(atoms.cell.array, supercell_min_length)
    unitcell = atoms_to_phonopy(atoms)
    phonon = Phonopy(unitcell, smat, primitive_matrix=primitive_matrix(unitcell), log_level=0)
    phonon.generate_displacements(distance=distance)
    supercell = phonopy_to_atoms(phonon.supercell)
    perfect = calculate_labels(supercell, calc, stress=True)
    results = [calculate_labels(phonopy_to_atoms(s), calc) for s in phonon.supercells_with_displacements]
    forces = np.array([r["forces"] for r in results])

    used, check, fc = "finite-displacement", None, None
    cost = matscipy_hessian_cost(supercell, calc) if has_hessian else None
    if method == "analytic" or (
        method == "auto" and has_hessian and (cost is None or cost <= max_hessian_cost)
    ):
        try:
            fc, check = analytic_force_constants(phonon, calc)
            used = "analytic"
        except InaccurateHessianError as exc:
            if method == "analytic":
                raise
            log.warning("%s: %s; using finite displacements instead", label, exc)
    if fc is None:  # phonopy's fit to the forces minus the residual forces
        phonon.forces = forces - perfect["forces"][None]
        phonon.produce_force_constants(calculate_full_force_constants=False, show_drift=False)
        fc = np.array(phonon.force_constants)
    phonon.forces = forces  # resets force constants: set them last
    phonon.supercell_energies = np.array([r["energy"] for r in results])
    phonon.force_constants = fc

    labels = {
        "label": label,
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å^3 (ASE Voigt)"},
        "energy": float(perfect["energy"]),
        "forces": np.asarray(perfect["forces"]).tolist(),
        "stress": None if perfect["stress"] is None else np.asarray(perfect["stress"]).tolist(),
        "supercell_matrix": smat.tolist(),
        "n_atoms": len(atoms),
        "n_supercell_atoms": len(supercell),
        "n_displacements": len(results),
        "force_constants_method": used,
        "hessian_check_max_error": check,
        "hessian_cost_estimate": cost,
        "relaxed": bool(relax),
        "wall_time_s": time.perf_counter() - start,
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p2s = phonon.primitive.p2s_map
    atomic_write(folder / "FORCE_CONSTANTS", lambda p: write_FORCE_CONSTANTS(fc, p, p2s_map=p2s))
    atomic_write(folder / "labels.json", lambda p: Path(p).write_text(json.dumps(labels)))
    atomic_write(folder / YAML_NAME, lambda p: phonon.save(p, settings={"force_constants": True}))
    return labels


def run_labelled(run: Callable[..., Any], todo: Sequence[tuple[str, Atoms]],
                 where: Callable[[str], Path], workers: int, bar: tqdm,
                 initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
    """Call ``run(label, atoms, folder=where(label))`` for each item, in processes if ``workers > 1``.

    ``bar`` (tqdm) advances once per finished item; an item's exception is re-raised.
    """
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs) as pool:
            jobs = {pool.submit(run, lab, at, folder=where(lab)): lab for lab, at in todo}
            for job in as_completed(jobs):
                job.result()
                bar.set_postfix_str(jobs[job])
                bar.update()
        return
    for lab, at in todo:
        bar.set_postfix_str(lab)
        run(lab, at, folder=where(lab))
        bar.update()


def generate_reference_data(
    structures: Iterable[tuple[str, Atoms]],
    calculator_factory: Callable[[], Calculator],
    out_dir: str | os.PathLike,
    supercell_min_length: float = 10.0,
    method: str = "auto",
    relax: bool = False,
    progress: bool = True,
    split: Callable[[str], str] = split_of,
    metadata: dict[str, Any] | None = None,
    max_hessian_cost: int = MAX_HESSIAN_COST,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Write phonopy reference data for every structure; resumable.

    A structure whose ``out_dir/<label>/phonopy_params.yaml`` exists is skipped
    (that file is written last and atomically, so it marks a complete folder).

    Parameters
    ----------
    structures : iterable of (str, ase.Atoms)
        Unique labels (used as folder names) and periodic unit cells.
    calculator_factory : callable
        Zero-argument function returning a *fresh* ASE calculator; called once
        per computed structure, e.g. ``functools.partial(reference_calculator,
        "sw-si")`` (must be picklable when ``workers > 1``).
    out_dir : path
        Output directory (created).
    supercell_min_length, method, relax, max_hessian_cost
        See :func:`generate_structure`.
    progress : bool
        Show a tqdm progress bar.
    split : callable
        Label -> ``"train"`` or ``"held-out"``; default :func:`split_of`.
    metadata : dict, optional
        JSON-serialisable provenance stored in ``index.json``.
    workers : int
        Number of processes computing structures concurrently.

    Returns
    -------
    list of dict
        The ``index.json`` entries, in input order: ``folder``, ``label``,
        ``formula``, ``n_atoms``, ``n_supercell_atoms``, ``split``, ``method``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    structures = list(structures)
    labels = [label for label, _ in structures]
    if len(set(labels)) != len(labels):
        raise ValueError("structure labels must be unique")
    def where(label: str) -> Path:
        return out / split(label) / label

    todo = [(lab, at) for lab, at in structures if not (where(lab) / YAML_NAME).exists()]
    run = functools.partial(
        generate_structure,
        calculator_factory=calculator_factory,
        supercell_min_length=supercell_min_length,
        method=method,
        relax=relax,
        max_hessian_cost=max_hessian_cost,
    )
    bar = tqdm(total=len(structures), initial=len(structures) - len(todo), disable=not progress)
    with bar:
        run_labelled(run, todo, where, workers, bar)
    entries = []
    for label, atoms in structures:
        info = json.loads((where(label) / "labels.json").read_text())
        entries.append(
            {
                "folder": str(where(label).relative_to(out)),
                "label": label,
                "formula": atoms.get_chemical_formula(),
                "n_atoms": len(atoms),
                "n_supercell_atoms": info["n_supercell_atoms"],
                "split": split(label),
                "method": info["force_constants_method"],
            }
        )
    index = {"metadata": metadata or {}, "structures": entries}
    atomic_write(out / "index.json", lambda p: Path(p).write_text(json.dumps(index, indent=1)))
    return entries
