"""EquivariantAttention: O(3) equivariance (rotations and parity) and the attention weights."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from ase_fcnet.nn import EquivariantAttention
from ase_fcnet.nn.attention import _head_of_weight

N_SPECIES, N_BASIS, N_NODES, N_EDGES = 3, 6, 5, 14
IRREPS_SH = o3.Irreps.spherical_harmonics(2)  # 1x0e + 1x1o + 1x2e


@contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _block(irreps_in, irreps_out, seed=0, heads=2):
    # Built under a float64 default so e3nn's Wigner-3j buffers are float64-exact
    # (build_model does not do this; see test_model_symmetry.py). Likewise e3nn's
    # D_from_matrix (used by assert_equivariant) is only float32-accurate under a
    # float32 default, so the checks below run under a (restored) float64 default.
    torch.manual_seed(seed)
    with _default_dtype(torch.float64):
        return EquivariantAttention(irreps_in, irreps_out, IRREPS_SH, N_SPECIES, N_BASIS,
                                    radial_hidden=16, num_heads=heads)


def _inputs(irreps_in, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    h = rnd(N_NODES, o3.Irreps(irreps_in).dim)
    onehot = torch.nn.functional.one_hot(torch.randint(N_SPECIES, (N_NODES,), generator=g),
                                         N_SPECIES).double()
    edge_index = torch.randint(N_NODES, (2, N_EDGES), generator=g)
    vec = rnd(N_EDGES, 3)
    sh = o3.spherical_harmonics(IRREPS_SH, vec, normalize=True, normalization="component")
    basis = rnd(N_EDGES, N_BASIS)
    envelope = torch.rand(N_EDGES, generator=g, dtype=torch.float64)
    return [h, onehot, edge_index, sh, basis, envelope]


HIDDEN = "4x0e + 2x1o + 2x2e"
CASES = [
    ("4x0e", HIDDEN),  # first layer: scalars in
    (HIDDEN, HIDDEN),  # residual layer
    (HIDDEN, "4x0e"),  # last layer: scalars out
    ("3x0e + 2x1o + 1x1e + 1x2e + 1x2o", "3x0e + 1x1o + 1x1e + 1x2e"),  # pseudo-tensors too
]


@pytest.mark.parametrize("irreps_in, irreps_out", CASES)
def test_attention_block_is_o3_equivariant(irreps_in, irreps_out, record_max):
    block = _block(irreps_in, irreps_out)
    args = _inputs(irreps_in)
    irreps = [o3.Irreps(irreps_in), o3.Irreps(f"{N_SPECIES}x0e"), None, IRREPS_SH,
              o3.Irreps(f"{N_BASIS}x0e"), None]  # envelope (E,): invariant
    out = block(*args)
    assert out.shape == (N_NODES, o3.Irreps(irreps_out).dim)
    assert out.abs().max() > 1e-3, "block output is trivially ~0"
    with _default_dtype(torch.float64):
        errors = assert_equivariant(block, args_in=args, irreps_in=irreps,
                                    irreps_out=[o3.Irreps(irreps_out)], tolerance=1e-10, ntrials=3)
    assert {k[0] for k in errors} == {0, 1}, "parity (improper rotations) was not checked"
    record_max("EquivariantAttention O(3) equivariance error (assert_equivariant)",
               max(float(e.max()) for e in errors.values()))


def test_wrong_parity_would_be_detected():
    """Sanity check of the check: declaring the vector input as 1e must fail."""
    block = _block(HIDDEN, HIDDEN)
    args = _inputs(HIDDEN)
    wrong = [o3.Irreps("4x0e + 2x1e + 2x2e"), o3.Irreps(f"{N_SPECIES}x0e"), None, IRREPS_SH,
             o3.Irreps(f"{N_BASIS}x0e"), None]  # envelope (E,): invariant
    with pytest.raises(AssertionError, match="equivariance error"), _default_dtype(torch.float64):
        assert_equivariant(block, args_in=args, irreps_in=wrong,
                           irreps_out=[o3.Irreps(HIDDEN)], tolerance=1e-10)


def test_zero_envelope_edges_do_not_contribute():
    """An edge with u(r) = 0 (at/beyond the cutoff) changes nothing, whatever its features."""
    block = _block(HIDDEN, HIDDEN)
    h, onehot, edge_index, sh, basis, env = _inputs(HIDDEN)
    ref = block(h, onehot, edge_index, sh, basis, env)
    g = torch.Generator().manual_seed(5)
    extra_index = torch.tensor([[0, 3], [2, 4]])
    extra_sh = torch.randn(2, IRREPS_SH.dim, generator=g, dtype=torch.float64)
    extra_basis = torch.randn(2, N_BASIS, generator=g, dtype=torch.float64) * 10
    out = block(h, onehot, torch.cat([edge_index, extra_index], 1), torch.cat([sh, extra_sh]),
                torch.cat([basis, extra_basis]), torch.cat([env, torch.zeros(2, dtype=env.dtype)]))
    # zero to round-off (the batched products sum in a different order for more edges)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-15)
    # while a small non-zero envelope does change the result (the check can fail)
    env2 = torch.cat([env, torch.full((2,), 1e-3, dtype=env.dtype)])
    out2 = block(h, onehot, torch.cat([edge_index, extra_index], 1), torch.cat([sh, extra_sh]),
                 torch.cat([basis, extra_basis]), env2)
    assert (out2 - ref).abs().max() > 1e-8


def test_attention_bounded_and_no_overflow():
    """Huge logits (tanh bound) give finite outputs; isolated atoms keep their self term."""
    block = _block(HIDDEN, HIDDEN)
    h, onehot, edge_index, sh, basis, env = _inputs(HIDDEN)
    out = block(h * 1e3, onehot, edge_index, sh, basis * 1e3, env)
    assert torch.isfinite(out).all()
    empty = torch.zeros(2, 0, dtype=torch.long)
    isolated = block(h, onehot, empty, sh[:0], basis[:0], env[:0])
    assert isolated.shape == h.shape and torch.isfinite(isolated).all()


def test_heads_partition_channels_per_irrep():
    block = _block(o3.Irreps("4x0e + 3x1o"), o3.Irreps("4x0e + 3x1o"))
    one_hot = _head_of_weight(block.tp, 2)
    assert one_hot.shape == (2, block.tp.weight_numel)
    assert (one_hot.sum(dim=0) == 1).all()
    per_path = [block.tp.irreps_in1[ins.i_in1].mul for ins in block.tp.instructions]
    expected = sum(([u * 2 // m for u in range(m)] for m in per_path), [])
    assert one_hot.argmax(dim=0).tolist() == expected


def test_attention_on_weights_equals_attention_on_messages():
    """Scaling path weights by head equals scaling each message channel by its
    head's attention weight (the tensor product is linear in its weights)."""
    block = _block(o3.Irreps("4x0e + 3x1o"), o3.Irreps("4x0e + 3x1o"))
    gen = torch.Generator().manual_seed(3)
    n_edges = 7
    x = torch.randn(n_edges, block.irreps_in.dim, generator=gen, dtype=torch.float64)
    sh = torch.randn(n_edges, block.irreps_sh.dim, generator=gen, dtype=torch.float64)
    w = torch.randn(n_edges, block.tp.weight_numel, generator=gen, dtype=torch.float64)
    alpha = torch.rand(n_edges, 2, generator=gen, dtype=torch.float64)
    scaled = block.tp(x, sh, w * (alpha @ block.heads))
    channel_head = []
    for mul, ir in block.tp.irreps_out:
        for u in range(mul):
            channel_head += [u * 2 // mul] * ir.dim
    reference = block.tp(x, sh, w) * alpha[:, channel_head]
    assert torch.allclose(scaled, reference, rtol=0, atol=1e-14)
