"""Cutoff envelope and radial basis (ase_fcnet.nn.radial)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ase_fcnet.nn import BesselBasis, PolynomialEnvelope

R_MAX = 3.7


def _derivatives(fn, r):
    """u, u', u'' of a pointwise function by autograd (float64)."""
    r = torch.as_tensor(r, dtype=torch.float64).clone().requires_grad_(True)
    u = fn(r)
    (du,) = torch.autograd.grad(u.sum(), r, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), r)
    return u.detach().numpy(), du.detach().numpy(), d2u.numpy()


@pytest.mark.parametrize("p", [2, 3, 6, 9])
def test_envelope_is_c2_at_cutoff(p):
    """u, u', u'' → 0 at r_c from below as δ³, δ², δ: C², third derivative non-zero."""
    env = PolynomialEnvelope(R_MAX, p)
    deltas = np.array([1e-3, 1e-4])
    values = _derivatives(env, R_MAX - deltas)
    for k, val in enumerate(values):
        assert np.all(np.abs(val) > 0), "envelope derivatives vanish identically near r_c"
        exponent = np.log(abs(val[1] / val[0])) / np.log(deltas[1] / deltas[0])
        assert exponent == pytest.approx(3 - k, abs=0.05), f"d^{k}u/dr^{k} ~ δ^{exponent:.3f}"
    _, _, d2u_near = _derivatives(env, [R_MAX - 1e-6])
    _, _, d2u_inside = _derivatives(env, np.linspace(0, R_MAX, 500, endpoint=False))
    assert abs(d2u_near[0]) < 1e-4 * np.abs(d2u_inside).max()


@pytest.mark.parametrize("p", [2, 6])
def test_envelope_exactly_zero_beyond_cutoff(p):
    env = PolynomialEnvelope(R_MAX, p)
    r = np.array([R_MAX, R_MAX * (1 + 1e-12), R_MAX + 0.1, 2 * R_MAX, 10 * R_MAX])
    u, du, d2u = _derivatives(env, r)
    assert np.all(u == 0.0) and np.all(du == 0.0) and np.all(d2u == 0.0)


def test_envelope_inside_values():
    env = PolynomialEnvelope(R_MAX, 6)
    r = np.linspace(0.0, R_MAX * 0.999, 200)
    u, du, _ = _derivatives(env, r)
    assert u[0] == pytest.approx(1.0, abs=1e-15) and du[0] == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.diff(u) < 0) and np.all((u > 0) & (u <= 1))
    x = r / R_MAX
    ref = 1 - 28 * x**6 + 48 * x**7 - 21 * x**8  # NequIP p = 6
    np.testing.assert_allclose(u, ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("p", [0, 1])
def test_envelope_order_below_two_rejected(p):
    with pytest.raises(ValueError, match="p must be >= 2"):
        PolynomialEnvelope(R_MAX, p)


def test_bessel_basis_values_and_shape():
    basis = BesselBasis(R_MAX, num_basis=5)
    r = torch.tensor([0.5, 1.7, 3.2, R_MAX], dtype=torch.float64)
    out = basis(r)
    assert out.shape == (4, 5) and out.dtype == torch.float64
    n = np.arange(1, 6)
    ref = math.sqrt(2 / R_MAX) * np.sin(n * np.pi * r.numpy()[:, None] / R_MAX) / r.numpy()[:, None]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out[-1].numpy(), 0.0, atol=1e-14)  # sin(nπ) = 0 at r_c


def test_bessel_basis_follows_module_dtype():
    basis = BesselBasis(R_MAX, num_basis=4).to(torch.float32)
    out = basis(torch.tensor([1.0, 2.0], dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), BesselBasis(R_MAX, 4)(torch.tensor([1.0, 2.0],
                               dtype=torch.float64)).numpy(), rtol=1e-6)
