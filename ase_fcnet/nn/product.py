"""Node-wise product of aggregated messages (higher body order at node cost)."""
from __future__ import annotations

import torch
from torch import nn

from ase_fcnet.nn._e3nn import o3


def _product_paths(irreps: o3.Irreps, wanted: set) -> tuple[o3.Irreps, list[tuple]]:
    """'uuu' paths of ``irreps ⊗ irreps`` (i1 ≤ i2) whose output irrep is in ``wanted``."""
    mid, instructions = [], []
    for i1, (mul, ir1) in enumerate(irreps):
        for i2, (_, ir2) in enumerate(irreps):
            if i2 < i1:
                continue
            for ir in ir1 * ir2:
                if ir in wanted:
                    instructions.append((i1, i2, len(mid), "uuu", True))
                    mid.append((mul, ir))
    return o3.Irreps(mid), instructions


class NodeProduct(nn.Module):
    r"""Channel-wise tensor square of a node's aggregated messages.

    ``x = Linear(A_i)`` projects the aggregated messages A_i onto
    ``channels x (0e + 1o + 2e + …)`` (those of ``irreps_in``'s irreps that have
    the natural parity, up to its largest l);
    the output is ``Linear_out(TP_uuu(x, x))``, the channel-wise products of
    every pair of those irreps that can reach ``irreps_out``. Each message
    carries one neighbour, so the product adds three-body terms (two
    neighbours and the centre) at the cost of a per-node operation, whereas
    widening the messages costs per edge. The output linear map starts at
    zero, so a block with a fresh product computes what it computed without
    one (used to grow a trained model, see ``ModelConfig.product_channels``).

    Parameters
    ----------
    irreps_in : o3.Irreps
        Aggregated messages per node.
    irreps_out : o3.Irreps
        Output per node (added to the block's pre-gate features).
    channels : int
        Multiplicity of each irrep in the product.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, channels: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        present = {ir for _, ir in self.irreps_in}
        natural = (o3.Irrep(l, (-1) ** l) for l in range(max(ir.l for ir in present) + 1))
        self.irreps_x = o3.Irreps([(channels, ir) for ir in natural if ir in present])
        self.project = o3.Linear(self.irreps_in, self.irreps_x)
        irreps_mid, instructions = _product_paths(self.irreps_x, {ir for _, ir in self.irreps_out})
        self.tp = o3.TensorProduct(self.irreps_x, self.irreps_x, irreps_mid, instructions,
                                   internal_weights=True)
        self.out = o3.Linear(irreps_mid, self.irreps_out)
        with torch.no_grad():
            self.out.weight.zero_()

    def forward(self, agg: torch.Tensor) -> torch.Tensor:
        """Product term of each node.

        Parameters
        ----------
        agg : Tensor, shape (N, irreps_in.dim)

        Returns
        -------
        Tensor, shape (N, irreps_out.dim)
        """
        x = self.project(agg)
        return self.out(self.tp(x, x))
