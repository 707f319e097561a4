"""Symmetry-preserving relaxation before a phonon calculation."""
from __future__ import annotations

from typing import Callable

import numpy as np
from ase import Atoms
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS


def relax(
    atoms: Atoms,
    calculator,
    fmax: float = 0.005,
    max_steps: int = 300,
    relax_cell: bool = True,
    symprec: float = 1e-5,
    progress: Callable[[str], None] | None = None,
) -> tuple[Atoms, dict]:
    """Relax positions (and the cell) keeping the space group.

    Parameters
    ----------
    atoms : Atoms
        Periodic structure; not modified.
    calculator : ASE calculator
    fmax : float
        Force convergence criterion, eV/Å (for the cell: the filter's
        generalised forces, eV/Å as well).
    max_steps : int
    relax_cell : bool
        Also relax the cell (needs stress).
    symprec : float
        Symmetry tolerance, Å.
    progress : callable(str), optional
        One line every 10 steps and at the end.

    Returns
    -------
    relaxed : Atoms
        Copy without calculator or constraints.
    info : dict
        ``steps``, ``converged``, ``fmax`` (eV/Å), ``energy_eV``, ``volume_change``.
    """
    work = atoms.copy()
    work.calc = calculator
    work.set_constraint(FixSymmetry(work, symprec=symprec))
    target = FrechetCellFilter(work) if relax_cell else work
    opt = BFGS(target, logfile=None)
    report = progress or (lambda line: None)

    def log():
        if opt.nsteps % 10 == 0:
            f = np.linalg.norm(target.get_forces(), axis=1).max()
            report(f"relax step {opt.nsteps}: E = {work.get_potential_energy():.6f} eV, fmax = {f:.4f} eV/Å")

    opt.attach(log)
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    fmax_now = float(np.linalg.norm(target.get_forces(), axis=1).max())
    info = {
        "steps": int(opt.nsteps),
        "converged": converged,
        "fmax": fmax_now,
        "energy_eV": float(work.get_potential_energy()),
        "volume_change": float(work.get_volume() / atoms.get_volume() - 1.0),
    }
    report(f"relax: {'converged' if converged else 'NOT converged'} after {opt.nsteps} steps, "
           f"fmax = {fmax_now:.4f} eV/Å, volume change {100 * info['volume_change']:+.2f}%")
    relaxed = work.copy()
    relaxed.set_constraint()
    relaxed.calc = None
    return relaxed, info
