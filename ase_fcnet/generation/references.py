"""Named analytic reference calculators and their supercell Hessians.

The references stand in for DFT when generating training data: matscipy's
Stillinger–Weber silicon, Erhart–Albe Tersoff SiC and ASE's EMT (for quick
tests). Units: eV, Å, eV/Å, eV/Å².

matscipy pitfalls handled here
------------------------------
* ``Manybody.get_hessian(atoms)`` sizes its output with ``len(self.atoms)``,
  i.e. the structure of the *previous* calculation. Asking a calculator that
  last saw another cell gives a wrong-sized matrix or worse (reported: a
  192×192 Hessian for 54 atoms, and heap corruption; with matscipy 1.3.1 an
  8-atom → 54-atom call raised a broadcasting ValueError and the process then
  segfaulted). :func:`analytic_hessian` therefore evaluates the energy of
  ``atoms`` first, so the calculator is updated, and checks the shape.
* matscipy 1.3's Manybody Hessian is wrong for bond-order potentials
  (Tersoff) when an atom has neighbours of *different* species within the
  cutoff (e.g. a Si with both C and Si neighbours in rattled SiC): its loop
  over triplet pairs passes the type of bond il where that of bond ij is due
  to ``d2G``. It is correct for single-species environments and for
  Stillinger–Weber (whose ``d22F`` vanishes). :func:`hessian_column_error`
  measures such errors against central force differences;
  :func:`analytic_force_constants` uses it to reject a bad Hessian.
* That loop runs in Python, about ``sum_i n_i (n_i - 1)**2`` iterations for
  n_i neighbours within the cutoff (roughly 0.25 ms each): 0.5 s for 64-atom
  diamond Si, but ~60 s once the 12 second neighbours of Si enter the
  Stillinger–Weber cutoff (3 % compression), and minutes for β-tin Si (SW) or
  rock-salt SiC (Tersoff). :func:`matscipy_hessian_cost` estimates that count
  so that callers can choose finite displacements instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from phonopy import Phonopy

from ase_fcnet.phonopy_bridge import compact_force_constants, phonopy_to_atoms, rows_to_force_constants

__all__ = [
    "HESSIAN_TOL",
    "REFERENCES",
    "REFERENCE_ELEMENTS",
    "InaccurateHessianError",
    "analytic_force_constants",
    "analytic_hessian",
    "check_reference_elements",
    "hessian_column_error",
    "matscipy_hessian_cost",
    "reference_calculator",
]

#: Largest accepted deviation (eV/Å²) of an analytic Hessian column from central
#: force differences at 1e-3 Å (whose own error is <~1e-4 eV/Å² for Si and SiC).
HESSIAN_TOL = 1e-3


class InaccurateHessianError(RuntimeError):
    """An analytic Hessian failed a consistency check (asymmetry, forces)."""


def _sw_si() -> Calculator:
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
        StillingerWeber,
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
    "tersoff-sic": (
        _tersoff_sic,
        "Erhart-Albe Tersoff Si/C, PRB 71, 035211 (2005), matscipy",
    ),
    "emt": (
        _emt,
        "ASE effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt; for tests)",
    ),
}


def _emt_elements() -> tuple[str, ...]:
    from ase.calculators.emt import parameters

    return tuple(sorted(parameters))


#: Reference name -> the elements it has parameters for.
REFERENCE_ELEMENTS: dict[str, Callable[[], tuple[str, ...]]] = {
    "sw-si": lambda: ("Si",),
    "tersoff-sic": lambda: ("C", "Si"),
    "emt": _emt_elements,
}


def check_reference_elements(name: str, structures: Sequence[tuple[str, Atoms]]) -> None:
    """Fail before any work when a structure holds an element the reference lacks.

    Parameters
    ----------
    name : str
        A key of :data:`REFERENCES`.
    structures : sequence of (str, ase.Atoms)
        Labels (file names, say) and structures.

    Raises
    ------
    ValueError
        Naming the first structure and its elements the reference has no
        parameters for, and the elements it covers; or an unknown reference.
    """
    if name not in REFERENCE_ELEMENTS:
        known = ", ".join(sorted(REFERENCES))
        raise ValueError(f"unknown reference calculator {name!r}; known: {known}")
    covered = REFERENCE_ELEMENTS[name]()
    for label, atoms in structures:
        missing = sorted(set(atoms.get_chemical_symbols()) - set(covered))
        if missing:
            raise ValueError(
                f"{label}: reference {name!r} has no parameters for {', '.join(missing)} "
                f"(it covers {', '.join(covered)}); use another --reference or --calculator"
            )


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
        If the Hessian does not have shape (3N, 3N) (stale neighbour list).
    InaccurateHessianError
        If it is not symmetric to round-off.
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
        raise InaccurateHessianError(f"Hessian is not symmetric: max|H - H^T| = {asym:.3e} eV/Å²")
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
    ``±h n``. The finite-difference error is O(h²): at most 1e-4 eV/Å² was
    measured for Si, C and SiC at h = 1e-3 Å, far below the errors this catches.

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


def matscipy_hessian_cost(atoms: Atoms, calc: Calculator) -> int | None:
    """Estimated iterations of the Python loop in matscipy's Manybody Hessian.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic structure (N atoms).
    calc : Calculator
        Calculator; only those with ``get_cutoff(atoms)`` (matscipy Manybody,
        cutoff in Å) are estimated.

    Returns
    -------
    int or None
        ``sum_i n_i (n_i - 1)**2`` with n_i the number of neighbours of atom i
        within the cutoff (periodic images included); None when ``calc`` has no
        ``get_cutoff``.
    """
    get_cutoff = getattr(calc, "get_cutoff", None)
    if not callable(get_cutoff):
        return None
    from ase.neighborlist import neighbor_list

    first = neighbor_list("i", atoms, float(get_cutoff(atoms)))
    n = np.bincount(first, minlength=len(atoms)).astype(np.int64)
    return int(np.sum(n * (n - 1) ** 2))


def _displacement_directions(phonon: Phonopy) -> list[tuple[int, np.ndarray]]:
    """Distinct (atom, unit direction up to sign) of phonopy's displacements."""
    seen: dict[tuple, tuple[int, np.ndarray]] = {}
    for d in phonon.dataset["first_atoms"]:
        n = np.asarray(d["displacement"], dtype=np.float64)
        n = n / np.linalg.norm(n)
        n = -n if n[np.flatnonzero(np.abs(n) > 1e-8)[0]] < 0 else n
        seen.setdefault((int(d["number"]), *np.round(n, 6)), (int(d["number"]), n))
    return list(seen.values())


def analytic_force_constants(
    phonon: Phonopy, calc: Calculator, tol: float = HESSIAN_TOL
) -> tuple[np.ndarray, float]:
    """Compact phonopy force constants from a checked analytic supercell Hessian.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With displacements generated; its supercell (N atoms) is differentiated.
    calc : Calculator
        Calculator with ``get_hessian`` (see :func:`analytic_hessian`).
    tol : float
        Largest accepted :func:`hessian_column_error`, eV/Å², over the atoms and
        directions phonopy displaces.

    Returns
    -------
    fc : numpy.ndarray
        Shape (n_primitive, N, 3, 3), eV/Å²: rows ``phonon.primitive.p2s_map``
        of the full ``fc[i, j, a, b] = H[3i+a, 3j+b]``.
    error : float
        The measured column error, eV/Å².

    Raises
    ------
    InaccurateHessianError
        If the Hessian is not symmetric or its column error exceeds ``tol``.
    """
    atoms = phonopy_to_atoms(phonon.supercell)
    hess = analytic_hessian(atoms, calc)
    err = hessian_column_error(atoms, calc, hess, _displacement_directions(phonon))
    if err > tol:
        raise InaccurateHessianError(
            f"analytic Hessian deviates from central force differences by {err:.3e} eV/Å²"
        )
    return compact_force_constants(rows_to_force_constants(hess), phonon.primitive.p2s_map), err
