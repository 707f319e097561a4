"""Band structure, DOS, thermal properties and frequency summary give physically sane values."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones

from ase_fcnet.phonons import band_structure, dos, frequency_summary, phonopy_from_atoms, thermal_properties

R_GAS = 8.314462618  # J/K/mol
PLANCK = 6.62607015e-34  # J s
AVOGADRO = 6.02214076e23  # 1/mol


def _cartesian(phonon, q):
    """Reduced q (primitive reciprocal basis) to Cartesian 1/Å without 2π."""
    return np.asarray(q) @ np.linalg.inv(np.array(phonon.primitive.cell)).T


@pytest.fixture(scope="module")
def si_band(si_phonon):
    return band_structure(si_phonon, npoints=21)


def test_band_path_labels_and_positions(si_band):
    assert si_band.path == "GXWKGLUWLK,UX"
    assert si_band.labels == ["Γ", "X", "W", "K", "Γ", "L", "U", "W", "L", "K|U", "X"]
    assert len(si_band.label_positions) == len(si_band.labels)
    assert np.all(np.diff(si_band.label_positions) > 0)
    assert len(si_band.distances) == len(si_band.frequencies) == 10
    assert si_band.path_connections == [True] * 8 + [False, False]
    for dist, freq in zip(si_band.distances, si_band.frequencies):
        assert dist.shape == (21,) and freq.shape == (21, 6)


@pytest.mark.parametrize("primitive_input", [False, True], ids=["conventional-input", "primitive-input"])
def test_special_points_are_fcc_points_in_cartesian_space(sw_calc, primitive_input):
    """Whatever primitive basis phonopy picks, the path must visit the true fcc X and L points."""
    a = 5.431
    atoms = bulk("Si", "diamond", a=a, cubic=not primitive_input)
    phonon = phonopy_from_atoms(atoms, sw_calc, supercell_matrix=2 if not primitive_input else 3)
    band = band_structure(phonon, npoints=5)
    segment_starts = [name for piece in band.path.split(",") for name in piece[:-1]]
    start_points = {}
    for q, name in zip(band.qpoints, segment_starts):
        start_points.setdefault(name, q[0])
    assert set(start_points) >= {"G", "X", "L", "W", "K", "U"}, band.path
    assert np.linalg.norm(_cartesian(phonon, start_points["G"])) < 1e-12
    assert np.linalg.norm(_cartesian(phonon, start_points["X"])) == pytest.approx(1.0 / a, rel=1e-10)
    assert np.linalg.norm(_cartesian(phonon, start_points["L"])) == pytest.approx(np.sqrt(3) / (2 * a), rel=1e-10)
    assert np.linalg.norm(_cartesian(phonon, start_points["W"])) == pytest.approx(np.sqrt(5) / (2 * a), rel=1e-10)


def test_band_gamma_acoustic_and_degeneracies(si_phonon, si_band):
    gamma = si_band.frequencies[0][0]
    assert np.abs(gamma[:3]).max() < 1e-4
    # diamond: triply degenerate optical mode at Gamma
    assert np.ptp(gamma[3:]) < 1e-6 and gamma[3] > 10.0
    # the band data agree with phonopy's own evaluation at the same q-point
    q = si_band.qpoints[0][-1]
    np.testing.assert_allclose(si_band.frequencies[0][-1], si_phonon.run_qpoints([q]).frequencies[0], atol=1e-10)
    # degenerate TA branch along Gamma-X (fourfold axis)
    np.testing.assert_allclose(si_band.frequencies[0][:, 0], si_band.frequencies[0][:, 1], atol=1e-6)


def test_npoints_validated(si_phonon):
    with pytest.raises(ValueError, match="npoints"):
        band_structure(si_phonon, npoints=1)


def test_dos_integrates_to_three_n_and_pdos_sums(sic_phonon):
    result = dos(sic_phonon, mesh=(10, 10, 10))
    n_prim = len(sic_phonon.primitive)
    assert np.trapezoid(result.total_dos, result.frequency_points) == pytest.approx(3 * n_prim, rel=0.01)
    assert result.projected_dos.shape == (n_prim, len(result.frequency_points))
    points, total, by_element, _ = _phonopy_full_mesh_pdos(sic_phonon, (10, 10, 10))
    np.testing.assert_allclose(points, result.frequency_points, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.total_dos, total, rtol=0, atol=1e-8 * total.max())
    for element, pdos in by_element.items():
        np.testing.assert_allclose(result.pdos_by_element[element], pdos, rtol=0, atol=1e-8 * total.max())
    assert set(result.pdos_by_element) == {"Si", "C"}
    for element, pdos in result.pdos_by_element.items():
        assert np.trapezoid(pdos, result.frequency_points) == pytest.approx(3.0, rel=0.01), element
    mean = {
        el: np.trapezoid(p * result.frequency_points, result.frequency_points) / np.trapezoid(p, result.frequency_points)
        for el, p in result.pdos_by_element.items()
    }
    # the light C atoms carry the optical modes, the heavy Si atoms the acoustic ones
    assert mean["C"] > 1.5 * mean["Si"]


def _phonopy_full_mesh_pdos(phonon, mesh):
    """Phonopy's own route: every q-point of the mesh, per-atom tetrahedron PDOS.

    Returns frequency points (THz), total DOS, DOS by element and per atom (states/THz).
    """
    phonon.run_mesh(mesh, is_mesh_symmetry=False, with_eigenvectors=True, is_gamma_center=True)
    proj = phonon.run_projected_dos(freq_pitch=0.05)
    per_atom = np.array(proj.projected_dos)
    symbols = np.array(phonon.primitive.symbols)
    by_element = {el: per_atom[symbols == el].sum(axis=0) for el in set(symbols)}
    return np.array(proj.frequency_points), per_atom.sum(axis=0), by_element, per_atom


def test_dos_on_irreducible_points_equals_phonopys_full_mesh_for_a_hexagonal_crystal(tersoff_calc):
    """Wurtzite SiC: symmetrised tetrahedra on the irreducible q-points give phonopy's full-mesh
    total and element DOS; equivalent atoms get one PDOS. Phonopy's own irreducible-mesh
    total DOS (fixed tetrahedron orientation) differs here, so the check has teeth."""
    atoms = bulk("SiC", "wurtzite", a=3.08, c=5.04)
    phonon = phonopy_from_atoms(atoms, tersoff_calc, supercell_matrix=[3, 3, 2])
    mesh = (8, 8, 6)
    result = dos(phonon, mesh=mesh)
    points, total, by_element, per_atom = _phonopy_full_mesh_pdos(phonon, mesh)
    scale = total.max()
    np.testing.assert_allclose(result.frequency_points, points, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.total_dos, total, rtol=0, atol=1e-8 * scale)
    for element in ("Si", "C"):
        np.testing.assert_allclose(result.pdos_by_element[element], by_element[element], rtol=0, atol=1e-8 * scale)
    orbit = np.array(phonon.primitive_symmetry.get_map_atoms())
    for rep in np.unique(orbit):
        members = np.flatnonzero(orbit == rep)
        assert len(members) == 2
        np.testing.assert_allclose(result.projected_dos[members], per_atom[members].mean(axis=0)[None].repeat(2, 0),
                                   rtol=0, atol=1e-8 * scale)
    phonon.run_mesh(mesh, is_gamma_center=True)
    fixed_orientation = np.array(phonon.run_total_dos(freq_pitch=0.05).dos)
    assert np.abs(fixed_orientation - total).max() > 1e-3 * scale


def test_dos_without_projection(si_phonon):
    result = dos(si_phonon, mesh=(10, 10, 10), projected=False)
    assert result.projected_dos is None and result.pdos_by_element == {}
    assert np.trapezoid(result.total_dos, result.frequency_points) == pytest.approx(6.0, rel=0.01)


def test_thermal_limits_and_zero_point_energy(si_phonon):
    mesh = (10, 10, 10)
    thermal = thermal_properties(si_phonon, t_min=0, t_max=4000, t_step=50, mesh=mesh)
    n = len(si_phonon.primitive)
    assert thermal.n_atoms == n == 2
    assert thermal.temperatures[0] == 0 and thermal.temperatures[-1] == 4000
    assert thermal.heat_capacity[0] == pytest.approx(0.0, abs=1e-8)
    assert thermal.entropy[0] == pytest.approx(0.0, abs=1e-8)
    assert np.all(np.diff(thermal.heat_capacity) > 0)
    # Dulong-Petit: Cv = 3nR (1 - x^2/12 + ...), x = h nu_max / kT ~ 0.2 at 4000 K
    assert thermal.heat_capacity[-1] == pytest.approx(3 * n * R_GAS, rel=5e-3)
    assert thermal.heat_capacity[-1] < 3 * n * R_GAS
    # F(T=0) is the zero-point energy sum_q,s h nu / 2 per mole of primitive cells
    mesh_result = si_phonon.run_mesh(mesh, is_gamma_center=True)
    freqs = np.where(mesh_result.frequencies > 0, mesh_result.frequencies, 0.0) * 1e12
    weights = mesh_result.weights / mesh_result.weights.sum()
    zpe = AVOGADRO * PLANCK * (weights[:, None] * freqs).sum() / 2 / 1000.0
    assert thermal.free_energy[0] == pytest.approx(zpe, rel=1e-6)
    # S = -dF/dT (F in kJ/mol, S in J/K/mol)
    dfdt = np.gradient(thermal.free_energy * 1000.0, thermal.temperatures)
    np.testing.assert_allclose(-dfdt[5:-5], thermal.entropy[5:-5], rtol=5e-3)


def test_thermal_range_validated(si_phonon):
    with pytest.raises(ValueError, match="temperature range"):
        thermal_properties(si_phonon, t_min=100, t_max=10)


def test_frequency_summary_stable_crystal(si_phonon, si_band):
    summary = frequency_summary(si_phonon, band=si_band, mesh=(6, 6, 6))
    assert not summary.has_imaginary
    assert -1e-3 < summary.min_frequency <= 1e-6
    assert summary.max_frequency == pytest.approx(si_band.all_frequencies.max(), rel=1e-3)


def test_frequency_summary_detects_imaginary_modes():
    # fcc Lennard-Jones stretched so that the nearest-neighbour distance (4.24 Å = 1.248 sigma)
    # lies beyond the inflection point of the pair potential (1.244 sigma): the transverse
    # branches become imaginary while the longitudinal ones stay real
    calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=10.0, smooth=True)
    phonon = phonopy_from_atoms(bulk("Ar", "fcc", a=6.0, cubic=True), calc, supercell_matrix=2, method="fd")
    summary = frequency_summary(phonon, mesh=(4, 4, 4))
    assert summary.has_imaginary
    assert summary.min_frequency < -0.1 and summary.max_frequency > 0.1
    lowest = phonon.run_qpoints([summary.lowest_qpoint]).frequencies[0].min()
    assert lowest == pytest.approx(summary.min_frequency, abs=1e-9)
    assert np.linalg.norm(summary.lowest_qpoint) > 0
    relaxed = frequency_summary(phonon, mesh=(4, 4, 4), imaginary_tolerance=-summary.min_frequency + 0.01)
    assert not relaxed.has_imaginary and relaxed.min_frequency == summary.min_frequency


def test_dos_pitch_validated(si_phonon):
    with pytest.raises(ValueError, match="freq_pitch"):
        dos(si_phonon, mesh=(4, 4, 4), freq_pitch=0.0)


def test_band_progress_counts_every_qpoint_and_changes_nothing(si_phonon, si_band):
    calls = []
    band = band_structure(si_phonon, npoints=21, progress=lambda done, total: calls.append((done, total)))
    n_q = sum(len(q) for q in band.qpoints)
    assert calls[-1] == (n_q, n_q) and len(calls) == n_q
    np.testing.assert_array_equal(band.all_frequencies, si_band.all_frequencies)
    assert "run" not in vars(si_phonon.dynamical_matrix)  # the counting wrapper is gone
