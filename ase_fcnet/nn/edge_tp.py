"""The per-edge "uvu" tensor product of a NequIP convolution, without slicing.

e3nn's generated tensor product cuts its inputs and per-edge weights into
blocks by slicing; the backward pass of every slice allocates a zero tensor of
the whole input and copies into it. Second derivatives (Hessian-vector
products) run through those backward passes again, and on the ported
SevenNet-l3i5 the zero fills were half the time of one product. Here the
blocks come from ``torch.split`` (its backward concatenates).

The paths that read the same input block are computed together, in groups
at most ``MAX_GROUP_WIDTH`` output components wide: their Wigner-3j symbols
form one coupling matrix, so the edge harmonics are coupled by one matrix
product, the block by one batched matrix product with the group's outputs
side by side, and the per-edge path weights are applied by
:func:`~ase_fcnet.nn.path_scale.path_scale`, which keeps no expanded weights
for the backward pass. Path by path, SevenNet-0 ran about 3500 tiny batched
products (64 × 3 by 3 × 3 per edge) per Hessian-vector product; grouped, a
product on 64-atom P1 SiC (float32, one thread) took about 0.6 s instead of
0.9 s. The width cap keeps the per-edge blocks small: with whole input
blocks as groups, SevenNet-l3i5's 216-atom product peaked at 4.4–4.5 GB under
the ``fcnet`` allocator setting (large freed blocks fragment the heap), with
24 at 3.8 GB (3.6 GB path by path); 16 was slower again.

The paths, their normalisation and the Wigner-3j symbols are e3nn's: the
result equals ``o3.TensorProduct`` with the same instructions (tested to
round-off). A ``reduce`` (the sum over each node's edges) is applied to each
group before the output blocks are cut out and joined, so the join and its
derivatives work on node-sized rather than edge-sized tensors.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ase_fcnet.nn._e3nn import o3
from ase_fcnet.nn.path_scale import path_scale


#: Widest group of paths (sum of 2l+1 of its outputs) computed by one batched product.
MAX_GROUP_WIDTH = 24


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
        self.weight_numel = reference.weight_numel
        self.weight_sizes = [self.irreps_in1[ins.i_in1].mul for ins in reference.instructions]
        # Paths grouped by input block: one coupling matrix, one batched product and one
        # weighting per group. group = (i_in1, [(k weight block, i_out, width 2l3+1, path_weight)])
        self.groups: list[tuple[int, list[tuple[int, int, int, float]]]] = []
        sh_offsets = [0]
        for mul_ir in self.irreps_in2:
            sh_offsets.append(sh_offsets[-1] + mul_ir.dim)
        for i1, members in self._groups(reference):
            ir1 = self.irreps_in1[i1].ir
            widths = [self.irreps_out[ins.i_out].ir.dim for _, ins in members]
            coupling = torch.zeros(self.irreps_in2.dim, ir1.dim, sum(widths), dtype=torch.float64)
            spread = torch.zeros(len(members), sum(widths), dtype=torch.float64)
            col = 0
            for p, ((_, ins), width) in enumerate(zip(members, widths)):
                l2, l3 = self.irreps_in2[ins.i_in2].ir.l, self.irreps_out[ins.i_out].ir.l
                w3j = o3.wigner_3j(ir1.l, l2, l3, dtype=torch.float64)  # (2l1+1, 2l2+1, 2l3+1)
                rows = slice(sh_offsets[ins.i_in2], sh_offsets[ins.i_in2 + 1])
                coupling[rows, :, col:col + width] = w3j.permute(1, 0, 2)
                spread[p, col:col + width] = 1.0
                col += width
            self.register_buffer(f"_coupling_{len(self.groups)}",
                                 coupling.reshape(self.irreps_in2.dim, -1), persistent=False)
            self.register_buffer(f"_spread_{len(self.groups)}", spread, persistent=False)
            self.groups.append((i1, [(k, ins.i_out, width, float(ins.path_weight))
                                     for (k, ins), width in zip(members, widths)]))

    def _groups(self, reference) -> list[tuple[int, list]]:
        """(i_in1, [(k, instruction), ...]) groups, each at most ``MAX_GROUP_WIDTH`` wide."""
        groups = []
        for i1 in range(len(self.irreps_in1)):
            current, width = [], 0
            for k, ins in enumerate(reference.instructions):
                if ins.i_in1 != i1:
                    continue
                d = self.irreps_out[ins.i_out].ir.dim
                if current and width + d > MAX_GROUP_WIDTH:
                    groups.append((i1, current))
                    current, width = [], 0
                current.append((k, ins))
                width += d
            if current:
                groups.append((i1, current))
        return groups

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor,
                reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Tensor product of each edge, optionally reduced per group of blocks.

        Parameters
        ----------
        x1 : Tensor, shape (E, irreps_in1.dim)
        x2 : Tensor, shape (E, irreps_in2.dim)
        weight : Tensor, shape (E, weight_numel)
        reduce : callable, optional
            Maps a tensor (E, d) to (M, d), row-wise linear (e.g. the sum over each node's
            edges); applied before the output blocks are cut out and joined.

        Returns
        -------
        Tensor, shape (E, irreps_out.dim), or (M, irreps_out.dim) with ``reduce``
        """
        n = x1.shape[0]
        x1s = [x.reshape(n, mul, ir.dim) for x, (mul, ir) in
               zip(torch.split(x1, [m.dim for m in self.irreps_in1], dim=1), self.irreps_in1)]
        ws = torch.split(weight, self.weight_sizes, dim=1)
        out: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for g, (i1, members) in enumerate(self.groups):
            mul, ir1 = self.irreps_in1[i1]
            coupling = getattr(self, f"_coupling_{g}").to(x2.dtype)
            width = coupling.shape[1] // ir1.dim
            c = (x2 @ coupling).reshape(n, ir1.dim, width)  # (E, 2l1+1, K)
            y = torch.bmm(x1s[i1], c)  # (E, u, K)
            w = torch.stack([pw * ws[k] for k, _, _, pw in members], dim=2)  # (E, u, m)
            z = path_scale(y, w, getattr(self, f"_spread_{g}").to(y.dtype))
            if reduce is not None:
                z = reduce(z.reshape(n, mul * width))
                z = z.reshape(z.shape[0], mul, width)
            for (_, io, _, _), block in zip(members, torch.split(z, [m[2] for m in members], dim=2)):
                out[io] = block.reshape(block.shape[0], block.shape[1] * block.shape[2])
        return torch.cat(out, dim=1)
