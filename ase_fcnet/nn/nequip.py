"""NequIP-style building blocks: radial embedding, switching functions, interaction block.

These are the pieces of the message-passing network of NequIP (Batzner et al.,
Nat. Commun. 13, 2453, 2022) in the variant SevenNet uses (Park et al., J. Chem.
Theory Comput. 20, 4857, 2024): species-independent linear self-connection,
"uvu" tensor products of neighbour features with the edge's spherical
harmonics whose path weights come from a radial MLP, a constant
average-neighbour denominator, and gated nonlinearities.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch import nn

from ase_fcnet.nn._e3nn import Gate, e3nn_nn, o3
from ase_fcnet.nn.edge_tp import EdgeTensorProduct
from ase_fcnet.nn.scatter import gather, scatter_sum

#: Activation functions by name (configs and model files store names).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": nn.functional.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "abs": torch.abs,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name``; ValueError naming the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class TrainableBessel(nn.Module):
    """Bessel radial basis (2/r_c) sin(k_n r) / r with trainable wave numbers k_n.

    The k_n start at nπ/r_c (n = 1..num_basis) and are parameters, so a trained
    model may have moved them: sin(k_n r_c) then need not vanish at the cutoff.

    Parameters
    ----------
    r_max : float
        Cutoff radius r_c, Å.
    num_basis : int
        Number of basis functions.
    """

    def __init__(self, r_max: float, num_basis: int = 8):
        super().__init__()
        self.r_max = float(r_max)
        self.prefactor = 2.0 / self.r_max
        n = torch.arange(1, num_basis + 1, dtype=torch.float64)
        self.frequencies = nn.Parameter(math.pi * n / self.r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """r : Tensor, shape (E,), Å → Tensor, shape (E, num_basis), Å⁻¹."""
        return self.prefactor * torch.sin(self.frequencies * r[:, None]) / r[:, None]


class XPLORSwitch(nn.Module):
    """XPLOR (CHARMM) switching function: 1 below r_on, 0 at r_c.

    S(r) = (r_c² − r²)² (r_c² + 2r² − 3r_on²) / (r_c² − r_on²)³ for r_on ≤ r < r_c.
    S and S′ are continuous at r_on and r_c, S″ is not: an energy built from it
    is C¹ in positions there, and second derivatives (force constants) jump
    when a neighbour distance crosses r_on or r_c.

    Parameters
    ----------
    r_on : float
        Where switching starts, Å.
    r_max : float
        Cutoff radius r_c, Å (> r_on).
    """

    def __init__(self, r_on: float, r_max: float):
        super().__init__()
        if not 0 < r_on < r_max:
            raise ValueError(f"XPLOR switch needs 0 < r_on < r_c, got r_on={r_on}, r_c={r_max}")
        self.r_on, self.r_max = float(r_on), float(r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """r : Tensor, shape (E,), Å → Tensor, shape (E,), dimensionless."""
        rc2, ron2, r2 = self.r_max**2, self.r_on**2, r * r
        s = (rc2 - r2) ** 2 * (rc2 + 2.0 * r2 - 3.0 * ron2) / (rc2 - ron2) ** 3
        s = torch.where(r < self.r_on, torch.ones_like(r), s)
        return torch.where(r < self.r_max, s, torch.zeros_like(r))


def gate_for(irreps_out: o3.Irreps, act_scalars: Mapping[int, str],
             act_gates: Mapping[int, str]) -> Gate:
    """A gate whose output is ``irreps_out``: l = 0 channels through their activation,
    each l > 0 channel multiplied by an activated scalar gate of its own.

    Parameters
    ----------
    irreps_out : o3.Irreps
    act_scalars, act_gates : mapping parity (+1, −1) → activation name
        Gates are even scalars when ``irreps_out`` has even scalars, else odd.
    """
    scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
    gate_parity = 1 if o3.Irrep("0e") in [ir for _, ir in scalars] else -1
    gates = o3.Irreps([(m, (0, gate_parity)) for m, _ in gated])
    return Gate(scalars, [activation(act_scalars[ir.p]) for _, ir in scalars],
                gates, [activation(act_gates[ir.p]) for _, ir in gates], gated)


def convolution_paths(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax_out: int,
                      even_only: bool) -> tuple[o3.Irreps, list[tuple]]:
    """'uvu' paths (input irrep ⊗ edge harmonic → irrep with l ≤ ``lmax_out``).

    Each path keeps the input multiplicity and has its own output block; the
    blocks are sorted by irrep, and the instructions by output block (this
    fixes the layout of the per-edge path weights).

    Returns
    -------
    irreps_mid : o3.Irreps — the sorted output blocks
    instructions : list of (i_in, i_sh, i_out, "uvu", True)
    """
    mid, paths = [], []
    for i1, (mul, ir1) in enumerate(irreps_in):
        for i2, (_, ir2) in enumerate(irreps_sh):
            for ir in ir1 * ir2:
                if ir.l <= lmax_out and not (even_only and ir.p == -1):
                    paths.append((i1, i2, len(mid)))
                    mid.append((mul, ir))
    irreps_mid, perm, _ = o3.Irreps(mid).sort()
    instructions = sorted(((a, b, perm[c], "uvu", True) for a, b, c in paths), key=lambda x: x[2])
    return irreps_mid, instructions


class NequIPInteraction(nn.Module):
    r"""One NequIP interaction block with a linear self-connection.

    For node features h (irreps_in) and edges i←j with vector r_ij:

    * s_i = SelfConnection(h_i), a linear map to the gate's input irreps;
    * x_i = Linear₁(h_i [, m]) — m the modality one-hot, when used;
    * A_i = (1/d) Σ_j TP(x_j, Y(r̂_ij); W(e_ij)) — "uvu" tensor product with
      per-edge path weights W from an MLP of the radial embedding e_ij,
      d a constant denominator (about √(average neighbours));
    * h_i' = Gate(Linear₂(A_i [, m]) + s_i).

    Parameters
    ----------
    irreps_in, irreps_out : o3.Irreps
        Node features in and out.
    irreps_sh : o3.Irreps
        Edge spherical harmonics.
    radial_layers : list of int
        Sizes of the radial MLP without its output (e.g. ``[8, 64, 64]``).
    radial_activation : str
    denominator : float
        The aggregated messages are divided by it.
    act_scalars, act_gates : mapping parity → activation name
    num_modalities : int
        Length of the modality one-hot (0: no modality input).
    modal_in, modal_out : bool
        Whether Linear₁ / Linear₂ also read the modality one-hot.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, irreps_sh: o3.Irreps,
                 radial_layers: list[int], radial_activation: str, denominator: float,
                 act_scalars: Mapping[int, str], act_gates: Mapping[int, str],
                 num_modalities: int = 0, modal_in: bool = False, modal_out: bool = False):
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.gate = gate_for(self.irreps_out, act_scalars, act_gates)
        modal = o3.Irreps(f"{num_modalities}x0e") if num_modalities else o3.Irreps("")
        self.modal_in, self.modal_out = bool(modal_in and num_modalities), bool(modal_out and num_modalities)
        self.self_connection = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.linear_in = o3.Linear(self.irreps_in + (modal if self.modal_in else o3.Irreps("")),
                                   self.irreps_in)
        scalar_out = all(ir.l == 0 for _, ir in self.irreps_out)
        irreps_mid, instructions = convolution_paths(self.irreps_in, irreps_sh,
                                                     self.irreps_out.lmax, scalar_out)
        self.tp = EdgeTensorProduct(self.irreps_in, irreps_sh, irreps_mid, instructions)
        self.radial = e3nn_nn.FullyConnectedNet(list(radial_layers) + [self.tp.weight_numel],
                                                activation(radial_activation))
        self.register_buffer("denominator", torch.tensor(float(denominator), dtype=torch.float64))
        self.linear_out = o3.Linear(irreps_mid + (modal if self.modal_out else o3.Irreps("")),
                                    self.gate.irreps_in)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_sh: torch.Tensor,
                edge_embedding: torch.Tensor, modal: torch.Tensor | None = None) -> torch.Tensor:
        """Update node features.

        Parameters
        ----------
        h : Tensor, shape (N, irreps_in.dim)
        edge_index : Tensor, shape (2, E) — (centre i, neighbour j)
        edge_sh : Tensor, shape (E, irreps_sh.dim)
        edge_embedding : Tensor, shape (E, radial_layers[0]) — radial basis × switch, Å⁻¹
        modal : Tensor, shape (N, num_modalities), optional — modality one-hot per node

        Returns
        -------
        Tensor, shape (N, irreps_out.dim)
        """
        i, j = edge_index
        skip = self.self_connection(h)
        x = self.linear_in(torch.cat([h, modal], dim=1) if self.modal_in else h)
        def to_nodes(block: torch.Tensor) -> torch.Tensor:
            return scatter_sum(block, i, h.shape[0])

        agg = self.tp(gather(x, j), edge_sh, self.radial(edge_embedding), reduce=to_nodes)
        agg = agg / self.denominator
        x = self.linear_out(torch.cat([agg, modal], dim=1) if self.modal_out else agg)
        return self.gate(x + skip)
