"""Scaling the paths of a tensor-product block by per-edge weights, saving no expanded weights.

A block of several tensor-product paths side by side, ``y`` of shape
(E, u, K), gets one weight per edge, channel and path, ``w`` of shape
(E, u, m): column k of path p(k) is multiplied by ``w[..., p(k)]``. Written as
``y * expanded(w)``, autograd keeps the expanded (E, u, K) weights for the
backward pass, and the first-derivative graph of a Hessian-vector product
keeps another such copy. :func:`path_scale` and its partner :func:`path_sum`
(the per-path sum of an elementwise product) are each other's derivatives and
save only their compact arguments; the expansion lives only inside a call.
The layout of the paths is a 0/1 matrix ``spread`` of shape (m, K):
``spread[p, k] = 1`` when column k belongs to path p.
"""
from __future__ import annotations

import torch


class _PathScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, w: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(y, w, spread)
        return y * (w @ spread)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, w, spread = ctx.saved_tensors
        grad_y = _PathScale.apply(grad, w, spread) if ctx.needs_input_grad[0] else None
        grad_w = _PathSum.apply(grad, y, spread) if ctx.needs_input_grad[1] else None
        return grad_y, grad_w, None


class _PathSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b, spread)
        return (a * b) @ spread.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b, spread = ctx.saved_tensors
        grad_a = _PathScale.apply(b, grad, spread) if ctx.needs_input_grad[0] else None
        grad_b = _PathScale.apply(a, grad, spread) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def path_scale(y: torch.Tensor, w: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """Each path's columns of ``y`` times that path's weight.

    Parameters
    ----------
    y : Tensor, shape (..., K)
    w : Tensor, shape (..., m)
    spread : Tensor, shape (m, K), 0/1, one 1 per column, same dtype as ``y``

    Returns
    -------
    Tensor, shape (..., K): ``y[..., k] * w[..., p(k)]``
    """
    return _PathScale.apply(y, w, spread)


def path_sum(a: torch.Tensor, b: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """Per-path sums of ``a * b``.

    Parameters
    ----------
    a, b : Tensor, shape (..., K)
    spread : Tensor, shape (m, K), 0/1, one 1 per column

    Returns
    -------
    Tensor, shape (..., m): ``Σ_{k in path p} a[..., k] b[..., k]``
    """
    return _PathSum.apply(a, b, spread)
