"""ase_fcnet: exact phonons from an E(3)-equivariant graph neural network.

>>> from ase_fcnet import FCNetCalculator, phonopy_from_atoms
"""
from ase_fcnet._version import __version__
from ase_fcnet.calculator import FCNetCalculator
from ase_fcnet.model import ModelCautionWarning, ModelConfig, build_model, load_model, save_model

__all__ = [
    "FCNetCalculator", "ModelCautionWarning", "ModelConfig", "__version__", "build_model", "load_model",
    "phonopy_from_atoms", "save_model", "screen",
]


def __getattr__(name):
    # The phonopy adapter and screening sit above the calculator; imported on first use.
    if name == "phonopy_from_atoms":
        from ase_fcnet.phonons import phonopy_from_atoms

        return phonopy_from_atoms
    if name == "screen":
        from ase_fcnet.screening import screen

        return screen
    raise AttributeError(f"module 'ase_fcnet' has no attribute {name!r}")
