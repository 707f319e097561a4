"""EdgeTensorProduct equals e3nn's TensorProduct with the same 'uvu' paths, values and derivatives."""
import pytest
import torch

from ase_fcnet.nn._e3nn import o3
from ase_fcnet.nn.edge_tp import EdgeTensorProduct
from ase_fcnet.nn.nequip import convolution_paths


def _exact(module):
    for name, buf in module.named_buffers():
        if "_w3j_" in name:
            ls = [int(x) for x in name.rsplit("_w3j_", 1)[1].split("_")]
            buf.data = o3.wigner_3j(*ls, dtype=torch.float64)
    return module


@pytest.mark.parametrize("irreps_in,lmax_out,even", [
    ("16x0e", 3, False), ("16x0e+8x1e+4x2e+4x3e", 3, False), ("16x0e+8x1e+4x2e+4x3e", 0, True),
    ("8x0e+4x1o+2x2e", 2, False)])
def test_equals_e3nn(irreps_in, lmax_out, even):
    torch.manual_seed(0)
    irreps_in = o3.Irreps(irreps_in)
    sh = o3.Irreps.spherical_harmonics(3, p=1 if even or "1o" not in str(irreps_in) else -1)
    mid, instructions = convolution_paths(irreps_in, sh, lmax_out, even)
    ref = _exact(o3.TensorProduct(irreps_in, sh, mid, instructions, shared_weights=False,
                                  internal_weights=False).double())
    ours = EdgeTensorProduct(irreps_in, sh, mid, instructions).double()
    assert ours.weight_numel == ref.weight_numel
    x1 = torch.randn(7, irreps_in.dim, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(7, sh.dim, dtype=torch.float64)
    w = torch.randn(7, ref.weight_numel, dtype=torch.float64)
    a, b = ref(x1, x2, w), ours(x1, x2, w)
    assert torch.allclose(a, b, rtol=0, atol=1e-13 * float(a.abs().max()))
    (ga,) = torch.autograd.grad(a.pow(2).sum(), x1)
    (gb,) = torch.autograd.grad(b.pow(2).sum(), x1)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-12 * float(ga.abs().max()))
    index = torch.tensor([0, 1, 1, 2, 0, 2, 1])
    summed = ours(x1, x2, w, reduce=lambda blk: torch.zeros(3, blk.shape[1], dtype=blk.dtype).index_add(0, index, blk))
    expected = torch.zeros(3, b.shape[1], dtype=b.dtype).index_add(0, index, b)
    assert torch.allclose(summed, expected, rtol=0, atol=1e-13 * float(expected.abs().max()))


def test_no_edges():
    irreps_in = o3.Irreps("4x0e+2x1e")
    sh = o3.Irreps.spherical_harmonics(2, p=1)
    mid, instructions = convolution_paths(irreps_in, sh, 1, False)
    tp = EdgeTensorProduct(irreps_in, sh, mid, instructions)
    out = tp(torch.zeros(0, irreps_in.dim), torch.zeros(0, sh.dim), torch.zeros(0, tp.weight_numel))
    assert out.shape == (0, mid.dim)


def test_path_scale_and_path_sum_derivatives():
    """path_scale / path_sum equal the expanded products, with first and second derivatives."""
    from ase_fcnet.nn.path_scale import path_scale, path_sum

    torch.manual_seed(1)
    widths = [1, 3, 5]
    spread = torch.zeros(3, 9, dtype=torch.float64)
    for p, start in enumerate([0, 1, 4]):
        spread[p, start:start + widths[p]] = 1.0
    y = torch.randn(4, 2, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    expanded = torch.cat([w[..., p:p + 1].expand(4, 2, d) for p, d in enumerate(widths)], dim=2)
    assert torch.allclose(path_scale(y, w, spread), y * expanded, rtol=0, atol=1e-15)
    sums = torch.stack([(y * expanded)[..., s:s + d].sum(-1) for s, d in zip([0, 1, 4], widths)], dim=2)
    assert torch.allclose(path_sum(y, expanded, spread), sums, rtol=0, atol=1e-14)
    assert torch.autograd.gradcheck(lambda a, b: path_scale(a, b, spread), (y, w))
    assert torch.autograd.gradgradcheck(lambda a, b: path_scale(a, b, spread), (y, w))
    assert torch.autograd.gradgradcheck(lambda a, b: path_sum(a, b, spread), (y, w @ spread))


def test_wide_groups_are_split():
    """Paths of one input block wider than MAX_GROUP_WIDTH run as several groups."""
    from ase_fcnet.nn import edge_tp

    irreps_in = o3.Irreps("4x0e+4x1e+4x2e+4x3e")
    sh = o3.Irreps.spherical_harmonics(3, p=1)
    mid, instructions = convolution_paths(irreps_in, sh, 3, False)
    tp = EdgeTensorProduct(irreps_in, sh, mid, instructions)
    widths = [sum(tp.irreps_out[io].ir.dim for _, io, _, _ in members) for _, members in tp.groups]
    assert max(widths) <= edge_tp.MAX_GROUP_WIDTH < sum(widths)
    assert sorted(io for _, members in tp.groups for _, io, _, _ in members) == list(range(len(mid)))
