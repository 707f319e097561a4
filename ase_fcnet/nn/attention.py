"""Equivariant graph attention interaction block."""
from __future__ import annotations

import torch
from torch import nn

from ase_fcnet.nn._e3nn import Gate, o3
from ase_fcnet.nn.product import NodeProduct
from ase_fcnet.nn.scatter import gather, scatter_sum

#: Attention logits are squashed into (-LOGIT_BOUND, LOGIT_BOUND) by a tanh
#: (smooth, and keeps exp() well away from overflow without a non-smooth max).
LOGIT_BOUND = 4.0


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _message_irreps(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps):
    """'uvu' tensor-product paths from (irreps_in ⊗ irreps_sh) that irreps_out can use."""
    wanted = {ir for _, ir in irreps_out}
    mid, instructions = [], []
    for i1, (mul, ir1) in enumerate(irreps_in):
        for i2, (_, ir2) in enumerate(irreps_sh):
            for ir in ir1 * ir2:
                if ir in wanted:
                    instructions.append((i1, i2, len(mid), "uvu", True))
                    mid.append((mul, ir))
    irreps_mid = o3.Irreps(mid)
    irreps_sorted, perm, _ = irreps_mid.sort()
    instructions = [(a, b, perm[c], mode, w) for a, b, c, mode, w in instructions]
    return irreps_sorted, instructions


def _head_of_weight(tp: o3.TensorProduct, num_heads: int) -> torch.Tensor:
    """One-hot map from attention heads to the tensor product's per-edge path
    weights, shape (H, tp.weight_numel).

    Every path is 'uvu' with its own output block, so weight (path, u) scales
    exactly output channel u of that path's block, and channel u of a block of
    multiplicity m belongs to head ⌊u·H/m⌋ (all 2l+1 components alike, so
    weighting by head keeps equivariance). Scaling the weights rather than the
    messages touches weight_numel numbers per edge instead of irreps_mid.dim
    (96 against 288 in the default model's first layer), which makes the
    second derivative cheaper; the result is the same up to round-off.
    """
    heads = []
    for ins in tp.instructions:
        if ins.connection_mode != "uvu" or tp.irreps_in2[ins.i_in2].mul != 1:
            raise ValueError("head map needs 'uvu' paths with a single edge-harmonic channel")
        mul = tp.irreps_in1[ins.i_in1].mul
        heads += [u * num_heads // mul for u in range(mul)]
    return nn.functional.one_hot(torch.tensor(heads), num_heads).T.to(torch.float64)


class EquivariantAttention(nn.Module):
    r"""One message-passing layer with smooth, scalar-only attention.

    For each edge i←j (vector r_ij, length r):

    * message  m_ij = TP(h_j, Y(r̂_ij); w(r)) — tensor product of the neighbour
      features with the edge's real spherical harmonics, path weights w from a
      radial MLP of the Bessel basis;
    * logits   a_ij^h = b·tanh(MLP(s_i, s_j, B(r)) / b) from scalar channels only;
    * weights  α_ij^h = u(r) exp(a_ij^h) / (1 + Σ_k u(r_ik) exp(a_ik^h)), with
      u the C² cutoff envelope, so nothing jumps when a neighbour crosses r_c;
    * update   h_i' = Gate(Linear(A_i) + SelfInteraction(h_i, species_i) [+ P(A_i)])
      (+ h_i when irreps_in == irreps_out), with A_i = Σ_j α_ij m_ij and P the
      optional :class:`~ase_fcnet.nn.product.NodeProduct`.

    Parameters
    ----------
    irreps_in, irreps_out : o3.Irreps
        Node features in and out; scalars must be ``0e`` and listed first.
    irreps_sh : o3.Irreps
        Spherical harmonics of the edge directions, e.g. ``1x0e+1x1o+1x2e``.
    num_species : int
        Number of species (one-hot node attributes).
    num_basis : int
        Size of the radial basis fed in.
    radial_hidden : int
        Hidden width of the radial and attention MLPs.
    num_heads : int
        Attention heads (groups of channels with their own weights).
    product_channels : int
        Channels of the node-wise product of A_i (0: no product).
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        num_species: int,
        num_basis: int,
        radial_hidden: int,
        num_heads: int,
        product_channels: int = 0,
    ):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.num_heads = int(num_heads)

        scalars = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l > 0])
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
        act_gates = [torch.sigmoid] if gated.num_irreps else []
        self.gate = Gate(scalars, [nn.functional.silu], gates, act_gates, gated)
        irreps_pre = self.gate.irreps_in

        irreps_mid, instructions = _message_irreps(self.irreps_in, self.irreps_sh, irreps_pre)
        self.tp = o3.TensorProduct(
            self.irreps_in, self.irreps_sh, irreps_mid, instructions,
            shared_weights=False, internal_weights=False,
        )
        self.radial = _mlp([num_basis, radial_hidden, radial_hidden, self.tp.weight_numel])
        self.n_scalars_in = self.irreps_in.count("0e")
        self.attention = _mlp([2 * self.n_scalars_in + num_basis, radial_hidden, self.num_heads])
        self.register_buffer("heads", _head_of_weight(self.tp, self.num_heads), persistent=False)
        self.linear = o3.Linear(irreps_mid, irreps_pre)
        self.self_interaction = o3.FullyConnectedTensorProduct(
            self.irreps_in, o3.Irreps(f"{num_species}x0e"), irreps_pre
        )
        self.product = NodeProduct(irreps_mid, irreps_pre, product_channels) if product_channels else None
        self.residual = self.irreps_in == self.irreps_out

    def forward(
        self,
        h: torch.Tensor,
        species_onehot: torch.Tensor,
        edge_index: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_basis: torch.Tensor,
        edge_envelope: torch.Tensor,
    ) -> torch.Tensor:
        """Update node features.

        Parameters
        ----------
        h : Tensor, shape (N, irreps_in.dim)
        species_onehot : Tensor, shape (N, num_species)
        edge_index : Tensor, shape (2, E) — (centre i, neighbour j)
        edge_sh : Tensor, shape (E, irreps_sh.dim)
        edge_basis : Tensor, shape (E, num_basis), Å⁻¹
        edge_envelope : Tensor, shape (E,) — cutoff envelope u(r_ij)

        Returns
        -------
        Tensor, shape (N, irreps_out.dim)
        """
        i, j = edge_index
        n = h.shape[0]
        s = h[:, : self.n_scalars_in]
        logits = self.attention(torch.cat([gather(s, i), gather(s, j), edge_basis], dim=-1))
        w = edge_envelope[:, None] * torch.exp(LOGIT_BOUND * torch.tanh(logits / LOGIT_BOUND))
        denom = torch.ones(n, self.num_heads, dtype=h.dtype, device=h.device).index_add(0, i, w)
        alpha = w / gather(denom, i)

        weights = self.radial(edge_basis) * (alpha @ self.heads)
        msg = self.tp(gather(h, j), edge_sh, weights)
        agg = scatter_sum(msg, i, n)
        pre = self.linear(agg) + self.self_interaction(h, species_onehot)
        if self.product is not None:
            pre = pre + self.product(agg)
        out = self.gate(pre)
        return out + h if self.residual else out
