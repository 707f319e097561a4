"""Forces, Hessian, Hessian-vector products and stress against finite differences (float64)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ase_fcnet.graph import atoms_to_graph, batch_graphs
from ase_fcnet.model import energy_forces_stress, graph_hessian_vector_products, hessian
from ase_fcnet.model.derivatives import VOIGT

STRUCTURES = ["sic_cubic", "sic_prim", "molecule_sic"]


def _graph(model, atoms):
    return atoms_to_graph(atoms, model.cutoff, model.species)


@pytest.mark.parametrize("name", STRUCTURES)
def test_forces_are_minus_energy_gradient(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    forces = helpers.evaluate(model, atoms, stress=False)["forces"]
    assert np.abs(forces).max() > 0.05, "forces trivially small: the check could not fail"
    fd = helpers.fd_forces(model, atoms, h=1e-4)
    err = record_max("forces vs -dE/dr (central FD, h=1e-4 A), relative", helpers.rel_err(forces, fd))
    assert err < 1e-6


def test_deeper_model_derivatives(helpers, molecule_sic, record_max):
    """3 layers, l_max = 3 (l>0 → l>0 tensor-product paths): forces and Hessian exact too."""
    model = helpers.make_model(num_layers=3, l_max=3, num_heads=3)
    forces = helpers.evaluate(model, molecule_sic)["forces"]
    hess = helpers.model_hessian(model, molecule_sic)
    assert np.abs(forces).max() > 0.05
    assert helpers.rel_err(forces, helpers.fd_forces(model, molecule_sic)) < 1e-6
    assert helpers.rel_err(hess, helpers.fd_hessian(model, molecule_sic)) < 1e-6
    n = len(molecule_sic)
    record_max("Hessian asymmetry max|H - H^T| (eV/A^2)", np.abs(hess - hess.T).max())
    assert np.abs(hess - hess.T).max() <= 1e-10
    assert np.abs(hess.reshape(n, 3, n, 3).sum(axis=2)).max() <= 1e-10


def test_model_with_node_products_derivatives(helpers, molecule_sic, sic_cubic, record_max):
    """Node-wise products (random output weights, not the zero start): forces and Hessian
    exact, the Hessian symmetric with the acoustic sum rule."""
    model = helpers.make_model(product_channels=3)
    with torch.no_grad():
        for layer in model.layers:
            layer.product.out.weight.normal_(generator=torch.Generator().manual_seed(3))
    plain = helpers.make_model()
    assert abs(helpers.energy(model, sic_cubic) - helpers.energy(plain, sic_cubic)) > 1e-3
    forces = helpers.evaluate(model, molecule_sic)["forces"]
    hess = helpers.model_hessian(model, molecule_sic)
    assert np.abs(forces).max() > 0.05
    assert record_max("node products: forces vs FD, relative",
                      helpers.rel_err(forces, helpers.fd_forces(model, molecule_sic))) < 1e-6
    assert record_max("node products: Hessian vs FD, relative",
                      helpers.rel_err(hess, helpers.fd_hessian(model, molecule_sic))) < 1e-6
    n = len(molecule_sic)
    assert np.abs(hess - hess.T).max() <= 1e-10
    assert np.abs(hess.reshape(n, 3, n, 3).sum(axis=2)).max() <= 1e-10


def test_finite_difference_error_is_pure_truncation(model, molecule_sic, helpers):
    """Halving h divides the FD error by 4 (O(h²)): the AD derivatives are exact."""
    forces = helpers.evaluate(model, molecule_sic)["forces"]
    hess = helpers.model_hessian(model, molecule_sic)
    for exact, fd in ((forces, helpers.fd_forces), (hess, helpers.fd_hessian)):
        errors = [helpers.rel_err(fd(model, molecule_sic, h=h), exact) for h in (4e-4, 2e-4)]
        assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("name", ["sic_prim", "molecule_sic", "sic_cubic"])
def test_hessian_is_force_derivative(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    hess = helpers.model_hessian(model, atoms)
    assert hess.shape == (3 * len(atoms),) * 2
    assert np.abs(hess).max() > 1.0, "Hessian trivially small: the check could not fail"
    fd = helpers.fd_hessian(model, atoms, h=1e-4)
    err = record_max("Hessian vs -dF/dr (central FD, h=1e-4 A), relative", helpers.rel_err(hess, fd))
    assert err < 1e-6


@pytest.mark.parametrize("name", STRUCTURES)
def test_hessian_symmetric_and_acoustic_sum_rule(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    hess = helpers.model_hessian(model, atoms)
    n = len(atoms)
    asym = record_max("Hessian asymmetry max|H - H^T| (eV/A^2)", np.abs(hess - hess.T).max())
    phi = hess.reshape(n, 3, n, 3)
    rule = record_max("acoustic sum rule max|sum_j Phi_ij| (eV/A^2)",
                      np.abs(phi.sum(axis=2)).max())
    assert asym <= 1e-10 and rule <= 1e-10
    # the Hessian of a free molecule also has zero row sums in the other index
    assert np.abs(phi.sum(axis=0)).max() <= 1e-10


def test_hessian_vector_products_equal_h_times_v(model, sic_cubic, helpers, record_max):
    n = len(sic_cubic)
    g = _graph(model, sic_cubic)
    hess = hessian(model, g)
    vectors = torch.randn(4, n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    hv = graph_hessian_vector_products(model, g, vectors)
    ref = (hess @ vectors.reshape(4, 3 * n).T).T.reshape(4, n, 3)
    err = record_max("HVP vs H @ v, relative", helpers.rel_err(hv, ref))
    assert err < 1e-12
    # linear in v, and the progress callback reports every row
    seen = []
    hv2 = graph_hessian_vector_products(model, g, 2.5 * vectors, progress=lambda d, t: seen.append((d, t)))
    torch.testing.assert_close(hv2, 2.5 * hv, rtol=1e-12, atol=1e-12)
    assert seen[-1] == (4, 4) and len(seen) == 4


def test_probe_vectors_with_create_graph(model, sic_prim):
    g = _graph(model, sic_prim)
    v = torch.randn(2, len(sic_prim), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    hv = energy_forces_stress(model, g, vectors=v, create_graph=True)["hvp"]
    assert hv.requires_grad  # usable in a force-constant loss
    torch.testing.assert_close(hv.detach(), graph_hessian_vector_products(model, g, v), rtol=1e-12, atol=0)


def test_batched_hessian_is_block_diagonal(model, sic_prim, molecule_sic, sic_cubic, record_max):
    structures = [sic_prim, molecule_sic, sic_cubic]
    graphs = [_graph(model, a) for a in structures]
    batch = batch_graphs(graphs)
    sizes = [len(a) for a in structures]
    offsets = np.cumsum([0] + sizes)
    ranges = list(itertools.pairwise(offsets))  # atoms of each structure
    vectors = torch.randn(3, sum(sizes), 3, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(5))
    hv = graph_hessian_vector_products(model, batch, vectors)
    err = 0.0
    for g, (a, b) in zip(graphs, ranges):
        single = graph_hessian_vector_products(model, g, vectors[:, a:b])
        err = max(err, float((hv[:, a:b] - single).abs().max() / single.abs().max()))
    assert record_max("batched vs per-structure HVP, relative", err) < 1e-12
    full = hessian(model, batch).numpy()
    block = np.zeros_like(full, dtype=bool)
    for a, b in ranges:
        block[3 * a: 3 * b, 3 * a: 3 * b] = True
    assert np.all(full[~block] == 0.0)
    # energies and forces of the batch are those of the parts
    out = energy_forces_stress(model, batch)
    for k, g in enumerate(graphs):
        single = energy_forces_stress(model, g)
        torch.testing.assert_close(out["energy"][k], single["energy"][0], rtol=1e-13, atol=0)


def _strained(atoms, eps):
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def fd_stress(model, atoms, helpers, d=1e-5):
    """σ = (1/V) ∂E/∂ε (symmetric strain, central differences), Voigt order."""
    volume = atoms.get_volume()
    out = np.zeros(6)
    for k, (a, b) in enumerate(VOIGT):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = d
        de = helpers.energy(model, _strained(atoms, eps)) - helpers.energy(model, _strained(atoms, -eps))
        out[k] = de / (2 * d) / volume / (1 if a == b else 2)
    return out


@pytest.mark.parametrize("name", ["sic_cubic", "sic_prim"])
def test_stress_is_strain_derivative(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    atoms.set_cell(atoms.cell.array @ np.diag([1.02, 0.99, 1.0]), scale_atoms=True)  # non-zero σ
    stress = helpers.evaluate(model, atoms, stress=True)["stress"]
    assert stress.shape == (6,)
    assert np.abs(stress).max() > 1e-2, "stress trivially small: the check could not fail"
    fd = fd_stress(model, atoms, helpers)
    err = record_max("stress vs (1/V) dE/deps (central FD), relative", helpers.rel_err(stress, fd))
    assert err < 1e-6


def test_energy_forces_stress_options(model, sic_cubic, helpers):
    g = _graph(model, sic_cubic)
    only_e = energy_forces_stress(model, g, forces=False)
    assert set(only_e) == {"energy"} and only_e["energy"].shape == (1,)
    only_s = energy_forces_stress(model, g, forces=False, stress=True)
    both = energy_forces_stress(model, g, forces=True, stress=True)
    torch.testing.assert_close(only_s["stress"], both["stress"], rtol=1e-12, atol=0)
    assert both["forces"].shape == (len(sic_cubic), 3) and both["stress"].shape == (1, 6)
    # net force on a periodic cell vanishes (translation invariance)
    assert both["forces"].sum(0).abs().max() < 1e-11 * both["forces"].abs().max() * len(sic_cubic)
    trained = energy_forces_stress(model, g, create_graph=True)
    assert trained["forces"].requires_grad
