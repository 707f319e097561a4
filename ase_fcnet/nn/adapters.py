"""Per-species adapters: trainable corrections that act only on atoms of their own species."""
from __future__ import annotations

import torch
from torch import nn

from ase_fcnet.nn._e3nn import o3


class SpeciesAdapter(nn.Module):
    r"""Per-species gain on every channel and offset on every even scalar, zero at the start.

    .. math::

        h_{i,u m} \leftarrow h_{i,u m}\,(1 + g_{Z_i,u}) + b_{Z_i,u}\,[u \text{ is } 0e]

    for channel u (one multiplicity copy of an irrep) and its components m.
    A gain multiplies all 2l+1 components of a channel alike, and offsets go
    to even scalars only, so the map is E(3)-equivariant. With g and b zero it
    is the identity, bit for bit; an atom whose species' rows are zero passes
    through unchanged, whatever the other rows hold. Fine-tuning only the rows
    of some species (``training.train_species``) therefore leaves every
    structure without those species exactly as it was.

    Parameters
    ----------
    irreps : o3.Irreps or str
        Irreps of the features it acts on (``irreps_in`` = ``irreps_out``).
    n_species : int
        Number of species (rows of ``gain`` and ``bias``).

    Attributes
    ----------
    gain : Parameter, shape (n_species, channels), dimensionless
        ``channels`` = Σ multiplicities of ``irreps``.
    bias : Parameter, shape (n_species, even scalars), in the features' units
    """

    def __init__(self, irreps, n_species: int):
        super().__init__()
        self.irreps_in = self.irreps_out = o3.Irreps(irreps)
        channel, scalars, first = [], [], 0
        for mul, ir in self.irreps_in:
            for _ in range(mul):
                if ir.l == 0 and ir.p == 1:
                    scalars.append(len(channel))
                channel += [first] * ir.dim
                first += 1
        self.gain = nn.Parameter(torch.zeros(n_species, first, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(n_species, len(scalars), dtype=torch.float64))
        #: Channel of each feature component, shape (irreps.dim,).
        self.register_buffer("channel", torch.tensor(channel, dtype=torch.long), persistent=False)
        #: Feature components that are even scalars, shape (n_scalars,).
        self.register_buffer("scalar_index", torch.tensor(scalars, dtype=torch.long),
                             persistent=False)

    def forward(self, h: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Adapted features.

        Parameters
        ----------
        h : Tensor, shape (N, irreps.dim)
        species : Tensor, shape (N,), long — species index of each atom

        Returns
        -------
        Tensor, shape (N, irreps.dim)
        """
        out = h * (1.0 + self.gain[species][:, self.channel])
        return out.index_add(1, self.scalar_index, self.bias[species])

    def species_of_entries(self) -> dict[str, torch.Tensor]:
        """Species index of every entry of ``gain`` and ``bias`` (same shapes, long)."""
        return {name: torch.arange(p.shape[0], device=p.device)[:, None].expand(p.shape)
                for name, p in (("gain", self.gain), ("bias", self.bias))}
