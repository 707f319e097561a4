"""E(3) and permutation symmetry of energy, forces, Hessian and stress; supercell consistency."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from e3nn import o3
from scipy.spatial.transform import Rotation

from ase_fcnet.model.derivatives import VOIGT

# Rotations: the 2-layer model only uses Clebsch-Gordan paths l⊗l→0 and 0⊗l→l,
# exact in float64. Deeper models also use 1⊗1→2, 1⊗2→1, ... whose Wigner-3j
# buffers build_model computes in float32 (see test_wigner_3j_buffers_are_float64_accurate).
ROT_RTOL = 1e-10
DEEP_ROT_RTOL = 1e-9
EXACT_RTOL = 1e-11


def _rotation(seed: int, improper: bool) -> np.ndarray:
    rot = Rotation.random(random_state=seed).as_matrix()
    return -rot if improper else rot


def _transformed(atoms: Atoms, rot: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    out.positions = atoms.positions @ rot.T
    return out


def _voigt_to_matrix(s):
    m = np.zeros((3, 3))
    for k, (a, b) in enumerate(VOIGT):
        m[a, b] = m[b, a] = s[k]
    return m


def _blocks(hess, n):
    return hess.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)  # Φ[i, j] is 3×3


def _all(model, atoms, helpers):
    res = helpers.evaluate(model, atoms)
    res["hessian"] = helpers.model_hessian(model, atoms)
    return res


def _check_energy(a, b, rtol, record_max, what):
    err = abs(a - b) / max(abs(a), 1.0)
    assert record_max(what, err) < rtol


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotoinversion"])
@pytest.mark.parametrize("name", ["sic_cubic", "sic_prim", "molecule_sic"])
def test_rotation_and_inversion(name, improper, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    rot = _rotation(seed=11, improper=improper)
    ref, new = _all(model, atoms, helpers), _all(model, _transformed(atoms, rot), helpers)
    n = len(atoms)
    _check_energy(new["energy"], ref["energy"], ROT_RTOL, record_max,
                  "energy change under O(3) rotation, relative")
    assert record_max("forces F' = F R^T, relative",
                      helpers.rel_err(new["forces"], ref["forces"] @ rot.T)) < ROT_RTOL
    phi_ref = np.einsum("ab,ijbc,dc->ijad", rot, _blocks(ref["hessian"], n), rot)
    assert record_max("Hessian blocks R Phi_ij R^T, relative",
                      helpers.rel_err(_blocks(new["hessian"], n), phi_ref)) < ROT_RTOL
    if "stress" in ref:
        sig_ref = rot @ _voigt_to_matrix(ref["stress"]) @ rot.T
        assert record_max("stress R sigma R^T, relative",
                          helpers.rel_err(_voigt_to_matrix(new["stress"]), sig_ref)) < ROT_RTOL
    # the check can fail: the quantities really change under the rotation
    assert helpers.rel_err(new["forces"], ref["forces"]) > 1e-2


def test_rotation_three_layer_model(helpers, sic_cubic, record_max):
    """A deeper model with l > 0 → l > 0 paths is E(3)-equivariant too."""
    model = helpers.make_model(num_layers=3)
    rot = _rotation(seed=5, improper=True)
    ref = helpers.evaluate(model, sic_cubic)
    new = helpers.evaluate(model, _transformed(sic_cubic, rot))
    _check_energy(new["energy"], ref["energy"], DEEP_ROT_RTOL, record_max,
                  "3-layer model: energy change under O(3) rotation, relative")
    err = helpers.rel_err(new["forces"], ref["forces"] @ rot.T)
    assert record_max("3-layer model: forces F' = F R^T, relative", err) < DEEP_ROT_RTOL
    assert helpers.rel_err(new["forces"], ref["forces"]) > 1e-2


def test_wigner_3j_buffers_are_float64_accurate(helpers):
    model = helpers.make_model(num_layers=3)
    worst = 0.0
    for name, buf in model.named_buffers():
        if "_w3j_" in name:
            l1, l2, l3 = (int(x) for x in name.rsplit("_w3j_", 1)[1].split("_"))
            exact = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
            assert buf.dtype == torch.float64
            worst = max(worst, float((buf - exact).abs().max()))
    assert worst < 1e-14, f"Wigner-3j buffers differ from float64 values by {worst:.1e}"


@pytest.mark.parametrize("name", ["sic_cubic", "molecule_sic"])
def test_translation_invariance(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    moved = atoms.copy()
    moved.positions += [0.37, -1.91, 2.6]
    ref, new = _all(model, atoms, helpers), _all(model, moved, helpers)
    _check_energy(new["energy"], ref["energy"], EXACT_RTOL, record_max,
                  "energy change under translation, relative")
    for key in ("forces", "hessian"):
        assert helpers.rel_err(new[key], ref[key]) < EXACT_RTOL
    if atoms.pbc.all():  # wrapping atoms back into the cell changes nothing either
        moved.wrap()
        _check_energy(helpers.energy(model, moved), ref["energy"], EXACT_RTOL, record_max,
                      "energy change under translation, relative")


@pytest.mark.parametrize("name", ["sic_cubic", "molecule_sic"])
def test_permutation_invariance(name, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    perm = np.random.default_rng(2).permutation(len(atoms))
    assert np.any(perm != np.arange(len(atoms)))
    ref, new = _all(model, atoms, helpers), _all(model, atoms[perm], helpers)
    n = len(atoms)
    _check_energy(new["energy"], ref["energy"], EXACT_RTOL, record_max,
                  "energy change under atom permutation, relative")
    assert helpers.rel_err(new["forces"], ref["forces"][perm]) < EXACT_RTOL
    phi = _blocks(ref["hessian"], n)[np.ix_(perm, perm)]
    assert helpers.rel_err(_blocks(new["hessian"], n), phi) < EXACT_RTOL
    if "stress" in ref:
        assert helpers.rel_err(new["stress"], ref["stress"]) < EXACT_RTOL


@pytest.mark.parametrize("name, reps", [("sic_cubic", (2, 1, 1)), ("sic_prim", (2, 2, 1)),
                                        ("sic_prim", (1, 1, 3))])
def test_supercell_consistency(name, reps, request, model, helpers, record_max):
    atoms = request.getfixturevalue(name)
    big = atoms.repeat(reps)
    k = int(np.prod(reps))
    ref, new = helpers.evaluate(model, atoms), helpers.evaluate(model, big)
    _check_energy(new["energy"], k * ref["energy"], EXACT_RTOL, record_max,
                  "supercell energy vs k * cell energy, relative")
    assert helpers.rel_err(new["forces"], np.tile(ref["forces"], (k, 1))) < EXACT_RTOL
    assert helpers.rel_err(new["stress"], ref["stress"]) < EXACT_RTOL


def test_supercell_hessian_folds_to_cell_hessian(model, sic_prim, helpers):
    """Σ over images of the supercell force constants = force constants of the small cell."""
    n = len(sic_prim)
    big = sic_prim.repeat((2, 1, 1))
    phi_big = _blocks(helpers.model_hessian(model, big), 2 * n)
    folded = phi_big[:n, :n] + phi_big[:n, n:]
    phi = _blocks(helpers.model_hessian(model, sic_prim), n)
    assert helpers.rel_err(folded, phi) < EXACT_RTOL
