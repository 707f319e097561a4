"""Neural-network building blocks (equivariant layers, radial functions)."""
from ase_fcnet.nn.attention import EquivariantAttention
from ase_fcnet.nn.radial import BesselBasis, PolynomialEnvelope

__all__ = ["BesselBasis", "EquivariantAttention", "PolynomialEnvelope"]
