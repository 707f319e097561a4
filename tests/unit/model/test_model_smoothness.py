"""The energy is C² in positions, also where neighbours cross the cutoff r_c.

Geometries are rebuilt (fresh neighbour list) at every point, exactly as the
calculator does, so edges really appear/disappear at r_c.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

DIRECTION = np.array([0.48, -0.6, 0.64])  # not along an axis: all Hessian components matter
DIRECTION = DIRECTION / np.linalg.norm(DIRECTION)
ORIGIN = np.array([3.0, -7.0, 21.0])


def _dimer(r, symbols="SiC", cell=None):
    atoms = Atoms(symbols, positions=[ORIGIN, ORIGIN + r * DIRECTION])
    if cell is not None:  # big box, non-periodic
        atoms.set_cell(cell)
    return atoms


def _bond_quantities(model, atoms, helpers, atom=1, direction=DIRECTION):
    """E, −dE/ds and d²E/ds² for moving ``atom`` along ``direction``."""
    res = helpers.evaluate(model, atoms, stress=False)
    hess = helpers.model_hessian(model, atoms)
    n = len(atoms)
    block = hess.reshape(n, 3, n, 3)[atom, :, atom, :]
    return np.array([res["energy"], res["forces"][atom] @ direction, direction @ block @ direction])


def _power(values_small, values_large, ratio):
    """Exponent p in |v| ∝ δ^p from two step sizes δ_large / δ_small = ratio."""
    return np.log(np.abs(values_large) / np.abs(values_small)) / np.log(ratio)


@pytest.mark.parametrize("symbols", ["SiC", "SiSi", "CC"])
def test_dimer_vanishes_c2_at_cutoff(symbols, model, helpers, record_max):
    rc = model.cutoff
    far = _bond_quantities(model, _dimer(rc + 1.0, symbols), helpers)
    assert far[1] == 0.0 and far[2] == 0.0, "no interaction expected beyond r_c"
    near = _bond_quantities(model, _dimer(rc - 0.3, symbols), helpers)
    assert abs(near[1]) > 1e-4 and abs(near[2]) > 1e-3, "dimer interaction trivially small"
    deltas = np.array([1e-3, 1e-4])
    inside = np.array([_bond_quantities(model, _dimer(rc - d, symbols), helpers) for d in deltas])
    inside[:, 0] -= far[0]
    # E − E(∞) ∝ δ³, F ∝ δ², d²E/dr² ∝ δ (so all three → 0 at r_c from inside)
    powers = _power(inside[1], inside[0], deltas[0] / deltas[1])
    np.testing.assert_allclose(powers, [3, 2, 1], atol=0.1)
    record_max("dimer: |d2E/dr2| at r_c - 1e-4 A (eV/A^2)", abs(inside[1, 2]))
    # from outside, everything is exactly the separated-atom value
    for d in (1e-12, 1e-6, 1e-3):
        out = _bond_quantities(model, _dimer(rc + d, symbols), helpers)
        assert out[0] == far[0] and out[1] == 0.0 and out[2] == 0.0


def test_dimer_scan_through_cutoff_is_continuous(model, helpers, record_max):
    """Scan r through r_c: E, F, d²E/dr² have no jumps; F is the derivative of E."""
    rc = model.cutoff
    rs = np.linspace(rc - 0.25, rc + 0.05, 31)
    q = np.array([_bond_quantities(model, _dimer(r), helpers) for r in rs])
    step = rs[1] - rs[0]
    # E and F: mean-value bounds with the neighbouring derivative (no jumps)
    assert np.all(np.abs(np.diff(q[:, 0])) <= step * np.abs(q[:, 1]).max() * 1.01)
    assert np.all(np.abs(np.diff(q[:, 1])) <= step * np.abs(q[:, 2]).max() * 1.01)
    # trapezoid integral of -dF/dr reproduces the energy differences along the scan
    e_from_f = -np.concatenate([[0], np.cumsum(0.5 * (q[1:, 1] + q[:-1, 1]) * step)])
    err = np.abs((q[:, 0] - q[0, 0]) - e_from_f).max() / np.abs(q[:, 0] - q[0, 0]).max()
    assert record_max("dimer scan: E vs integral of F, relative", err) < 2e-3
    assert np.all(q[rs >= rc, 1:] == 0.0)


def _trimer(s):
    """Si and C 2 Å apart; a third (Si) atom moved along x so that its distance to
    atom 0 crosses r_c at s = s_c, while it stays inside the cutoff of atom 1."""
    return Atoms("SiCSi", positions=[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [s, 1.2, 0.3]])


def test_trimer_second_derivative_continuous_across_cutoff(model, helpers, record_max):
    rc = model.cutoff
    s_c = float(np.sqrt(rc**2 - 1.2**2 - 0.3**2))
    assert np.linalg.norm(_trimer(s_c).positions[2] - [2.0, 0, 0]) < rc - 1.0
    x = np.array([1.0, 0.0, 0.0])

    def q(s):
        return _bond_quantities(model, _trimer(s), helpers, atom=2, direction=x)

    jumps = []
    for d in (1e-3, 1e-4):
        lo, hi = q(s_c - d), q(s_c + d)
        assert helpers.energy(model, _trimer(s_c - d)) != helpers.energy(model, _trimer(s_c + d))
        jumps.append(np.abs(hi - lo))
    jumps = np.array(jumps)
    assert np.all(jumps[1] > 0)
    # for a C² function, differences across s_c over ±δ shrink ∝ δ (a jump in E,
    # F or d²E/ds² would leave them finite)
    np.testing.assert_allclose(_power(jumps[1], jumps[0], 10.0), [1, 1, 1], atol=0.1)
    record_max("trimer: |jump of d2E/ds2| across r_c over +-1e-4 A (eV/A^2)", jumps[1, 2])
    # the whole Hessian (all couplings, incl. two-hop ones via atom 1) is continuous too
    h_jumps = [np.abs(helpers.model_hessian(model, _trimer(s_c + d))
                      - helpers.model_hessian(model, _trimer(s_c - d))).max() for d in (1e-3, 1e-4)]
    assert _power(h_jumps[1], h_jumps[0], 10.0) == pytest.approx(1.0, abs=0.1)


def test_dimer_in_big_box_equals_no_cell(model, helpers):
    rc = model.cutoff
    for r in (rc - 0.2, rc - 1e-4, rc + 1e-4):
        a = _bond_quantities(model, _dimer(r), helpers)
        b = _bond_quantities(model, _dimer(r, cell=[40.0, 40.0, 40.0]), helpers)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
