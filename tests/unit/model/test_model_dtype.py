"""dtype and device handling: float64 by default, float32 on request, global default untouched."""
from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from ase_fcnet import FCNetCalculator
from ase_fcnet.calculator import resolve_device, resolve_dtype
from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import (
    build_model,
    energy_forces_stress,
    graph_hessian_vector_products,
    hessian,
    load_model,
    save_model,
)

pytestmark = pytest.mark.usefixtures("default_dtype_guard")


@contextmanager
def _global_default(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _float_dtypes(model):
    return {t.dtype for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()}


@pytest.mark.parametrize("user_default", [torch.float32, torch.float64])
def test_library_never_changes_default_dtype(user_default, tiny_config, sic_cubic, tmp_path):
    with _global_default(user_default):
        m64 = build_model(tiny_config, seed=1)
        m32 = build_model(tiny_config, dtype=torch.float32, seed=1)
        assert torch.get_default_dtype() == user_default
        save_model(m64, tmp_path / "m.pt")
        loaded = load_model(tmp_path / "m.pt", dtype=torch.float32)
        assert torch.get_default_dtype() == user_default
        for dtype in ("float64", "float32"):
            calc = FCNetCalculator(copy.deepcopy(m64), device="cpu", dtype=dtype)
            atoms = sic_cubic.copy()
            atoms.calc = calc
            atoms.get_stress()
            calc.get_hessian(atoms)
            assert torch.get_default_dtype() == user_default
    assert _float_dtypes(m64) == {torch.float64}
    assert _float_dtypes(m32) == {torch.float32} == _float_dtypes(loaded)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_follow_model_and_input_dtype(dtype, model, sic_prim):
    model = model.to(dtype)
    g = atoms_to_graph(sic_prim, model.cutoff, model.species, dtype=dtype)
    out = energy_forces_stress(model, g, stress=True)
    assert {v.dtype for v in out.values()} == {dtype}
    assert hessian(model, g).dtype == dtype
    v64 = torch.ones(1, len(sic_prim), 3, dtype=torch.float64)
    assert graph_hessian_vector_products(model, g, v64).dtype == dtype  # vectors are cast to the graph


def test_float32_close_to_float64(model, sic_cubic, helpers, record_max):
    m32 = copy.deepcopy(model).to(torch.float32)
    r64 = helpers.evaluate(model, sic_cubic)
    r32 = helpers.evaluate(m32, sic_cubic)
    e_err = abs(r32["energy"] - r64["energy"]) / abs(r64["energy"])
    f_err = helpers.rel_err(r32["forces"], r64["forces"])
    s_err = helpers.rel_err(r32["stress"], r64["stress"])
    h_err = helpers.rel_err(helpers.model_hessian(m32, sic_cubic), helpers.model_hessian(model, sic_cubic))
    record_max("float32 vs float64: energy, relative", e_err)
    record_max("float32 vs float64: forces, relative", f_err)
    record_max("float32 vs float64: Hessian, relative", h_err)
    assert e_err < 1e-5 and f_err < 1e-3 and s_err < 1e-3 and h_err < 1e-3
    assert f_err > 0, "float32 gave bit-identical forces: it was not float32"


def test_calculator_float32_returns_float64_arrays(model, sic_cubic):
    atoms = sic_cubic.copy()
    atoms.calc = FCNetCalculator(copy.deepcopy(model), device="cpu", dtype="float32")
    assert atoms.calc.dtype == torch.float32
    assert _float_dtypes(atoms.calc.model) == {torch.float32}
    forces = atoms.get_forces()
    assert forces.dtype == np.float64 and atoms.get_stress().dtype == np.float64
    ref = sic_cubic.copy()
    ref.calc = FCNetCalculator(model, device="cpu")
    np.testing.assert_allclose(forces, ref.get_forces(), rtol=0, atol=1e-3 * np.abs(forces).max())


@pytest.mark.parametrize("bad", ["float16", "double", torch.float16, torch.bfloat16])
def test_bad_dtype_rejected(bad):
    with pytest.raises(ValueError, match="float64"):
        resolve_dtype(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_cuda_is_a_clear_error(model):
    with pytest.raises(ValueError, match="CUDA is not available"):
        FCNetCalculator(model, device="cuda")
    assert resolve_device(None) == torch.device("cpu") == resolve_device("auto")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(model, sic_cubic, molecule_sic, helpers):
    """The same physics checks on the GPU: values equal CPU ones, Hessian symmetric, sum rule."""
    gpu = copy.deepcopy(model).to("cuda")
    for atoms in (sic_cubic, molecule_sic):
        ref, got = helpers.evaluate(model, atoms), helpers.evaluate(gpu, atoms)
        assert abs(got["energy"] - ref["energy"]) < 1e-10 * abs(ref["energy"])
        assert helpers.rel_err(got["forces"], ref["forces"]) < 1e-10
        g = atoms_to_graph(atoms, gpu.cutoff, gpu.species, device="cuda")
        h_gpu = hessian(gpu, g).cpu().numpy()  # batched rows (is_grads_batched), auto chunk
        h_chunk = hessian(gpu, g, chunk_size=5).cpu().numpy()
        h_cpu = helpers.model_hessian(model, atoms)
        n = len(atoms)
        assert helpers.rel_err(h_gpu, h_cpu) < 1e-10 and helpers.rel_err(h_chunk, h_cpu) < 1e-10
        assert np.abs(h_gpu - h_gpu.T).max() < 1e-10
        assert np.abs(h_gpu.reshape(n, 3, n, 3).sum(axis=2)).max() < 1e-10
    calc_atoms = sic_cubic.copy()
    calc_atoms.calc = FCNetCalculator(copy.deepcopy(model), device="cuda")
    np.testing.assert_allclose(calc_atoms.get_forces(), helpers.evaluate(model, sic_cubic)["forces"],
                               rtol=1e-10, atol=1e-12)
