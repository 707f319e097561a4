"""Build :class:`phonopy.Phonopy` objects with force constants from an ASE calculator.

Two routes are offered:

``method="analytic"``
    Phonopy's minimal set of symmetry-irreducible displacements is generated
    with ``is_plusminus=False``.  For every displacement ``u`` the calculator
    supplies the Hessian-vector product ``H @ u`` of the *perfect* supercell,
    and phonopy receives the exactly harmonic forces ``F = -H @ u``.  Phonopy's
    own symmetry machinery then expands these into compact force constants,
    which equal the corresponding rows of the exact Hessian to round-off.

``method="finite-displacement"`` (alias ``"fd"``)
    Phonopy's standard finite-displacement route with the same calculator,
    used as the comparison route.

Units: energies eV, lengths Å, masses amu, force constants eV/Å².
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse
from ase import Atoms
from phonopy import Phonopy
from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

from ase_fcnet.phonons.symmetry import fast_phonopy_symmetry
from ase_fcnet.phonopy_bridge import (  # noqa: F401 (atoms_to_phonopy, phonopy_to_atoms re-exported)
    atoms_to_phonopy,
    default_supercell_matrix,
    displacement_vectors,
    phonopy_to_atoms,
    rows_to_force_constants,
)

_METHODS = {"analytic": "analytic", "finite-displacement": "finite-displacement", "fd": "finite-displacement"}


def resolve_supercell_matrix(cell, supercell_matrix=None, min_length: float = 10.0) -> np.ndarray:
    """Return a validated integer (3, 3) supercell matrix.

    Parameters
    ----------
    cell : array_like, shape (3, 3), Å
        Lattice vectors (rows) of the unit cell.
    supercell_matrix : None, int, sequence of 3 ints or (3, 3) array_like
        ``None`` selects :func:`ase_fcnet.phonopy_bridge.default_supercell_matrix`:
        the smallest diagonal matrix whose supercell has every lattice-plane
        spacing ``>= min_length``.
    min_length : float, Å
        Minimum supercell plane spacing for the automatic choice.

    Returns
    -------
    ndarray, shape (3, 3), int
        Supercell matrix ``P`` with supercell lattice ``P @ cell`` and det(P) >= 1.
    """
    cell = np.asarray(cell, dtype=float)
    if supercell_matrix is None:
        return default_supercell_matrix(cell, min_length)
    raw = np.asarray(supercell_matrix)
    if raw.dtype == object or not np.issubdtype(raw.dtype, np.number):
        raise ValueError(f"supercell_matrix must be numeric, got {supercell_matrix!r}")
    if raw.size == 1:
        matrix = np.eye(3) * raw.reshape(())
    elif raw.shape == (3,):
        matrix = np.diag(raw)
    elif raw.shape == (3, 3):
        matrix = raw
    else:
        raise ValueError(f"supercell_matrix must be an int, 3 ints or a 3x3 matrix, got shape {raw.shape}")
    if not np.allclose(matrix, np.round(matrix)):
        raise ValueError(f"supercell_matrix must have integer entries, got {matrix.tolist()}")
    matrix = np.round(matrix).astype(int)
    det = round(np.linalg.det(matrix))
    if det == 0:
        raise ValueError(f"supercell_matrix is singular (determinant 0): {matrix.tolist()}")
    if det < 0:
        raise ValueError(f"supercell_matrix has negative determinant {det} (left-handed): {matrix.tolist()}")
    return matrix


def _as_vectors(vectors, n_atoms: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=float)
    if vectors.ndim != 3 or vectors.shape[1:] != (n_atoms, 3):
        raise ValueError(f"vectors must have shape (K, {n_atoms}, 3), got {vectors.shape}")
    return vectors


def _accepts_progress(method) -> bool:
    try:
        return "progress" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _hessian_operator(calculator, atoms: Atoms, progress: Callable[[int, int], None] | None = None
                      ) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """Return ``(apply, source)`` where ``apply(vectors (K, N, 3)) -> H @ v (K, N, 3)``.

    ``progress(done, total)`` is handed to calculators whose
    ``hessian_vector_products`` takes a ``progress`` argument.
    """
    n_atoms = len(atoms)
    if hasattr(calculator, "hessian_vector_products"):
        if progress is not None and _accepts_progress(calculator.hessian_vector_products):
            return (lambda vectors: calculator.hessian_vector_products(atoms, vectors, progress=progress),
                    "hessian_vector_products")
        return (lambda vectors: calculator.hessian_vector_products(atoms, vectors)), "hessian_vector_products"
    if hasattr(calculator, "get_hessian"):
        work = atoms.copy()
        work.calc = calculator
        work.get_potential_energy()
        hessian = calculator.get_hessian(work)
        if hessian is None:
            raise RuntimeError("calculator.get_hessian returned None")
        if not scipy.sparse.issparse(hessian):
            hessian = np.asarray(hessian, dtype=float)
        if hessian.shape != (3 * n_atoms, 3 * n_atoms):
            raise RuntimeError(
                f"calculator.get_hessian returned shape {hessian.shape}, expected "
                f"({3 * n_atoms}, {3 * n_atoms}) for {n_atoms} atoms"
            )

        def apply(vectors):
            flat = vectors.reshape(len(vectors), 3 * n_atoms).T
            return np.asarray(hessian @ flat).T.reshape(vectors.shape)

        return apply, "get_hessian"
    raise TypeError(
        f"calculator {type(calculator).__name__} provides no analytic Hessian "
        "(neither hessian_vector_products(atoms, vectors) nor get_hessian(atoms)); "
        'use method="finite-displacement" instead'
    )


def _apply_checked(apply, source: str, vectors: np.ndarray) -> np.ndarray:
    hv = np.asarray(apply(vectors), dtype=float)
    if hv.shape != vectors.shape:
        raise RuntimeError(f"calculator.{source} returned shape {hv.shape}, expected {vectors.shape}")
    if not np.all(np.isfinite(hv)):
        raise RuntimeError(f"calculator.{source} returned non-finite values")
    return hv


def calculator_hessian_vector_products(calculator, atoms: Atoms, vectors,
                            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Hessian-vector products ``H @ v`` of the energy at the configuration ``atoms``.

    Duck-typed protocol, tried in order:

    1. ``calculator.hessian_vector_products(atoms, vectors)``;
    2. ``calculator.get_hessian(atoms)`` (matscipy style, dense or sparse (3N, 3N)
       matrix); the calculator is first attached to a copy of ``atoms`` and the
       energy evaluated so that calculators caching neighbour lists see the
       new structure;
    3. otherwise :class:`TypeError`.

    Parameters
    ----------
    calculator : object
        Energy model providing one of the methods above.
    atoms : ase.Atoms
        Configuration with N atoms; not modified.
    vectors : array_like, shape (K, N, 3), Å
        Vectors ``v`` (Cartesian).
    progress : callable(done, total), optional
        Called after each product by calculators that support it.

    Returns
    -------
    ndarray, shape (K, N, 3), eV/Å² times the unit of ``vectors``
        ``(H @ v)[k, i, a] = sum_{j, b} d²E/dr_ia dr_jb v[k, j, b]``.
    """
    vectors = _as_vectors(vectors, len(atoms))
    apply, source = _hessian_operator(calculator, atoms, progress)
    return _apply_checked(apply, source, vectors)


def force_constants_full_hessian(atoms_supercell: Atoms, calculator, chunk_size: int = 96) -> np.ndarray:
    """Full Hessian of a supercell in phonopy's force-constant layout.

    Parameters
    ----------
    atoms_supercell : ase.Atoms
        Periodic configuration with N atoms; not modified.
    calculator : object
        Calculator following the :func:`calculator_hessian_vector_products` protocol.
    chunk_size : int
        Number of unit vectors applied per call (bounds the memory of
        ``hessian_vector_products`` implementations).

    Returns
    -------
    ndarray, shape (N, N, 3, 3), eV/Å²
        ``fc[i, j, a, b] = d²E / dr_ia dr_jb``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n_atoms = len(atoms_supercell)
    apply, source = _hessian_operator(calculator, atoms_supercell)
    identity = np.eye(3 * n_atoms).reshape(3 * n_atoms, n_atoms, 3)
    rows = [
        _apply_checked(apply, source, identity[start : start + chunk_size])
        for start in range(0, 3 * n_atoms, chunk_size)
    ]
    return np.ascontiguousarray(rows_to_force_constants(np.concatenate(rows)))


def phonopy_from_atoms(
    atoms: Atoms,
    calculator,
    supercell_matrix=None,
    primitive_matrix="auto",
    method: str = "analytic",
    min_length: float = 10.0,
    displacement_distance: float = 0.01,
    symprec: float = 1e-5,
    progress: Callable[[str], None] | None = None,
    born=None,
    direction_progress: Callable[[int, int], None] | None = None,
) -> Phonopy:
    """Create a :class:`phonopy.Phonopy` with compact force constants from ``calculator``.

    :func:`prepare_phonopy`, then :func:`set_force_constants`; with ``born``
    the BORN file is read and checked (:func:`ase_fcnet.phonons.nac.read_born`)
    before the force constants and applied after them.

    Parameters
    ----------
    atoms : ase.Atoms
        Fully periodic unit cell (positions Å, masses amu taken from ASE).
    calculator : object
        ASE calculator.  ``method="analytic"`` needs the Hessian protocol of
        :func:`calculator_hessian_vector_products`; the finite-displacement route needs forces.
    supercell_matrix : None, int, 3 ints or (3, 3) ints
        Supercell relative to ``atoms``; ``None`` chooses a diagonal matrix so
        that every supercell plane spacing is at least ``min_length`` Å.
    primitive_matrix : str or (3, 3) array_like
        Passed to phonopy (``"auto"`` detects the primitive cell, ``"P"`` keeps ``atoms``).
    method : {"analytic", "finite-displacement", "fd"}
        Route to the force constants (see module docstring).
    min_length : float, Å
        Used only when ``supercell_matrix`` is None.
    displacement_distance : float, Å
        Displacement amplitude.  In the analytic route it only scales ``u`` and
        the exact forces ``-H @ u`` together and does not affect the result.
    symprec : float, Å
        Symmetry tolerance for phonopy.
    progress : callable(str), optional
        Receives one line of text per step.
    born : path-like or dict, optional
        A phonopy ``BORN`` file (or its content as a dict) of the primitive
        cell: switches on phonopy's non-analytic correction (LO–TO splitting).
    direction_progress : callable(done, total), optional
        Called after each Hessian direction (or displaced supercell).

    Returns
    -------
    phonopy.Phonopy
        With compact force constants, shape (n_prim, n_super, 3, 3), eV/Å².
    """
    phonon = prepare_phonopy(atoms, supercell_matrix, primitive_matrix, method, min_length,
                             displacement_distance, symprec, progress)
    nac_params = None
    if born is not None:  # checked before the model is evaluated
        from ase_fcnet.phonons.nac import read_born

        nac_params = read_born(phonon, born, symprec)
    set_force_constants(phonon, calculator, method, progress, direction_progress)
    if nac_params is not None:
        phonon.nac_params = nac_params
    return phonon


def prepare_phonopy(
    atoms: Atoms,
    supercell_matrix=None,
    primitive_matrix="auto",
    method: str = "analytic",
    min_length: float = 10.0,
    displacement_distance: float = 0.01,
    symprec: float = 1e-5,
    progress: Callable[[str], None] | None = None,
) -> Phonopy:
    """A :class:`phonopy.Phonopy` with its displacements but no forces yet (no model call).

    ``len(phonon.displacements)`` is the number of Hessian directions (or of
    displaced supercells) :func:`set_force_constants` will compute. Parameters
    as for :func:`phonopy_from_atoms`.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(_METHODS)}")
    method = _METHODS[method]
    if not all(atoms.pbc):
        raise ValueError(f"atoms must be periodic in all three directions, got pbc={atoms.pbc.tolist()}")
    if not (np.isfinite(displacement_distance) and displacement_distance > 0):
        raise ValueError(f"displacement_distance must be positive (Å), got {displacement_distance!r}")
    report = progress if progress is not None else (lambda line: None)

    matrix = resolve_supercell_matrix(atoms.cell[:], supercell_matrix, min_length)
    with warnings.catch_warnings(), fast_phonopy_symmetry():
        warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
        phonon = Phonopy(
            atoms_to_phonopy(atoms), supercell_matrix=matrix, primitive_matrix=primitive_matrix, symprec=symprec
        )
        report(f"supercell matrix {matrix.tolist()}: {len(phonon.supercell)} atoms, "
               f"primitive cell {len(phonon.primitive)} atoms")
        phonon.generate_displacements(distance=displacement_distance,
                                      is_plusminus="auto" if method != "analytic" else False)
    return phonon


def set_force_constants(
    phonon: Phonopy,
    calculator,
    method: str = "analytic",
    progress: Callable[[str], None] | None = None,
    direction_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Forces of the displacements of :func:`prepare_phonopy` from ``calculator``, then compact force constants."""
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(_METHODS)}")
    report = progress if progress is not None else (lambda line: None)
    with fast_phonopy_symmetry():
        _set_forces(phonon, calculator, _METHODS[method], report, direction_progress)
        phonon.produce_force_constants(calculate_full_force_constants=False, fc_calculator="traditional")
    report(f"force constants: shape {phonon.force_constants.shape}")


def _set_forces(phonon: Phonopy, calculator, method: str, report: Callable[[str], None],
                direction_progress: Callable[[int, int], None] | None) -> None:
    """Set the forces of phonopy's displacements (exact or finite-difference)."""
    n_super = len(phonon.supercell)
    if method == "analytic":
        u = displacement_vectors(phonon)
        amplitudes = np.linalg.norm(u.reshape(len(u), -1), axis=1)
        directions = u / amplitudes[:, None, None]
        report(f"analytic force constants: {len(u)} direction{'s' * (len(u) != 1)} on {n_super}-atom supercell")
        hv = calculator_hessian_vector_products(calculator, phonopy_to_atoms(phonon.supercell), directions,
                                     direction_progress)
        phonon.forces = -hv * amplitudes[:, None, None]
        return
    cells = phonon.supercells_with_displacements
    distance = float(np.linalg.norm(phonon.displacements[0][1:4])) if len(cells) else 0.0
    report(f"finite displacements: {len(cells)} supercells of {n_super} atoms, d = {distance:g} Å")
    forces = []
    for k, cell in enumerate(cells):
        displaced = phonopy_to_atoms(cell)
        displaced.calc = calculator
        forces.append(np.array(displaced.get_forces(), dtype=float))
        report(f"finite displacements: supercell {k + 1}/{len(cells)} done")
        if direction_progress is not None:
            direction_progress(k + 1, len(cells))
    phonon.forces = np.array(forces)
