"""One training sample: a supercell snapshot and the labels its file holds.

Units throughout: eV, Å, eV/Å, eV/Å², eV/Å³ (stress).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

__all__ = ["Sample"]


@dataclass(eq=False)
class Sample:
    """A periodic supercell snapshot with optional energy, forces, stress and
    force-constant labels.

    Attributes
    ----------
    atoms : ase.Atoms
        Structure of this snapshot, N atoms, periodic in all three directions.
        Positions and cell in Å; masses (amu) as given by the source file.
    energy : float or None
        Total energy of the supercell in eV.
    forces : numpy.ndarray or None
        Forces, shape (N, 3), eV/Å.
    stress : numpy.ndarray or None
        Stress, shape (6,), eV/Å³, ASE Voigt order (xx, yy, zz, yz, xz, xy)
        and ASE sign convention (positive = tensile, i.e. ``atoms.get_stress()``).
        A symmetric (3, 3) array is accepted and converted.
    fc_atoms : numpy.ndarray or None
        Supercell indices of the atoms whose Hessian rows are given, shape
        (M,), int64. ``primitive.p2s_map`` for compact phonopy force
        constants, ``arange(N)`` for full ones.
    force_constants : numpy.ndarray or None
        Force constants, shape (M, N, 3, 3), eV/Å²:
        ``force_constants[a, j, α, β] = ∂²E / ∂r[fc_atoms[a], α] ∂r[j, β]``.
    source : str
        Where the sample came from: a file path, with ``#<index>`` appended for
        one snapshot of a multi-snapshot file.
    weight : float
        Non-negative weight of the sample in a loss, default 1.

    Raises
    ------
    ValueError
        From ``__post_init__`` when an array has the wrong shape, holds
        non-finite values, or the atoms are not a periodic 3D cell. The message
        starts with ``source``.
    """

    atoms: Atoms
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    fc_atoms: np.ndarray | None = None
    force_constants: np.ndarray | None = None
    source: str = "<unknown>"
    weight: float = 1.0

    def __post_init__(self) -> None:
        self.source = str(self.source)
        if not isinstance(self.atoms, Atoms):
            self._fail(f"atoms must be ase.Atoms, got {type(self.atoms).__name__}")
        n = len(self.atoms)
        if n == 0:
            self._fail("atoms is empty")
        if not np.all(self.atoms.pbc):
            self._fail(f"atoms must be periodic in 3 directions, pbc={self.atoms.pbc.tolist()}")
        cell = np.asarray(self.atoms.cell[:], dtype=float)
        if not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-8:
            self._fail("atoms has a singular or non-finite cell")
        if not np.all(np.isfinite(self.atoms.positions)):
            self._fail("atoms has non-finite positions")

        if self.energy is not None:
            try:
                self.energy = float(self.energy)
            except (TypeError, ValueError) as exc:
                self._fail(f"energy must be a number, got {self.energy!r}", exc)
            if not np.isfinite(self.energy):
                self._fail(f"energy is not finite ({self.energy})")

        if self.forces is not None:
            self.forces = self._array("forces", self.forces, (n, 3))

        if self.stress is not None:
            stress = self._array("stress", self.stress, None)
            if stress.shape == (3, 3):
                if not np.allclose(stress, stress.T, rtol=0.0, atol=1e-10):
                    self._fail("stress (3, 3) is not symmetric")
                stress = full_3x3_to_voigt_6_stress(stress)
            elif stress.shape != (6,):
                self._fail(f"stress has shape {stress.shape}, expected (6,) or (3, 3)")
            self.stress = np.ascontiguousarray(stress, dtype=np.float64)

        if (self.fc_atoms is None) != (self.force_constants is None):
            self._fail("fc_atoms and force_constants must be given together")
        if self.fc_atoms is not None:
            fc_atoms = np.asarray(self.fc_atoms)
            if fc_atoms.ndim != 1 or fc_atoms.size == 0:
                self._fail(f"fc_atoms has shape {fc_atoms.shape}, expected (M,) with M >= 1")
            if not np.issubdtype(fc_atoms.dtype, np.integer):
                self._fail(f"fc_atoms must be integers, got dtype {fc_atoms.dtype}")
            fc_atoms = fc_atoms.astype(np.int64)
            if fc_atoms.min() < 0 or fc_atoms.max() >= n:
                self._fail(f"fc_atoms must lie in [0, {n}), got {fc_atoms.tolist()}")
            if len(np.unique(fc_atoms)) != len(fc_atoms):
                self._fail("fc_atoms has repeated atoms")
            self.fc_atoms = fc_atoms
            self.force_constants = self._array(
                "force_constants", self.force_constants, (len(fc_atoms), n, 3, 3)
            )

        try:
            self.weight = float(self.weight)
        except (TypeError, ValueError) as exc:
            self._fail(f"weight must be a number, got {self.weight!r}", exc)
        if not np.isfinite(self.weight) or self.weight < 0:
            self._fail(f"weight must be finite and >= 0, got {self.weight}")

    def _fail(self, problem: str, cause: BaseException | None = None) -> None:
        raise ValueError(f"{self.source}: {problem}") from cause

    def _array(self, name: str, value: Any, shape: tuple[int, ...] | None) -> np.ndarray:
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            self._fail(f"{name} is not a numeric array", exc)
        if shape is not None and arr.shape != shape:
            self._fail(f"{name} has shape {arr.shape}, expected {shape}")
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            self._fail(f"{name} has {bad} non-finite (NaN/inf) values")
        return np.ascontiguousarray(arr)

    @property
    def n_atoms(self) -> int:
        """Number of atoms N in the supercell."""
        return len(self.atoms)

    def to_dict(self) -> dict[str, Any]:
        """Return the sample as plain numpy arrays and python scalars.

        Returns
        -------
        dict
            Keys ``numbers`` (N,) int, ``positions`` (N, 3) Å, ``cell`` (3, 3) Å,
            ``pbc`` (3,) bool, ``masses`` (N,) amu, ``energy`` (float eV or
            None), ``forces`` ((N, 3) eV/Å or None), ``stress`` ((6,) eV/Å³ or
            None), ``fc_atoms`` ((M,) int or None), ``force_constants``
            ((M, N, 3, 3) eV/Å² or None), ``source`` (str), ``weight`` (float).
            Arrays are copies.
        """

        def copy(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.array(a)

        return {
            "numbers": np.array(self.atoms.numbers, dtype=np.int64),
            "positions": np.array(self.atoms.positions, dtype=np.float64),
            "cell": np.array(self.atoms.cell[:], dtype=np.float64),
            "pbc": np.array(self.atoms.pbc, dtype=bool),
            "masses": np.array(self.atoms.get_masses(), dtype=np.float64),
            "energy": self.energy,
            "forces": copy(self.forces),
            "stress": copy(self.stress),
            "fc_atoms": copy(self.fc_atoms),
            "force_constants": copy(self.force_constants),
            "source": self.source,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        """Rebuild a sample from the output of :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            As returned by :meth:`to_dict`; ``masses``, ``pbc`` and the label
            keys may be missing (ASE default masses, full periodicity, None).

        Raises
        ------
        ValueError
            When a structural key is missing or a label is invalid.
        """
        source = str(d.get("source", "<unknown>"))
        missing = [k for k in ("numbers", "positions", "cell") if k not in d]
        if missing:
            raise ValueError(f"{source}: sample dict lacks {', '.join(missing)}")
        try:
            atoms = Atoms(
                numbers=np.asarray(d["numbers"], dtype=np.int64),
                positions=np.asarray(d["positions"], dtype=np.float64),
                cell=np.asarray(d["cell"], dtype=np.float64),
                pbc=np.asarray(d.get("pbc", (True, True, True)), dtype=bool),
            )
            if d.get("masses") is not None:
                atoms.set_masses(np.asarray(d["masses"], dtype=np.float64))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{source}: invalid structure in sample dict: {exc}") from exc
        energy = d.get("energy")
        return cls(
            atoms=atoms,
            energy=None if energy is None else float(energy),
            forces=d.get("forces"),
            stress=d.get("stress"),
            fc_atoms=d.get("fc_atoms"),
            force_constants=d.get("force_constants"),
            source=source,
            weight=float(d.get("weight", 1.0)),
        )
