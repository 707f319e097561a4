"""What a screen computes, and the keys that identify a material's result.

A material's key is the SHA-256 of three things: its structure (atomic
numbers, cell and fractional positions rounded to 1e-6 Å / 1e-8), the
settings that change its numbers (:func:`settings_hash`) and the model
file's own SHA-256 (:func:`model_identity`). A rerun with the same three
finds the same key and skips the row.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_fcnet.phonons.validate import SettingsError, check_settings
from ase_fcnet.phonons.workflow import PhononSettings


@dataclass(frozen=True)
class ScreenSettings:
    """Options of every material's phonon calculation (units: Å, K, eV/Å).

    Parameters
    ----------
    relax : bool
        Relax positions and cell first (space group kept).
    fmax : float
        Relaxation force criterion, eV/Å.
    steps : int
        Maximum relaxation steps.
    supercell : None or 3 ints
        Supercell multiples of each input cell; ``None`` picks the smallest
        diagonal supercell whose lattice planes are all ≥ ``min_length`` apart
        (the one rule of :func:`ase_fcnet.phonopy_bridge.default_supercell_matrix`).
    min_length : float
        Minimum lattice-plane spacing of the automatic supercell, Å.
    primitive : {"auto", "none"}
        ``"auto"``: phonopy finds the primitive cell; ``"none"``: keep the input cell.
    mesh : 3 ints or float
        q-mesh for DOS, thermal properties and the frequency scan, or a length (Å).
    npoints : int
        q-points per band-path segment.
    t_min, t_max, t_step : float
        Temperature grid of the stored thermal-property table, K.
    symprec : float
        Symmetry tolerance, Å.
    dtype : {None, "float64", "float32"}
        Model precision; ``None`` is the model's own recommendation.
    """

    relax: bool = False
    fmax: float = 0.005
    steps: int = 300
    supercell: tuple | None = None
    min_length: float = 10.0
    primitive: str = "auto"
    mesh: object = 30.0
    npoints: int = 51
    t_min: float = 0.0
    t_max: float = 1000.0
    t_step: float = 10.0
    symprec: float = 1e-5
    dtype: str | None = None

    def __post_init__(self):
        _check_settings(self)


def _check_settings(s: ScreenSettings) -> None:
    problems = []
    if not (math.isfinite(s.fmax) and s.fmax > 0):
        problems.append(f"fmax must be a positive force in eV/Å, got {s.fmax!r}")
    if int(s.steps) < 1:
        problems.append(f"steps must be >= 1, got {s.steps!r}")
    if s.supercell is not None and (len(s.supercell) != 3 or min(int(n) for n in s.supercell) < 1):
        problems.append(f"supercell needs three positive integers, got {s.supercell!r}")
    if s.primitive not in ("auto", "none"):
        problems.append(f"primitive must be 'auto' or 'none', got {s.primitive!r}")
    try:  # the checks fcnet phonons makes of the same settings
        check_settings(PhononSettings(mesh=s.mesh, t_min=s.t_min, t_max=s.t_max, t_step=s.t_step,
                                      symprec=s.symprec, npoints=s.npoints, min_length=s.min_length))
    except SettingsError as err:
        problems.append(str(err))
    if s.dtype not in (None, "float64", "float32"):
        problems.append(f"dtype must be None, 'float64' or 'float32', got {s.dtype!r}")
    if problems:
        raise ValueError("invalid screening settings: " + "; ".join(problems))


def settings_dict(settings: ScreenSettings) -> dict:
    """Plain JSON-able form of the settings."""
    data = asdict(settings)
    for name in ("fmax", "min_length", "t_min", "t_max", "t_step", "symprec"):
        data[name] = float(data[name])
    data["steps"], data["npoints"], data["relax"] = int(data["steps"]), int(data["npoints"]), bool(data["relax"])
    data["supercell"] = None if settings.supercell is None else [int(n) for n in settings.supercell]
    mesh = np.asarray(settings.mesh)
    data["mesh"] = float(mesh) if mesh.shape == () else [int(n) for n in mesh]
    return data


def settings_hash(settings: ScreenSettings) -> str:
    """SHA-256 (hex, first 16 characters) of the settings (``relax=False`` ignores fmax and steps)."""
    data = settings_dict(settings)
    if not settings.relax:
        data.pop("fmax")
        data.pop("steps")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model) -> tuple[str, Path, str]:
    """``(name, path, sha256[:16])`` of a model file or bundled model's name (``None``: the default).

    Raises
    ------
    FileNotFoundError
        When the model file does not exist (the message names it).
    """
    from ase_fcnet.pretrained import DEFAULT_MODEL, bundled_path, canonical_name, model_file

    path = model_file(model)
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file not found: {model} (`fcnet models` lists the bundled ones)")
    if model is None:
        name = DEFAULT_MODEL
    elif bundled_path(model) is not None and not Path(model).exists():
        name = canonical_name(str(model))
    else:
        name = Path(model).name
    return name, Path(path).resolve(), file_sha256(path)[:16]


def structure_hash(atoms: Atoms) -> str:
    """SHA-256 (hex) of atomic numbers, cell (Å, 1e-6) and fractional positions (1e-8), wrapped."""
    cell = np.round(np.asarray(atoms.cell.array, dtype=float), 6) + 0.0
    if atoms.cell.rank == 3:
        frac = atoms.get_scaled_positions(wrap=True)
        frac = np.round(frac, 8) % 1.0 + 0.0
    else:
        frac = np.round(atoms.positions, 6) + 0.0
    digest = hashlib.sha256()
    for part in (np.asarray(atoms.numbers, dtype=np.int64), cell, frac, np.asarray(atoms.pbc, dtype=np.int8)):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def material_key(structure_id: str, settings_sha: str, model_sha: str) -> str:
    """Key of one material's result (hex, 24 characters)."""
    return hashlib.sha256(f"{structure_id}|{settings_sha}|{model_sha}".encode()).hexdigest()[:24]
