"""Training models (any registered architecture) on phonopy data: config, losses, trainer, evaluation.

Public API
----------
TrainConfig, describe_config — typed configuration (from YAML) and key reference
Trainer, train, TrainResult — the training loop (single process or torchrun)
evaluate, frequency_errors, evaluate_folder — errors of a model on samples and phonopy data
losses — the loss functions (energy, forces, stress, force-constant terms)
"""
from ase_fcnet.training import losses
from ase_fcnet.training.config import TrainConfig
from ase_fcnet.training.config_help import describe_config
from ase_fcnet.training.evaluate import evaluate, evaluate_folder, frequency_errors
from ase_fcnet.training.trainer import Trainer, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "describe_config", "evaluate",
           "evaluate_folder", "frequency_errors", "losses", "train"]
