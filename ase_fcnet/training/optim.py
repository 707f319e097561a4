"""AdamW parameter groups, the warm-up + cosine schedule and the EMA of the weights."""
from __future__ import annotations

import math

import torch

from ase_fcnet.training.config import OptimizerConfig, ScheduleConfig

#: Parameters that AdamW's weight decay leaves alone (fitted physical offsets).
NO_DECAY = ("reference_energies",)
#: The head for ``optimizer.backbone_lr_factor``: parameters named ``reference_energies``
#: or under a top-level module whose name starts with ``readout`` (fcnet's ``readout``,
#: nequip's ``readout_hidden`` and ``readout_out``). Everything else is the backbone.
HEAD_NAMES = ("reference_energies",)
HEAD_MODULE_PREFIX = "readout"


def is_head(name: str) -> bool:
    """Whether parameter ``name`` belongs to the head (keeps the full learning rate)."""
    return name in HEAD_NAMES or name.split(".", 1)[0].startswith(HEAD_MODULE_PREFIX)


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig,
                   no_decay=()) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters (frozen ones are left out).

    No weight decay for :data:`NO_DECAY` and the names in ``no_decay``. With
    ``cfg.backbone_lr_factor`` = 1 there are two groups (decay, no decay);
    otherwise four (backbone decay, backbone no decay, head decay, head no
    decay; some may be empty), each group's ``lr_factor`` multiplying the
    scheduled rate (:func:`is_head`).
    """
    factor = float(cfg.backbone_lr_factor)
    split = factor != 1.0
    keys = [(head, nodecay) for head in ((False, True) if split else (None,))
            for nodecay in (False, True)]
    params: dict = {k: [] for k in keys}
    for name, p in model.named_parameters():
        if p.requires_grad:
            nodecay = name in NO_DECAY or name in no_decay
            params[(is_head(name) if split else None, nodecay)].append(p)
    groups = [{"params": params[k], "weight_decay": 0.0 if k[1] else cfg.weight_decay,
               "lr_factor": factor if k[0] is False else 1.0} for k in keys]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def freeze_parameters(model: torch.nn.Module, prefixes) -> list[str]:
    """Set ``requires_grad = False`` on the parameters under each prefix (``training.freeze``).

    A prefix matches a parameter name equal to it or starting with it and a
    ``.`` (``layers.1`` matches ``layers.1.tp.weight``, not ``layers.10.x``).

    Returns
    -------
    list of str — the frozen parameter names

    Raises
    ------
    ValueError
        A prefix that matches no parameter (named, with the model's top-level
        prefixes), or nothing left to train.
    """
    names = [name for name, _ in model.named_parameters()]
    frozen: list[str] = []
    for prefix in prefixes:
        hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({_module_prefix(n) for n in names})
            raise ValueError(f"training.freeze: {prefix!r} matches no parameter of the model; "
                             f"its parameters start with: {', '.join(tops)}")
        frozen += [n for n in hits if n not in frozen]
    params = dict(model.named_parameters())
    for n in frozen:
        params[n].requires_grad_(False)
    if prefixes and all(not p.requires_grad for p in params.values()):
        raise ValueError("training.freeze: every parameter is frozen; nothing left to train")
    return frozen


def restrict_to_species(model: torch.nn.Module, elements) -> tuple[list[str], dict]:
    """Train only the entries of ``elements`` in the per-species parameters (``train_species``).

    Every parameter outside ``model.species_parameters()`` is frozen. Inside
    them, the entries of other species must stay as they are: the trainer
    multiplies their gradients by the returned masks after every backward
    pass, and leaves these parameters out of weight decay. Structures without
    ``elements`` are then computed exactly as before.

    Returns
    -------
    frozen : list of str — the frozen parameter names
    masks : dict — parameter name → Tensor of its shape, 1 on the entries of
        ``elements``, 0 elsewhere (the parameter's dtype and device)
    """
    owned = model.species_parameters()
    keep = torch.tensor([model.species.index(el) for el in elements])
    frozen, masks = [], {}
    for name, p in model.named_parameters():
        if name in owned:
            masks[name] = torch.isin(owned[name], keep.to(owned[name].device)).to(p.dtype)
        else:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen, masks


def _module_prefix(name: str) -> str:
    """Top-level module of a parameter, with its index inside a list (``layers.0``)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


class Anchor:
    """Decoupled decay toward a model's initial weights (``optimizer.anchor_decay``, L2-SP).

    Holds a copy of every trainable weight (the per-species reference
    energies excepted) when built; :meth:`pull` moves each weight toward its
    copy by ``lr * decay`` of the distance, with each group's current rate,
    after the optimizer's step (as AdamW's decoupled weight decay pulls toward
    zero).

    Parameters
    ----------
    model : torch.nn.Module — its current weights become the anchor
    decay : float — 0 makes :meth:`pull` do nothing
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.anchor = {p: p.detach().clone() for name, p in model.named_parameters()
                       if p.requires_grad and name not in NO_DECAY} if self.decay > 0 else {}

    @torch.no_grad()
    def pull(self, optimizer: torch.optim.Optimizer) -> None:
        """After ``optimizer.step()``: w ← w + lr·decay·(w₀ − w) for every anchored weight."""
        for group in optimizer.param_groups:
            fraction = min(group["lr"] * self.decay, 1.0)
            for p in group["params"]:
                if p in self.anchor:
                    p.lerp_(self.anchor[p], fraction)


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
        """Set the rate of the next step on ``optimizer``, advance; return the rate.

        Each group gets the rate times its ``lr_factor`` (1 when absent).
        """
        lr = self.value(self.step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_factor", 1.0)
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
                self.shadow[k].lerp_(v.detach(), 1.0 - d)   # exact where v equals the shadow
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
