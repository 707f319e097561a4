"""Radial basis and smooth cutoff envelope."""
from __future__ import annotations

import math

import torch
from torch import nn


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff u(r) with u(r_c) = u'(r_c) = u''(r_c) = 0 (NequIP form).

    u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2),  x = r / r_c,
    and u = 0 for r >= r_c, so anything multiplied by it is C² across the cutoff.

    Parameters
    ----------
    r_max : float
        Cutoff radius r_c, Å.
    p : int
        Polynomial order (≥ 2 for C²).
    """

    def __init__(self, r_max: float, p: int = 6):
        super().__init__()
        if p < 2:
            raise ValueError(f"envelope order p must be >= 2 for a C² energy, got {p}")
        self.r_max = float(r_max)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """r : Tensor, shape (E,), Å → Tensor, shape (E,), dimensionless."""
        p = self.p
        x = r / self.r_max
        u = (
            1.0
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        return torch.where(x < 1.0, u, torch.zeros_like(u))


class BesselBasis(nn.Module):
    """Bessel radial basis sqrt(2/r_c) sin(n π r / r_c) / r, n = 1..num_basis.

    Parameters
    ----------
    r_max : float
        Cutoff radius, Å.
    num_basis : int
        Number of basis functions.
    """

    def __init__(self, r_max: float, num_basis: int = 8):
        super().__init__()
        self.r_max = float(r_max)
        self.num_basis = int(num_basis)
        self.register_buffer(
            "frequencies", math.pi * torch.arange(1, num_basis + 1, dtype=torch.float64) / r_max
        )

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """r : Tensor, shape (E,), Å → Tensor, shape (E, num_basis), Å⁻¹."""
        prefactor = math.sqrt(2.0 / self.r_max)
        return prefactor * torch.sin(self.frequencies * r[:, None]) / r[:, None]
