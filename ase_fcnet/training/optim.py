"""AdamW parameter groups, the warm-up + cosine schedule and the EMA of the weights."""
from __future__ import annotations

import math

import torch

from ase_fcnet.training.config import OptimizerConfig, ScheduleConfig

#: Parameters that AdamW's weight decay leaves alone (fitted physical offsets).
NO_DECAY = ("reference_energies",)


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters (no decay for :data:`NO_DECAY`)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if name in NO_DECAY else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


class WarmupCosine:
    """Learning rate: linear warm-up to ``lr``, then cosine decay to ``min_lr``.

    Parameters
    ----------
    lr : float — peak learning rate
    cfg : ScheduleConfig — ``warmup_steps``, ``min_lr``
    total_steps : int — steps of the whole run (the cosine ends there)
    """

    def __init__(self, lr: float, cfg: ScheduleConfig, total_steps: int):
        self.lr, self.min_lr = float(lr), float(min(cfg.min_lr, lr))
        self.warmup = int(cfg.warmup_steps)
        self.total = max(int(total_steps), 1)
        self.step = 0

    def value(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based)."""
        if step < self.warmup:
            return self.lr * (step + 1) / (self.warmup + 1)
        span = max(self.total - self.warmup, 1)
        t = min((step - self.warmup) / span, 1.0)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t))

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Set the rate of the next step on ``optimizer``, advance; return the rate."""
        lr = self.value(self.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.step += 1
        return lr

    def state_dict(self) -> dict:
        return {"step": self.step, "lr": self.lr, "min_lr": self.min_lr,
                "warmup": self.warmup, "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers.

    ``shadow ← decay · shadow + (1 − decay) · current`` after every step, with
    the effective decay ``min(decay, (1 + n)/(10 + n))`` after n updates so the
    average does not remember the random initial weights for long.

    Parameters
    ----------
    model : torch.nn.Module
    decay : float — 0 makes the average equal to the current weights
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()
                       if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
        self.updates += 1

    def averaged_state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged values (copies)."""
        return {k: (self.shadow[k] if k in self.shadow else v).detach().clone()
                for k, v in model.state_dict().items()}

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
