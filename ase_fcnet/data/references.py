"""Named analytic reference calculators and their supercell Hessians.

The references stand in for DFT when generating training data: matscipy's
Stillinger–Weber silicon, Erhart–Albe Tersoff SiC and ASE's EMT (for quick
tests). Units: eV, Å, eV/Å, eV/Å².

matscipy pitfalls handled here
------------------------------
* ``Manybody.get_hessian(atoms)`` sizes its output with ``len(self.atoms)``,
  i.e. the structure of the *previous* calculation. Asking a calculator that
  last saw an 8-atom cell for the Hessian of a 54-atom cell gives a wrong-sized
  matrix (a 192×192 Hessian came back for 54 atoms, and one run ended in heap
  corruption). :func:`analytic_hessian` therefore evaluates the energy of
  ``atoms`` first, so the calculator is updated, and checks the shape.
* matscipy 1.3's Manybody Hessian is wrong for bond-order potentials
  (Tersoff) when an atom has neighbours of *different* species within the
  cutoff (e.g. a Si with both C and Si neighbours in rattled SiC): the
  triplet term evaluates ``d2G`` with the pair type of the wrong bond. It is
  correct for single-species environments and for Stillinger–Weber (whose
  ``d22F`` vanishes). :func:`hessian_column_error` measures such errors
  against central finite differences of the forces; the data generator uses it
  to reject a bad analytic Hessian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

__all__ = [
    "REFERENCES",
    "reference_calculator",
    "analytic_hessian",
    "hessian_column_error",
]


def _sw_si() -> Calculator:
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        StillingerWeber,
        Stillinger_Weber_PRB_31_5262_Si,
    )

    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))


def _tersoff_sic() -> Calculator:
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.tersoff_brenner import (
        Erhart_PRB_71_035211_SiC,
        TersoffBrenner,
    )

    return Manybody(**TersoffBrenner(Erhart_PRB_71_035211_SiC))


def _emt() -> Calculator:
    from ase.calculators.emt import EMT

    return EMT()


#: Reference name -> (factory returning a fresh calculator, one-line description).
REFERENCES: dict[str, tuple[Callable[[], Calculator], str]] = {
    "sw-si": (_sw_si, "Stillinger-Weber Si, PRB 31, 5262 (1985), matscipy Manybody"),
    "tersoff-sic": (_tersoff_sic, "Erhart-Albe Tersoff Si/C, PRB 71, 035211 (2005), matscipy"),
    "emt": (_emt, "ASE effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt; for tests)"),
}


def reference_calculator(name: str) -> Calculator:
    """Return a *fresh* calculator for a named analytic reference.

    Parameters
    ----------
    name : str
        One of ``REFERENCES``: ``"sw-si"``, ``"tersoff-sic"``, ``"emt"``.

    Returns
    -------
    ase.calculators.calculator.Calculator
        A new instance on every call (never shared between structures). The
        matscipy ones also provide ``get_hessian``.

    Raises
    ------
    ValueError
        If ``name`` is not a known reference; the message lists the known names.
    """
    try:
        factory, _ = REFERENCES[name]
    except KeyError:
        known = ", ".join(sorted(REFERENCES))
        raise ValueError(f"unknown reference calculator {name!r}; known: {known}") from None
    return factory()


def analytic_hessian(atoms: Atoms, calc: Calculator, symmetry_tol: float = 1e-8) -> np.ndarray:
    """Dense analytic Hessian of the periodic cell from ``calc.get_hessian``.

    The energy of ``atoms`` is evaluated with ``calc`` first, so a calculator
    that last saw another structure is updated before the Hessian is taken
    (see the module docstring); ``atoms`` itself is not modified.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic structure with N atoms.
    calc : Calculator
        Calculator with ``get_hessian(atoms, format=...)`` (matscipy Manybody
        and pair potentials). Sparse results are densified.
    symmetry_tol : float
        Largest allowed ``max|H - H^T|`` relative to ``max(1, max|H|)``.

    Returns
    -------
    numpy.ndarray
        Shape (3N, 3N), eV/Å², ``H[3i+a, 3j+b] = d²E / du_ia du_jb``, symmetrised
        as ``(H + H^T) / 2`` (the asymmetry removed is round-off only).

    Raises
    ------
    TypeError
        If ``calc`` has no ``get_hessian``.
    RuntimeError
        If the Hessian does not have shape (3N, 3N) (stale neighbour list) or is
        not symmetric to round-off.
    """
    if not callable(getattr(calc, "get_hessian", None)):
        raise TypeError(f"{type(calc).__name__} has no get_hessian method")
    work = atoms.copy()
    work.calc = calc
    work.get_potential_energy()
    try:
        hess = calc.get_hessian(work, format="sparse")
    except TypeError:
        hess = calc.get_hessian(work)
    hess = hess.toarray() if hasattr(hess, "toarray") else np.asarray(hess)
    hess = np.asarray(hess, dtype=np.float64)
    n3 = 3 * len(atoms)
    if hess.shape != (n3, n3):
        raise RuntimeError(
            f"Hessian has shape {hess.shape} for {len(atoms)} atoms, expected ({n3}, {n3}): "
            "the calculator used a neighbour list of a different structure"
        )
    asym = float(np.abs(hess - hess.T).max())
    scale = max(1.0, float(np.abs(hess).max()))
    if asym > symmetry_tol * scale:
        raise RuntimeError(f"Hessian is not symmetric: max|H - H^T| = {asym:.3e} eV/Å²")
    return 0.5 * (hess + hess.T)


def hessian_column_error(
    atoms: Atoms,
    calc: Calculator,
    hessian: np.ndarray,
    directions: Sequence[tuple[int, Sequence[float]]],
    step: float = 1e-3,
) -> float:
    """Largest deviation of Hessian columns from central force differences.

    For each ``(i, n)`` the column ``H[:, 3i:3i+3] @ n`` (n normalised) is
    compared with ``-(F(+h n) - F(-h n)) / (2h)`` where atom i is displaced by
    ``±h n``. The finite-difference error is O(h²) (about 1e-5 eV/Å² for
    Si/SiC at h = 1e-3 Å), far below the errors this is meant to catch.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure the Hessian belongs to (N atoms); not modified.
    calc : Calculator
        Calculator giving forces (eV/Å).
    hessian : numpy.ndarray
        Shape (3N, 3N), eV/Å².
    directions : sequence of (int, array-like of shape (3,))
        Atom index and Cartesian displacement direction (any length > 0).
    step : float
        Finite-difference displacement h in Å.

    Returns
    -------
    float
        ``max |H col - FD col|`` over all directions and rows, eV/Å²
        (0.0 if ``directions`` is empty).
    """
    worst = 0.0
    for i, vec in directions:
        n = np.asarray(vec, dtype=np.float64)
        n = n / np.linalg.norm(n)
        forces = []
        for sign in (1.0, -1.0):
            work = atoms.copy()
            work.positions[i] += sign * step * n
            work.calc = calc
            forces.append(work.get_forces().ravel())
        fd = -(forces[0] - forces[1]) / (2.0 * step)
        col = hessian[:, 3 * i : 3 * i + 3] @ n
        worst = max(worst, float(np.abs(col - fd).max()))
    return worst
