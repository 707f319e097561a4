"""Analytic force constants versus phonopy's finite displacements, matscipy calculators end to end.

Both routes use the same calculator and the same supercell, so the only
difference is the finite-difference error of the displacement route.  Phonopy
uses +-u pairs or symmetry-equivalent -u, i.e. central differences, so that
error is O(d^2 * phi'''' / phi''): with d = 0.01 Å it is ~1e-4 relative, i.e.
~1e-3 THz on 15-30 THz modes.  A 0.02 THz bound is tight enough to catch any
bookkeeping error (a wrong atom, direction or sign moves frequencies by THz),
and the d^2 scaling itself is checked below.
"""

import numpy as np
import pytest
from ase.build import bulk
from matscipy.calculators.manybody import Manybody
from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
    Stillinger_Weber_PRB_31_5262_Si,
    StillingerWeber,
)
from matscipy.calculators.manybody.explicit_forms.tersoff_brenner import (
    Erhart_PRB_71_035211_SiC,
    Tersoff_PRB_39_5566_Si_C,
    TersoffBrenner,
)
from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

from ase_fcnet.phonons import band_structure, force_constants_full_hessian, phonopy_from_atoms, phonopy_to_atoms

FD_TOLERANCE_THZ = 0.02

pytestmark = pytest.mark.filterwarnings("ignore:'where' used without 'out':UserWarning")


def _strained_sic():
    atoms = bulk("SiC", "zincblende", a=4.36, cubic=True)
    atoms.set_cell(atoms.cell[:] @ np.diag([1.0, 1.0, 1.03]), scale_atoms=True)  # tetragonal, I-4m2
    return atoms


def _rattled_sic():
    atoms = bulk("SiC", "zincblende", a=4.36)
    atoms.positions += np.random.default_rng(11).normal(scale=0.03, size=atoms.positions.shape)
    return atoms


CASES = {
    "Si-diamond-SW": (lambda: bulk("Si", "diamond", a=5.431, cubic=True), Stillinger_Weber_PRB_31_5262_Si, 2),
    "SiC-zincblende-Erhart": (lambda: bulk("SiC", "zincblende", a=4.36, cubic=True), Erhart_PRB_71_035211_SiC, 2),
    "SiC-zincblende-Tersoff": (lambda: bulk("SiC", "zincblende", a=4.32, cubic=True), Tersoff_PRB_39_5566_Si_C, 2),
    "SiC-wurtzite-Erhart": (lambda: bulk("SiC", "wurtzite", a=3.08, c=5.04), Erhart_PRB_71_035211_SiC, (3, 3, 2)),
    "SiC-strained-Erhart": (_strained_sic, Erhart_PRB_71_035211_SiC, 2),
    "SiC-rattled-Erhart": (_rattled_sic, Erhart_PRB_71_035211_SiC, 3),
}


def _calculator(params):
    if params is Stillinger_Weber_PRB_31_5262_Si:
        return Manybody(**StillingerWeber(params))
    return Manybody(**TersoffBrenner(params))


def _commensurate_qpoints(phonon):
    smat = np.rint(np.linalg.inv(phonon.primitive.primitive_matrix)).astype(int)
    return get_commensurate_points(smat)


@pytest.fixture(scope="module", params=sorted(CASES))
def routes(request):
    build, params, matrix = CASES[request.param]
    atoms = build()
    calc = _calculator(params)
    analytic = phonopy_from_atoms(atoms, calc, supercell_matrix=matrix, method="analytic")
    fd = phonopy_from_atoms(atoms, calc, supercell_matrix=matrix, method="fd")
    return request.param, analytic, fd, calc


def test_same_cells_in_both_routes(routes):
    _, analytic, fd, _ = routes
    np.testing.assert_allclose(analytic.supercell.positions, fd.supercell.positions, atol=1e-12)
    np.testing.assert_array_equal(analytic.primitive.p2s_map, fd.primitive.p2s_map)


def test_analytic_equals_exact_hessian(routes):
    name, analytic, _, calc = routes
    hessian = force_constants_full_hessian(phonopy_to_atoms(analytic.supercell), calc)
    err = np.abs(analytic.force_constants - hessian[analytic.primitive.p2s_map]).max()
    assert err < 1e-10 * np.abs(hessian).max(), name


def test_frequencies_at_commensurate_qpoints(routes):
    name, analytic, fd, _ = routes
    qpoints = _commensurate_qpoints(analytic)
    assert len(qpoints) == len(analytic.supercell) // len(analytic.primitive)
    fa = analytic.run_qpoints(qpoints).frequencies
    ff = fd.run_qpoints(qpoints).frequencies
    assert np.abs(fa - ff).max() < FD_TOLERANCE_THZ, name
    assert fa.max() > 10.0


def test_frequencies_along_band_path(routes):
    name, analytic, fd, _ = routes
    band_a = band_structure(analytic, npoints=15)
    band_f = band_structure(fd, npoints=15)
    assert band_a.labels == band_f.labels
    assert np.abs(band_a.all_frequencies - band_f.all_frequencies).max() < FD_TOLERANCE_THZ, name


def test_fd_route_uses_more_supercells_for_low_symmetry(routes):
    name, analytic, fd, _ = routes
    n_analytic = len(analytic.dataset["first_atoms"])
    n_fd = len(fd.dataset["first_atoms"])
    assert n_analytic <= n_fd <= 2 * n_analytic, name
    if name == "SiC-rattled-Erhart":
        # no symmetry left: 3 Cartesian directions per atom, +-u pairs for the finite differences
        assert (n_analytic, n_fd) == (6, 12)


def test_finite_displacement_error_scales_as_d_squared():
    """The analytic-minus-FD discrepancy is the O(d^2) truncation error of the central difference."""
    atoms = bulk("SiC", "zincblende", a=4.36, cubic=True)
    calc = _calculator(Erhart_PRB_71_035211_SiC)
    analytic = phonopy_from_atoms(atoms, calc, supercell_matrix=2)
    q = _commensurate_qpoints(analytic)
    reference = analytic.run_qpoints(q).frequencies
    errors = []
    for d in (0.02, 0.04):
        fd = phonopy_from_atoms(atoms, calc, supercell_matrix=2, method="fd", displacement_distance=d)
        errors.append(np.abs(fd.run_qpoints(q).frequencies - reference).max())
    assert errors[0] > 1e-6
    assert errors[1] / errors[0] == pytest.approx(4.0, rel=0.15)
