"""Phonon analysis helpers on a :class:`phonopy.Phonopy` that has force constants.

Frequencies are in THz (phonopy reports imaginary frequencies as negative
numbers), q-points in reduced coordinates of the primitive reciprocal lattice.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Callable

import numpy as np
from ase.cell import Cell
from ase.dft.kpoints import parse_path_string
from phonopy import Phonopy
from phonopy.phonon.dos import TotalDos
from phonopy.phonon.spectrum import TetrahedronDOSAccumulator

DEFAULT_MESH = (20, 20, 20)


def _require_force_constants(phonon: Phonopy) -> None:
    if phonon.force_constants is None:
        raise ValueError("phonon has no force constants; build it with phonopy_from_atoms first")


def _label(name: str) -> str:
    return "Γ" if name == "G" else name


@dataclass
class BandStructure:
    """Phonon band structure along a high-symmetry path.

    Attributes
    ----------
    path : str
        ASE path string, e.g. ``"GXWKGLUWLK,UX"`` (commas mark jumps).
    qpoints : list of ndarray, each shape (n_q, 3)
        Reduced q-points of each straight segment.
    distances : list of ndarray, each shape (n_q,), 1/Å
        Cumulative path length (phonopy's convention, without 2π).
    frequencies : list of ndarray, each shape (n_q, n_bands), THz
    labels : list of str
        Labels of the special points at ``label_positions``; a jump is shown as ``"K|U"``.
    label_positions : ndarray, shape (n_labels,), 1/Å
    path_connections : list of bool
        Whether segment ``i`` continues into segment ``i + 1``.
    """

    path: str
    qpoints: list
    distances: list
    frequencies: list
    labels: list
    label_positions: np.ndarray
    path_connections: list

    @property
    def all_frequencies(self) -> np.ndarray:
        """All frequencies along the path, shape (sum n_q, n_bands), THz."""
        return np.concatenate(self.frequencies)


def band_structure(phonon: Phonopy, npoints: int = 51, path: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> BandStructure:
    """Band structure along the standard path of phonopy's primitive cell.

    The path and special points come from ASE's ``Cell.bandpath`` applied to the
    primitive cell; their scaled coordinates are in the basis of that cell's
    reciprocal lattice, which is what phonopy expects.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    npoints : int
        Number of q-points per straight segment, end points included (>= 2).
    path : str, optional
        ASE path string using the special-point names of the lattice; default
        is ASE's standard path.
    progress : callable(done, total), optional
        Called after each q-point's dynamical matrix.

    Returns
    -------
    BandStructure
    """
    _require_force_constants(phonon)
    if npoints < 2:
        raise ValueError(f"npoints must be >= 2, got {npoints}")
    bandpath = Cell(np.array(phonon.primitive.cell)).bandpath(path=path, npoints=0)
    special = bandpath.special_points
    groups = parse_path_string(bandpath.path)
    segments, connections, labels_phonopy = [], [], []
    for group in groups:
        if len(group) < 2:
            raise ValueError(f"path piece {''.join(group)!r} of {bandpath.path!r} needs at least two points")
        labels_phonopy.append(_label(group[0]))
        for start, end in pairwise(group):
            q0, q1 = np.asarray(special[start], float), np.asarray(special[end], float)
            segments.append(q0 + np.linspace(0.0, 1.0, npoints)[:, None] * (q1 - q0))
            connections.append(True)
            labels_phonopy.append(_label(end))
        connections[-1] = False
    if progress is None:
        phonon.run_band_structure(segments, labels=labels_phonopy, path_connections=connections)
    else:
        with _counting_qpoints(phonon, sum(len(q) for q in segments), progress):
            phonon.run_band_structure(segments, labels=labels_phonopy, path_connections=connections)
    result = phonon.band_structure
    distances = [np.array(d) for d in result.distances]
    frequencies = [np.array(f) for f in result.frequencies]

    labels, positions = [labels_phonopy[0]], [distances[0][0]]
    label_iter = iter(labels_phonopy[1:])
    for i, connected in enumerate(connections):
        end_label = next(label_iter)
        if connected or i == len(connections) - 1:
            labels.append(end_label)
        else:
            labels.append(f"{end_label}|{next(label_iter)}")
        positions.append(distances[i][-1])
    return BandStructure(
        path=bandpath.path,
        qpoints=[np.array(q) for q in result.qpoints],
        distances=distances,
        frequencies=frequencies,
        labels=labels,
        label_positions=np.array(positions),
        path_connections=connections,
    )


@contextmanager
def _counting_qpoints(phonon: Phonopy, total: int, progress: Callable[[int, int], None]):
    """Call ``progress(done, total)`` after each dynamical matrix phonopy builds in the block."""
    matrix = phonon.dynamical_matrix
    original = matrix.run
    done = [0]

    def run(*args, **kwargs):
        out = original(*args, **kwargs)
        done[0] += 1
        progress(min(done[0], total), total)
        return out

    matrix.run = run
    try:
        yield
    finally:
        del matrix.run


@dataclass
class DOS:
    """Phonon density of states per primitive cell.

    Attributes
    ----------
    frequency_points : ndarray, shape (n_f,), THz
    total_dos : ndarray, shape (n_f,), states/THz
        Integrates to 3 * n_prim.
    projected_dos : ndarray or None, shape (n_prim, n_f), states/THz
        Per primitive atom (sums to ``total_dos``); symmetry-equivalent atoms
        share their orbit's DOS equally.
    symbols : list of str
        Chemical symbols of the primitive atoms.
    pdos_by_element : dict of str -> ndarray, shape (n_f,), states/THz
    """

    frequency_points: np.ndarray
    total_dos: np.ndarray
    projected_dos: np.ndarray | None
    symbols: list
    pdos_by_element: dict = field(default_factory=dict)


def _orbit_projections(mesh, atom_orbit: np.ndarray) -> np.ndarray:
    """Squared eigenvector amplitudes summed over each orbit of equivalent atoms.

    Returns
    -------
    ndarray, shape (n_q, n_band, n_orbits)
    """
    eigenvectors = mesh.eigenvectors                              # (n_q, 3 n_prim, n_band)
    n_q, n_comp, n_band = eigenvectors.shape
    per_atom = (np.abs(eigenvectors.reshape(n_q, n_comp // 3, 3, n_band)) ** 2).sum(axis=2)
    n_orbits = atom_orbit.max() + 1
    out = np.zeros((n_q, n_orbits, n_band))
    np.add.at(out, (slice(None), atom_orbit), per_atom)
    return out.transpose(0, 2, 1)


def dos(phonon: Phonopy, mesh=DEFAULT_MESH, projected: bool = True, freq_pitch: float = 0.05) -> DOS:
    """Total (and projected) phonon DOS with the tetrahedron method, on the irreducible q-points.

    Phonopy's own projected DOS needs every q-point of the mesh, because a
    projection on one atom is not carried over a star of q-points. A sum
    over a whole orbit of symmetry-equivalent atoms is, so the projections
    are summed per orbit on the irreducible q-points and shared equally by
    the orbit's atoms. With the tetrahedra symmetrised over the star,
    the total DOS and every orbit's (hence every element's) DOS equal
    phonopy's full-mesh tetrahedron results to round-off, at a fraction of
    the cost. Per atom, equivalent atoms get identical PDOS, where phonopy's
    full-mesh PDOS splits them slightly (its tetrahedra have one fixed
    orientation).

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    mesh : 3 ints or float
        Sampling mesh, or a length (Å) from which phonopy derives one.
    projected : bool
        Also compute the DOS projected on primitive atoms (the mesh then
        keeps eigenvectors; the total DOS is the sum of the projections).
    freq_pitch : float, THz
        Spacing of the frequency points.  Phonopy's own default (200 points
        over the whole range) is too coarse for the DOS to integrate to
        3 * n_prim with the trapezoidal rule (errors of ~1 %).

    Returns
    -------
    DOS
    """
    _require_force_constants(phonon)
    if not freq_pitch > 0:
        raise ValueError(f"freq_pitch must be positive (THz), got {freq_pitch!r}")
    phonon.run_mesh(mesh, with_eigenvectors=projected, is_gamma_center=True)
    q_mesh = phonon.mesh
    area = TotalDos(q_mesh, use_tetrahedron_method=True)     # phonopy's choice of frequency points
    area.set_draw_area(freq_pitch=freq_pitch)
    frequency_points = np.array(area.frequency_points)
    symbols = list(phonon.primitive.symbols)
    if projected:
        _, atom_orbit = np.unique(phonon.primitive_symmetry.get_map_atoms(), return_inverse=True)
        projections = _orbit_projections(q_mesh, atom_orbit)[None]
    else:
        projections = None
    density = TetrahedronDOSAccumulator(
        q_mesh.frequencies, q_mesh.bz_grid, mode_property=projections,
        ir_grid_points=q_mesh.ir_grid_points, ir_grid_weights=q_mesh.weights,
        ir_grid_map=q_mesh.grid_mapping_table, sampling_points=frequency_points,
        symmetrize_tetrahedra=True,
    ).result.density[0]                                              # (n_f, n_orbits or 1)
    pdos, by_element = None, {}
    if projected:
        orbit_size = np.bincount(atom_orbit)
        pdos = density.T[atom_orbit] / orbit_size[atom_orbit, None]
        total_dos = density.sum(axis=1)
        for element in dict.fromkeys(symbols):
            mask = np.array([s == element for s in symbols])
            by_element[element] = pdos[mask].sum(axis=0)
    else:
        total_dos = density[:, 0]
    return DOS(
        frequency_points=frequency_points,
        total_dos=total_dos,
        projected_dos=pdos,
        symbols=symbols,
        pdos_by_element=by_element,
    )


@dataclass
class ThermalProperties:
    """Harmonic thermal properties per mole of primitive cells.

    Attributes
    ----------
    temperatures : ndarray, shape (n_T,), K
    free_energy : ndarray, shape (n_T,), kJ/mol
    entropy : ndarray, shape (n_T,), J/K/mol
    heat_capacity : ndarray, shape (n_T,), J/K/mol (constant volume)
    n_atoms : int
        Atoms in the primitive cell (high-T limit of heat_capacity is 3 * n_atoms * R).
    """

    temperatures: np.ndarray
    free_energy: np.ndarray
    entropy: np.ndarray
    heat_capacity: np.ndarray
    n_atoms: int


def thermal_properties(
    phonon: Phonopy, t_min: float = 0, t_max: float = 1000, t_step: float = 10, mesh=DEFAULT_MESH
) -> ThermalProperties:
    """Helmholtz free energy, entropy and heat capacity from mesh sampling.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    t_min, t_max, t_step : float, K
        Temperature grid (``t_max`` included).
    mesh : 3 ints or float
        Sampling mesh or length (Å).

    Returns
    -------
    ThermalProperties
    """
    _require_force_constants(phonon)
    if t_step <= 0 or t_min < 0 or t_max < t_min:
        raise ValueError(f"invalid temperature range t_min={t_min}, t_max={t_max}, t_step={t_step}")
    phonon.run_mesh(mesh, is_gamma_center=True)
    # Exact force constants put the Γ acoustic modes at ~1e-8 THz instead of 0;
    # counted, their ln(hν/kT) terms would bias the free energy (2e-2 eV/cell at 1000 K).
    tp = phonon.run_thermal_properties(t_min=t_min, t_max=t_max, t_step=t_step,
                                       exclude_gamma_acoustic=True)
    return ThermalProperties(
        temperatures=np.array(tp.temperatures),
        free_energy=np.array(tp.free_energy),
        entropy=np.array(tp.entropy),
        heat_capacity=np.array(tp.heat_capacity),
        n_atoms=len(phonon.primitive),
    )


@dataclass
class FrequencySummary:
    """Extremes of the phonon spectrum over a band path and a mesh.

    Attributes
    ----------
    min_frequency, max_frequency : float, THz
    has_imaginary : bool
        True when some frequency is below ``-imaginary_tolerance``.
    lowest_qpoint : ndarray, shape (3,)
        Reduced q-point of ``min_frequency``.
    imaginary_tolerance : float, THz
    """

    min_frequency: float
    max_frequency: float
    has_imaginary: bool
    lowest_qpoint: np.ndarray
    imaginary_tolerance: float


def frequency_summary(
    phonon: Phonopy, band: BandStructure | None = None, mesh=(8, 8, 8), imaginary_tolerance: float = 0.01
) -> FrequencySummary:
    """Minimum/maximum frequencies and detection of imaginary modes.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    band : BandStructure, optional
        Band structure to include; computed with :func:`band_structure` when None.
    mesh : 3 ints or float
        Γ-centred mesh also scanned.
    imaginary_tolerance : float, THz
        Frequencies below ``-imaginary_tolerance`` count as imaginary.

    Returns
    -------
    FrequencySummary
    """
    _require_force_constants(phonon)
    if imaginary_tolerance < 0:
        raise ValueError(f"imaginary_tolerance must be >= 0, got {imaginary_tolerance}")
    if band is None:
        band = band_structure(phonon)
    result = phonon.run_mesh(mesh, is_gamma_center=True)
    qpoints = np.concatenate([np.concatenate(band.qpoints), np.array(result.qpoints)])
    freqs = np.concatenate([band.all_frequencies, np.array(result.frequencies)])
    lowest = np.unravel_index(np.argmin(freqs), freqs.shape)
    fmin = float(freqs[lowest])
    return FrequencySummary(
        min_frequency=fmin,
        max_frequency=float(freqs.max()),
        has_imaginary=fmin < -imaginary_tolerance,
        lowest_qpoint=qpoints[lowest[0]],
        imaginary_tolerance=imaginary_tolerance,
    )
