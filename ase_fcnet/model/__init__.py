"""The energy model, its builder, derivatives and model files."""
from ase_fcnet.model.checkpoint import (
    FORMAT_VERSION,
    ModelCautionWarning,
    ModelFileError,
    load_model,
    model_from_dict,
    model_to_dict,
    read_model_file,
    save_model,
)
from ase_fcnet.model.config import ModelConfig, build_model
from ase_fcnet.model.derivatives import energy_forces_stress, graph_hessian_vector_products, hessian
from ase_fcnet.model.fcnet import FCNet
from ase_fcnet.model.nequip import NequIPConfig, NequIPNet
from ase_fcnet.model.registry import ARCHITECTURES, architecture_name

__all__ = [
    "ARCHITECTURES", "FCNet", "NequIPConfig", "NequIPNet", "architecture_name", "FORMAT_VERSION", "ModelCautionWarning", "ModelConfig", "ModelFileError", "build_model",
    "energy_forces_stress", "hessian", "graph_hessian_vector_products", "load_model",
    "model_from_dict", "model_to_dict", "read_model_file", "save_model",
]
