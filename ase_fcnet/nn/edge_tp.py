"""The per-edge "uvu" tensor product of a NequIP convolution, without slicing.

e3nn's generated tensor product cuts its inputs and per-edge weights into
blocks by slicing; the backward pass of every slice allocates a zero tensor of
the whole input and copies into it. Second derivatives (Hessian-vector
products) run through those backward passes again, and on the ported
SevenNet-l3i5 the zero fills were half the time of one product. Here the
blocks come from ``torch.split`` (its backward concatenates), and each path is
one batched matrix product. The paths, their normalisation and the Wigner-3j
symbols are e3nn's: the result equals ``o3.TensorProduct`` with the same
instructions (tested to round-off). A ``reduce`` (the sum over each node's
edges) can be applied to each path's block before the blocks are joined: the
join's second derivative then fills node-sized rather than edge-sized zero
tensors (on SevenNet-l3i5, 102 fills of a 1664 × 7776 tensor per product).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ase_fcnet.nn._e3nn import o3


class EdgeTensorProduct(nn.Module):
    """'uvu' tensor product x₁ ⊗ x₂ → out with per-edge path weights.

    Parameters
    ----------
    irreps_in1 : o3.Irreps
        Node features of the neighbour (multiplicity u kept per path).
    irreps_in2 : o3.Irreps
        Edge spherical harmonics, multiplicity 1 each.
    irreps_out : o3.Irreps
        One output block per instruction (as from ``convolution_paths``).
    instructions : list of (i_in1, i_in2, i_out, "uvu", True)
        Ordered as the weights are laid out.
    """

    def __init__(self, irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, irreps_out: o3.Irreps,
                 instructions: list[tuple]):
        super().__init__()
        self.irreps_in1, self.irreps_in2 = o3.Irreps(irreps_in1), o3.Irreps(irreps_in2)
        self.irreps_out = o3.Irreps(irreps_out)
        if any(mul != 1 for mul, _ in self.irreps_in2):
            raise ValueError("EdgeTensorProduct needs multiplicity 1 in irreps_in2")
        outs = [ins[2] for ins in instructions]
        if sorted(outs) != list(range(len(self.irreps_out))):
            raise ValueError("EdgeTensorProduct needs exactly one instruction per output block")
        # e3nn's normalisation of each path ('component' irreps, 'element' paths)
        reference = o3.TensorProduct(self.irreps_in1, self.irreps_in2, self.irreps_out, instructions,
                                     shared_weights=False, internal_weights=False)
        self.paths = [(ins.i_in1, ins.i_in2, ins.i_out, float(ins.path_weight))
                      for ins in reference.instructions]
        self.weight_numel = reference.weight_numel
        self.weight_sizes = [self.irreps_in1[i1].mul for i1, _, _, _ in self.paths]
        for i1, i2, io, _ in self.paths:
            ls = (self.irreps_in1[i1].ir.l, self.irreps_in2[i2].ir.l, self.irreps_out[io].ir.l)
            name = "_w3j_{}_{}_{}".format(*ls)
            if not hasattr(self, name):
                self.register_buffer(name, o3.wigner_3j(*ls, dtype=torch.float64), persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor,
                reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Tensor product of each edge, optionally reduced per block.

        Parameters
        ----------
        x1 : Tensor, shape (E, irreps_in1.dim)
        x2 : Tensor, shape (E, irreps_in2.dim)
        weight : Tensor, shape (E, weight_numel)
        reduce : callable, optional
            Maps each block (E, d) to (M, d), e.g. the sum over each node's edges.

        Returns
        -------
        Tensor, shape (E, irreps_out.dim), or (M, irreps_out.dim) with ``reduce``
        """
        n = x1.shape[0]
        x1s = [x.reshape(n, mul, ir.dim) for x, (mul, ir) in
               zip(torch.split(x1, [m.dim for m in self.irreps_in1], dim=1), self.irreps_in1)]
        x2s = torch.split(x2, [m.dim for m in self.irreps_in2], dim=1)
        ws = torch.split(weight, self.weight_sizes, dim=1)
        coupled: dict[tuple, torch.Tensor] = {}
        out: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for k, (i1, i2, io, path_weight) in enumerate(self.paths):
            l1, l3 = self.irreps_in1[i1].ir.l, self.irreps_out[io].ir.l
            key = (i2, l1, l3)
            if key not in coupled:
                w3j = getattr(self, f"_w3j_{l1}_{self.irreps_in2[i2].ir.l}_{l3}").to(x2.dtype)
                coupled[key] = torch.einsum("ej,ijk->eik", x2s[i2], w3j)  # (E, 2l1+1, 2l3+1)
            y = torch.bmm(x1s[i1], coupled[key])  # (E, u, 2l3+1)
            block = (y * (path_weight * ws[k]).unsqueeze(-1)).reshape(n, y.shape[1] * y.shape[2])
            out[io] = reduce(block) if reduce is not None else block
        return torch.cat(out, dim=1)
