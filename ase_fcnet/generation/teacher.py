"""Teacher data for the default model: a universal potential labels a broad structure set.

The teacher is SevenNet-0 (``sevenn``, MIT; weights ship inside the package and
run offline; install with ``pip install ase_fcnet[teacher]``), or any named
reference of :mod:`ase_fcnet.generation.references`. For every base structure of
:func:`ase_fcnet.generation.universal.base_structures` the teacher

1. relaxes the cell and positions keeping the space group
   (:func:`ase_fcnet.phonons.relax.relax`, fmax 0.02 eV/Å, at most 200 steps);
2. labels variants of the relaxed cell, each written to
   ``<out>/<split>/<base>/<variant>/`` as a compressed ``phonopy_params.yaml.xz``
   (unit cell, supercell matrix and, for force-constant variants, compact
   force constants in eV/Å² from phonopy's finite displacements of 0.01 Å)
   and ``labels.json`` (energy eV, forces eV/Å rounded to 1e-6, stress eV/Å³
   in ASE Voigt order rounded to 1e-9, of the undisplaced supercell):

   * ``eq``: the relaxed cell, force constants on a supercell whose plane
     spacings are at least ``supercell_min_length``;
   * ``iso``: the relaxed cell scaled isotropically by 0.97 or 1.03 (drawn),
     force constants as for ``eq``;
   * ``efs-k``: random symmetric strain (components uniform in ±0.04) plus
     Gaussian rattling (σ uniform in 0.02–0.12 Å) of the cell repeated to at
     least 4 atoms; energy, forces and stress only.

   A force-constant variant whose phonopy displacements would cost more than
   ``fc_budget`` supercell atoms (displacements × atoms) keeps energy, forces
   and stress only.
3. writes ``<base>/done.json`` last (variants, relaxation record, timings, or
   the reason the base was skipped): its presence marks a finished base, so a
   run resumes where it stopped. A base is skipped, with the reason recorded,
   when relaxation gives a non-finite energy, a volume outside 4–120 Å³/atom or
   two atoms closer than 0.5 × their covalent-radius sum, or when its labels
   are implausible (:func:`implausible`: force constants beyond MAX_ABS_FC or
   stress beyond MAX_ABS_STRESS, a failure of the teacher, not physics); the
   variant folders of such a base are removed.

The train / held-out split is by base (:func:`ase_fcnet.generation.universal.teacher_split`),
so the variants of a held-out base are never trained on. Reproduce with::

    fcnet data teacher --out runs/teacher-7net0 --workers 2
    fcnet data pack runs/teacher-7net0 --out datasets/teacher-7net0
"""

from __future__ import annotations

import functools
import json
import logging
import lzma
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from phonopy import Phonopy
from tqdm import tqdm

from ase_fcnet.fileio import atomic_write, atomic_write_text

from ase_fcnet.phonopy_bridge import (
    atoms_to_phonopy,
    default_supercell_matrix,
    phonopy_to_atoms,
    read_phonopy_yaml,
)

from .generate import calculate_labels, primitive_matrix, run_labelled
from .prototypes import random_strain, rattled, strained, structure_rng
from .universal import base_structures, teacher_split

__all__ = ["TEACHER", "generate_teacher_data", "label_base", "sevennet_calculator"]

log = logging.getLogger(__name__)

#: Name of the default teacher (see :data:`ase_fcnet.generation.references.REFERENCES`).
TEACHER = "sevennet-0"
DONE = "done.json"
YAML_XZ = "phonopy_params.yaml.xz"


def sevennet_calculator() -> Calculator:
    """A fresh SevenNet-0 calculator on the CPU (float32 inside, as shipped)."""
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError as err:
        raise ImportError(
            "the SevenNet teacher needs the optional extra: pip install 'ase_fcnet[teacher]' "
            f"({err})"
        ) from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-0", device="cpu")


def _sane(atoms: Atoms, energy: float) -> str | None:
    """Why a relaxed cell is unusable, or None."""
    from ase.neighborlist import neighbor_list

    if not np.isfinite(energy):
        return "non-finite energy"
    vol = atoms.get_volume() / len(atoms)
    if not 4.0 <= vol <= 120.0:
        return f"volume {vol:.1f} Å³/atom outside 4-120"
    radii = covalent_radii[atoms.numbers]
    i, j, d = neighbor_list("ijd", atoms, 2.0 * radii.max())
    if len(d) and (d / (radii[i] + radii[j])).min() < 0.5:
        return "atoms closer than half their covalent-radius sum"
    return None


#: Labels beyond these are a failure of the teacher, not physics: diamond, the stiffest
#: crystal, has force constants up to 38 eV/Å² here, and 1 eV/Å³ is 160 GPa (c-BN strained
#: by 4 % reaches 0.54 eV/Å³).
MAX_ABS_FC = 100.0  # eV/Å²
MAX_ABS_STRESS = 1.0  # eV/Å³


def _max_abs_fc(path: Path) -> float:
    return float(np.abs(read_phonopy_yaml(path).force_constants).max())


def _variant_folder(folder: Path, variant: dict[str, Any]) -> Path:
    """``<base folder>/<variant>`` of a ``done.json`` variant record (label ``base/variant``)."""
    return folder / variant["label"].rsplit("/", 1)[-1]


def implausible(folder: Path, variants: Sequence[dict[str, Any]]) -> str | None:
    """Why a labelled base's labels look unphysical, or None.

    Parameters
    ----------
    folder : Path
        The base's folder.
    variants : sequence of dict
        Its ``done.json`` variant records (``max_abs_fc`` is read from the
        variant's file when a record lacks it).
    """
    for variant in variants:
        sub = _variant_folder(folder, variant)
        stress = np.abs(json.loads((sub / "labels.json").read_text())["stress"] or [0.0]).max()
        if stress > MAX_ABS_STRESS:
            return f"{variant['label']}: |stress| {stress:.2f} eV/Å³ > {MAX_ABS_STRESS}"
        fc = variant.get("max_abs_fc")
        if fc is None and variant["force_constants"]:
            fc = _max_abs_fc(sub / YAML_XZ)
        if fc is not None and fc > MAX_ABS_FC:
            return f"{variant['label']}: |force constant| {fc:.0f} eV/Å² > {MAX_ABS_FC:.0f}"
    return None


def _skip_implausible(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` marked checked, or turned into a skipped one with its variant folders removed."""
    reason = implausible(folder, record.get("variants", []))
    if reason is None:
        return {**record, "labels_checked": True}
    for variant in record.pop("variants"):
        shutil.rmtree(_variant_folder(folder, variant), ignore_errors=True)
    return {**record, "skipped": reason}


def _write_yaml_xz(phonon: Phonopy, path: Path, with_fc: bool) -> None:
    settings = {"force_sets": False, "displacements": False, "force_constants": with_fc}
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "phonopy_params.yaml"
        phonon.save(plain, settings=settings)
        text = plain.read_bytes()
    atomic_write(path, lambda p: Path(p).write_bytes(lzma.compress(text, preset=9)))


def _labels(label: str, values: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": label,
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å^3 (ASE Voigt)"},
        "energy": float(values["energy"]),
        "forces": np.round(np.asarray(values["forces"], dtype=float), 6).tolist(),
        "stress": None if values.get("stress") is None
        else np.round(np.asarray(values["stress"], dtype=float), 9).tolist(),
        **extra,
    }


def label_variant(label: str, atoms: Atoms, calc: Calculator, folder: Path, with_fc: bool,
                  supercell_min_length: float, fc_budget: int) -> dict[str, Any]:
    """Label one variant and write its folder (see the module docstring).

    Returns
    -------
    dict
        ``labels.json`` content without forces: label, energy (eV), atom
        counts, number of displacements, whether force constants were written.
    """
    start = time.perf_counter()
    unitcell = atoms_to_phonopy(atoms)
    smat = default_supercell_matrix(atoms.cell.array, supercell_min_length) if with_fc else np.eye(3, dtype=int)
    phonon = Phonopy(unitcell, smat, primitive_matrix=primitive_matrix(unitcell) if with_fc
                     else np.eye(3), log_level=0)
    supercell = phonopy_to_atoms(phonon.supercell)
    if with_fc:
        phonon.generate_displacements(distance=0.01)
        with_fc = len(phonon.supercells_with_displacements) * len(supercell) <= fc_budget
    perfect = calculate_labels(supercell, calc, stress=True)
    n_disp = 0
    if with_fc:
        displaced = [calculate_labels(phonopy_to_atoms(s), calc) for s in phonon.supercells_with_displacements]
        n_disp = len(displaced)
        phonon.forces = np.array([r["forces"] for r in displaced]) - perfect["forces"][None]
        phonon.produce_force_constants(calculate_full_force_constants=False, show_drift=False)
    info = {"n_atoms": len(atoms), "n_supercell_atoms": len(supercell),
            "supercell_matrix": np.asarray(smat).tolist(), "n_displacements": n_disp,
            "force_constants": bool(with_fc), "wall_time_s": time.perf_counter() - start}
    if with_fc:
        info["max_abs_fc"] = float(np.abs(phonon.force_constants).max())
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "labels.json", json.dumps(_labels(label, perfect, info)))
    _write_yaml_xz(phonon, folder / YAML_XZ, with_fc)
    return {"label": label, "energy": float(perfect["energy"]), **info}


def _variants(label: str, relaxed: Atoms, seed: int, n_efs: int) -> list[tuple[str, Atoms, bool]]:
    rng = structure_rng(seed, label)
    iso = relaxed.copy()
    iso.set_cell(relaxed.cell * (0.97 if rng.random() < 0.5 else 1.03), scale_atoms=True)
    out = [("eq", relaxed, True), ("iso", iso, True)]
    reps = 1
    while len(relaxed) * reps**3 < 4:
        reps += 1
    for k in range(n_efs):
        cell = strained(relaxed.repeat(reps), random_strain(rng, 0.04))
        out.append((f"efs-{k}", rattled(cell, rng.uniform(0.02, 0.12), rng), False))
    return out


def label_base(label: str, atoms: Atoms, calculator_factory: Callable[[], Calculator],
               folder: str | os.PathLike, seed: int = 0, supercell_min_length: float = 6.0,
               fc_budget: int = 2500, n_efs: int = 4) -> dict[str, Any]:
    """Relax one base structure with the teacher and label its variants.

    Parameters
    ----------
    label : str
        Base label (folder name).
    atoms : ase.Atoms
        Unrelaxed unit cell, Å.
    calculator_factory : callable
        Returns a fresh teacher calculator (called once).
    folder : path
        The base's folder; ``done.json`` is written into it last.
    seed : int
        Seed of the variants' random strain and rattling.
    supercell_min_length : float
        Minimum supercell plane spacing for force constants, Å.
    fc_budget : int
        Largest number of displaced supercell atoms (displacements × atoms)
        spent on one variant's force constants.
    n_efs : int
        Number of strained and rattled energy/forces/stress variants.

    Returns
    -------
    dict
        The ``done.json`` content.
    """
    from ase_fcnet.phonons.relax import relax

    start = time.perf_counter()
    folder = Path(folder)
    calc = calculator_factory()
    record: dict[str, Any] = {"base": label, "formula": atoms.get_chemical_formula()}
    try:
        relaxed, info = relax(atoms, calc, fmax=0.02, max_steps=200)
        reason = _sane(relaxed, info["energy_eV"])
    except Exception as err:  # noqa: BLE001 - a teacher failure skips the base, recorded
        info, reason = {}, f"relaxation failed: {type(err).__name__}: {err}"
    record["relaxation"] = info
    if reason is None:
        record["variants"] = [
            label_variant(f"{label}/{name}", cell, calc, folder / name, fc,
                          supercell_min_length, fc_budget)
            for name, cell, fc in _variants(label, relaxed, seed, n_efs)
        ]
        record = _skip_implausible(folder, record)
    else:
        record["skipped"] = reason
    record["wall_time_s"] = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / DONE, json.dumps(record, indent=1))
    return record


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def generate_teacher_data(out_dir: str | os.PathLike, calculator_factory: Callable[[], Calculator],
                          seed: int = 0, n_random: int = 350, workers: int = 1,
                          limit: int | None = None, progress: bool = True,
                          **kwargs: Any) -> list[dict[str, Any]]:
    """Label every base structure not yet done; resumable (see the module docstring).

    Parameters
    ----------
    out_dir : path
        Dataset folder: ``<split>/<base>/<variant>/`` and ``index.json``.
    calculator_factory : callable
        Zero-argument, picklable; returns a fresh teacher calculator.
    seed, n_random
        Passed to :func:`~ase_fcnet.generation.universal.base_structures`.
    workers : int
        Processes labelling bases concurrently (one torch thread each when > 1).
    limit : int, optional
        Label at most this many new bases in this call (for runs in parts).
        Bases are taken in the order of the CRC-32 of their labels, so a
        partial run covers all structure families.
    progress : bool
        Show a progress bar.
    **kwargs
        Passed to :func:`label_base`.

    Returns
    -------
    list of dict
        The ``done.json`` records of all finished bases, in set order.
    """
    out = Path(out_dir)
    bases = base_structures(seed, n_random)
    where = {lab: out / teacher_split(lab) / lab for lab, _ in bases}
    todo = [(lab, at) for lab, at in bases if not (where[lab] / DONE).exists()]
    todo.sort(key=lambda item: zlib.crc32(item[0].encode()))  # a partial run spans all families
    todo = todo[:limit] if limit is not None else todo
    run = functools.partial(label_base, calculator_factory=calculator_factory, seed=seed, **kwargs)
    bar = tqdm(total=len(todo), disable=not progress, desc="bases")
    with bar:
        run_labelled(run, todo, where.__getitem__, workers, bar, _worker_init, (1,))
    records = [json.loads((where[lab] / DONE).read_text()) for lab, _ in bases
               if (where[lab] / DONE).exists()]
    for k, record in enumerate(records):  # bases labelled before the plausibility check
        if "skipped" not in record and not record.get("labels_checked"):
            folder = where[record["base"]]
            records[k] = _skip_implausible(folder, record)
            atomic_write_text(folder / DONE, json.dumps(records[k], indent=1))
    index = {"teacher": getattr(calculator_factory, "__name__", str(calculator_factory)),
             "seed": seed, "n_random": n_random, "n_bases": len(bases),
             "bases": [{"base": r["base"], "split": teacher_split(r["base"]),
                        "skipped": r.get("skipped"),
                        "variants": [v["label"] for v in r.get("variants", [])]}
                       for r in records]}
    atomic_write_text(out / "index.json", json.dumps(index, indent=1))
    return records


def summary(done: Sequence[dict[str, Any]]) -> str:
    """One-paragraph statistics of finished (not skipped) ``done.json`` records."""
    from ase.formula import Formula

    fc = [v for r in done for v in r["variants"] if v["force_constants"]]
    sizes = [v["n_supercell_atoms"] for v in fc]
    bases_per_element: dict[str, int] = {}
    for r in done:
        for element in Formula(r["formula"]).count():
            bases_per_element[element] = bases_per_element.get(element, 0) + 1
    converged = sum(bool(r["relaxation"].get("converged")) for r in done)
    rarest = min(bases_per_element.values()) if bases_per_element else 0
    return (f"{len(fc)} structures with force constants (supercells of {np.mean(sizes):.0f} "
            f"atoms on average, at most {max(sizes, default=0)}); {converged} of {len(done)} "
            f"relaxations converged; {len(bases_per_element)} elements, the rarest in {rarest} bases")
