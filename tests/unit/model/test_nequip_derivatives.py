"""The nequip architecture's derivatives: finite differences, symmetry, sum rule, smoothness.

A small seeded model (both cutoff functions; also with random per-species
adapters) and the bundled SevenNet-0 and SevenNet-l3i5 (float64): forces equal
−∂E/∂r by central differences, Hessian rows equal central differences of the
forces, the Hessian is symmetric and obeys the acoustic sum rule, and energies
are rotation invariant. Smoothness at the switching radii: with the polynomial
envelope, second derivatives are continuous at r_c; with the XPLOR switch
(SevenNet-0) they jump at r_on and r_c.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import energy_forces_stress, hessian, load_model
from ase_fcnet.model.nequip import NequIPConfig
from ase_fcnet.model.registry import build
from ase_fcnet.pretrained import model_file

SMALL = dict(species=("Na", "Cl"), cutoff=4.0, node_irreps=("8x0e", "8x0e+4x1e+4x2e", "8x0e"),
             num_basis=6, radial_hidden=(16,), denominators=(3.0, 3.0), cutoff_on=3.0)


def small_model(cutoff_function: str, adapters: bool = False):
    """Seeded small model; with ``adapters``, per-species adapters with random (nonzero) rows."""
    model = build(NequIPConfig(**SMALL, cutoff_function=cutoff_function,
                               species_adapters=adapters), seed=0)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        model.energy_scale.fill_(50.0)
        model.reference_energies.copy_(torch.tensor([-1.3, -2.1], dtype=torch.float64))
        for name, p in model.named_parameters():
            if name.startswith("adapters."):
                p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def nacl_cell():
    atoms = bulk("NaCl", "rocksalt", a=5.0, cubic=True)
    atoms.rattle(0.05, seed=3)
    atoms.cell = atoms.cell @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, -0.01], [0.03, 0.0, 1.0]])
    return atoms


def energy_forces(model, atoms):
    out = energy_forces_stress(model, atoms_to_graph(atoms, model.cutoff, model.species))
    return float(out["energy"][0]), out["forces"].detach().numpy()


def check_derivatives(model, atoms, h=1e-4, rtol=1e-6):
    e, f = energy_forces(model, atoms)
    H = hessian(model, atoms_to_graph(atoms, model.cutoff, model.species)).detach().numpy()
    n = len(atoms)
    fd_forces, fd_rows = np.zeros(3 * n), np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[k // 3, k % 3] += h
        minus.positions[k // 3, k % 3] -= h
        (ep, fp), (em, fm) = energy_forces(model, plus), energy_forces(model, minus)
        fd_forces[k] = -(ep - em) / (2 * h)
        fd_rows[k] = -(fp - fm).ravel() / (2 * h)
    assert np.abs(f.ravel() - fd_forces).max() <= rtol * np.abs(f).max() + 1e-9
    assert np.abs(H - fd_rows).max() <= 1e3 * rtol * np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-10 * np.abs(H).max()
    asr = H.reshape(n, 3, n, 3).sum(axis=2)
    assert np.abs(asr).max() <= 1e-10 * np.abs(H).max()
    return H


@pytest.mark.parametrize("cutoff_function", ["polynomial", "xplor"])
def test_small_model_derivatives(cutoff_function):
    check_derivatives(small_model(cutoff_function), nacl_cell())


def test_small_model_with_trained_species_adapters_derivatives_and_invariance():
    """The per-species adapters (training.train_species) keep every derivative identity."""
    model, atoms = small_model("polynomial", adapters=True), nacl_cell()
    assert energy_forces(model, atoms)[0] != energy_forces(small_model("polynomial"), atoms)[0]
    check_derivatives(model, atoms)
    _check_rotation(model, atoms)


@pytest.mark.parametrize("name", ["sevennet-0", "sevennet-l3i5"])
def test_bundled_model_derivatives(name):
    model = load_model(model_file(name), dtype=torch.float64)
    atoms = bulk("NaCl", "rocksalt", a=5.6)  # 2 atoms: small Hessian, many images
    atoms.rattle(0.03, seed=1)
    H = check_derivatives(model, atoms)
    assert np.abs(H).max() > 1.0  # eV/Å²: a real, non-trivial Hessian


@pytest.mark.parametrize("cutoff_function", ["polynomial", "xplor"])
def test_rotation_invariance(cutoff_function):
    _check_rotation(small_model(cutoff_function), nacl_cell())


def _check_rotation(model, atoms):
    e0, f0 = energy_forces(model, atoms)
    rot = Rotation.random(random_state=5).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell @ rot.T, scale_atoms=True)
    e1, f1 = energy_forces(model, turned)
    assert e1 == pytest.approx(e0, rel=1e-12)
    assert np.abs(f1 - f0 @ rot.T).max() <= 1e-10 * np.abs(f0).max()


def pair_curvature(model, r: float) -> float:
    """∂²E/∂x² of a Na–Cl pair at distance r (x along the bond), eV/Å², in a large box."""
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [r, 0, 0]], cell=[20.0, 20.0, 20.0], pbc=True)
    H = hessian(model, atoms_to_graph(atoms, model.cutoff, model.species)).detach().numpy()
    return float(H[3, 3])


def jump(model, radius: float, delta: float) -> float:
    return abs(pair_curvature(model, radius + delta) - pair_curvature(model, radius - delta))


def kink(model, radius: float) -> bool:
    """Whether ∂²E/∂x² jumps at ``radius``: a jump that does not shrink with the step.

    Where the curvature is smooth, its change over ±δ shrinks 100× from δ = 1e-4
    to 1e-6 Å; across a jump it stays the size of the jump.
    """
    small, big = jump(model, radius, 1e-6), jump(model, radius, 1e-4)
    assert big > 1e-9, "no curvature change at all: the test would prove nothing"
    if small > 0.5 * big:
        return True
    assert small < 0.05 * big, (small, big)
    return False


def test_polynomial_envelope_is_c2():
    model = small_model("polynomial")
    assert not kink(model, 2.5)
    assert not kink(model, model.cutoff - 1e-3)


def test_xplor_switch_is_only_c1():
    """Force constants jump where the switch starts (r_on); forces do not."""
    model = small_model("xplor")
    assert not kink(model, 2.5)
    assert kink(model, SMALL["cutoff_on"])


def test_sevennet_smoothness_as_documented():
    """SevenNet-0 (XPLOR, r_on 4.5 Å, r_c 5 Å, trained Bessel wave numbers): force
    constants jump at 4.5 Å and at 5 Å. SevenNet-l3i5 (polynomial envelope): smooth."""
    zero = load_model(model_file("sevennet-0"), dtype=torch.float64)
    assert not kink(zero, 4.0)
    assert kink(zero, 4.5)
    assert kink(zero, 5.0)
    l3i5 = load_model(model_file("sevennet-l3i5"), dtype=torch.float64)
    assert not kink(l3i5, 4.0)
    assert not kink(l3i5, 5.0)
