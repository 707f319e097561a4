"""Gathering node rows onto edges and summing edge rows onto nodes, saving only the index.

``Tensor.index_add`` keeps its whole ``source`` argument for the backward
pass although its derivative needs only the source's shape, and the backward
of ``index_select`` is an ``index_add`` of the incoming gradient, which keeps
that gradient in turn when the first-derivative graph is built (Hessian-vector
products, force losses). Both are per-edge tensors, the largest a message
passing network holds. :func:`gather` and :func:`scatter_sum` compute the same
results with the same kernels but are each other's derivative and save only
the index, so first, second and higher derivatives never store a per-edge copy
for them.
"""
from __future__ import annotations

import torch


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.num_rows = x.shape[0]
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return _ScatterSum.apply(grad, index, ctx.num_rows), None


class _ScatterSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src: torch.Tensor, index: torch.Tensor, num_rows: int) -> torch.Tensor:
        ctx.save_for_backward(index)
        out = torch.zeros((num_rows,) + tuple(src.shape[1:]), dtype=src.dtype, device=src.device)
        return out.index_add_(0, index, src)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return _Gather.apply(grad, index), None, None


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` picked by ``index``: ``x.index_select(0, index)``.

    Parameters
    ----------
    x : Tensor, shape (N, ...)
    index : Tensor, shape (E,), int64, values in [0, N)

    Returns
    -------
    Tensor, shape (E, ...)
    """
    return _Gather.apply(x, index)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Sum of the rows of ``src`` into ``num_rows`` rows: ``out[index[e]] += src[e]``.

    Parameters
    ----------
    src : Tensor, shape (E, ...)
    index : Tensor, shape (E,), int64, values in [0, num_rows)
    num_rows : int

    Returns
    -------
    Tensor, shape (num_rows, ...), dtype and device of ``src``
    """
    return _ScatterSum.apply(src, index, num_rows)
