"""NodeProduct: O(3) equivariance, zero output at construction, and that it feeds the block."""
from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from ase_fcnet.nn import EquivariantAttention
from ase_fcnet.nn.product import NodeProduct
from test_nn_attention import HIDDEN, IRREPS_SH, N_BASIS, N_SPECIES, _block, _default_dtype, _inputs

CASES = [
    ("4x0e + 4x1o + 4x2e", "6x0e + 2x1o + 2x2e"),  # hidden block: scalars, gates, gated
    ("4x0e + 4x1o + 4x2e", "4x0e"),  # last block: scalars only
    ("6x0e", "3x0e"),  # scalar-only messages
]


def _product(irreps_in, irreps_out, channels=3, seed=0):
    torch.manual_seed(seed)
    with _default_dtype(torch.float64):
        product = NodeProduct(irreps_in, irreps_out, channels)
    return product


@pytest.mark.parametrize("irreps_in, irreps_out", CASES)
def test_output_starts_at_zero(irreps_in, irreps_out):
    product = _product(irreps_in, irreps_out)
    agg = torch.randn(5, o3.Irreps(irreps_in).dim, dtype=torch.float64)
    assert torch.equal(product(agg), torch.zeros(5, o3.Irreps(irreps_out).dim, dtype=torch.float64))


@pytest.mark.parametrize("irreps_in, irreps_out", CASES)
def test_product_is_o3_equivariant_and_quadratic(irreps_in, irreps_out, record_max):
    product = _product(irreps_in, irreps_out)
    with torch.no_grad():
        product.out.weight.normal_()
    agg = torch.randn(5, o3.Irreps(irreps_in).dim, dtype=torch.float64)
    out = product(agg)
    assert out.abs().max() > 1e-3
    assert torch.allclose(product(2.0 * agg), 4.0 * out, rtol=1e-12, atol=1e-12)  # x ⊗ x
    with _default_dtype(torch.float64):
        errors = assert_equivariant(product, args_in=[agg], irreps_in=[o3.Irreps(irreps_in)],
                                    irreps_out=[o3.Irreps(irreps_out)], tolerance=1e-10, ntrials=3)
    record_max("NodeProduct O(3) equivariance error (assert_equivariant)",
               max(float(e.max()) for e in errors.values()))


def test_block_with_products_is_equivariant_and_uses_them(record_max):
    torch.manual_seed(0)
    with _default_dtype(torch.float64):
        plain = _block(HIDDEN, HIDDEN)
        torch.manual_seed(0)
        block = EquivariantAttention(HIDDEN, HIDDEN, IRREPS_SH, N_SPECIES, N_BASIS,
                                     radial_hidden=16, num_heads=2, product_channels=3)
    args = _inputs(HIDDEN)
    assert torch.equal(block(*args), plain(*args))  # same seed, product output still zero
    with torch.no_grad():
        block.product.out.weight.normal_()
    assert (block(*args) - plain(*args)).abs().max() > 1e-3
    irreps = [o3.Irreps(HIDDEN), o3.Irreps(f"{N_SPECIES}x0e"), None, IRREPS_SH,
              o3.Irreps(f"{N_BASIS}x0e"), None]
    with _default_dtype(torch.float64):
        errors = assert_equivariant(block, args_in=args, irreps_in=irreps,
                                    irreps_out=[o3.Irreps(HIDDEN)], tolerance=1e-10, ntrials=3)
    record_max("EquivariantAttention with NodeProduct, O(3) equivariance error",
               max(float(e.max()) for e in errors.values()))
