"""SpeciesAdapter: the identity at zero, equivariant, and blind to other species' rows."""
from __future__ import annotations

import torch

from ase_fcnet.nn._e3nn import o3
from ase_fcnet.nn.adapters import SpeciesAdapter

IRREPS = o3.Irreps("3x0e+2x1e+1x2e+1x0o")


def _features(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, IRREPS.dim, generator=g, dtype=torch.float64)
    return h, torch.tensor([0, 1, 2, 1, 0])


def _randomised(adapter: SpeciesAdapter, rows=None) -> SpeciesAdapter:
    with torch.no_grad():
        for p in (adapter.gain, adapter.bias):
            values = torch.randn(p.shape, dtype=p.dtype)
            if rows is not None:
                keep = torch.zeros(p.shape[0], dtype=torch.bool)
                keep[rows] = True
                values[~keep] = 0.0
            p.copy_(values)
    return adapter


def test_shapes_and_identity_at_start():
    adapter = SpeciesAdapter(IRREPS, n_species=3)
    assert adapter.gain.shape == (3, 3 + 2 + 1 + 1)   # one gain per channel
    assert adapter.bias.shape == (3, 3)               # even scalars only (not the 0o)
    h, species = _features()
    assert torch.equal(adapter(h, species), h)


def test_equivariant_under_rotation_and_inversion():
    adapter = _randomised(SpeciesAdapter(IRREPS, n_species=3))
    h, species = _features()
    rot = o3.rand_matrix(dtype=torch.float64)
    for matrix in (rot, -rot):   # a proper rotation, and one with the inversion
        d = IRREPS.D_from_matrix(matrix)
        torch.testing.assert_close(adapter(h @ d.T, species), adapter(h, species) @ d.T,
                                   rtol=1e-12, atol=1e-12)


def test_atoms_of_species_with_zero_rows_pass_unchanged():
    adapter = _randomised(SpeciesAdapter(IRREPS, n_species=3), rows=[2])
    h, species = _features()
    out = adapter(h, species)
    untouched = species != 2
    assert torch.equal(out[untouched], h[untouched])
    assert not torch.allclose(out[~untouched], h[~untouched])
    owner = adapter.species_of_entries()
    assert torch.equal(owner["gain"][:, 0], torch.arange(3))
    assert owner["bias"].shape == adapter.bias.shape
