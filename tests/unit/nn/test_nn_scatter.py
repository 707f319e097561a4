"""gather / scatter_sum: the same values and derivatives as index_select / index_add, less saved."""
import torch

from ase_fcnet.nn.scatter import gather, scatter_sum


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    index = torch.tensor([0, 2, 2, 4, 1, 0, 3])
    return x, index


def test_values_equal_index_ops():
    x, index = _inputs()
    assert torch.equal(gather(x, index), x.index_select(0, index))
    src = gather(x, index)
    expected = torch.zeros(6, 4, dtype=x.dtype).index_add(0, index, src)
    assert torch.equal(scatter_sum(src, index, 6), expected)


def test_first_and_second_derivatives():
    """gradcheck and gradgradcheck of a message-passing-like composition."""
    x, index = _inputs()
    centre = torch.tensor([1, 1, 3, 0, 4, 2, 2])

    def f(x):
        edges = gather(x, index) * gather(x, centre)
        return scatter_sum(torch.sin(edges), centre, x.shape[0])

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_saves_only_the_index():
    """The per-edge source is not kept for the backward pass, only the index."""
    x, index = _inputs()
    src = (gather(x, index) * 2.0).detach().requires_grad_(True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        scatter_sum(src, index, 5)
    assert sizes == [index.numel()]
