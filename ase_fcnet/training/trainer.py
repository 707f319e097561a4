"""The training loop: data → model fit with AdamW, EMA, checkpoints, early stopping.

Reproducibility: every random choice is a function of the seed and of the
step, epoch and structure index (batch order: seed and epoch; force-constant
probes: seed, step and structure), so a run resumed from ``last.pt`` repeats
exactly what the uninterrupted run would have done.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ase_fcnet.calculator import resolve_device, resolve_dtype
from ase_fcnet.fileio import remove_stale_temporaries
from ase_fcnet.data.sample import Sample
from ase_fcnet.model import model_to_dict, registry, save_model
from ase_fcnet.training import distributed as dist
from ase_fcnet.training.checkpointing import (
    CheckpointError,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from ase_fcnet.training.config import (
    TrainConfig,
    architecture_of,
    model_config_from_dict,
)
from ase_fcnet.training.dataset import (
    StructureSet,
    check_samples,
    epoch_batches,
    repeat_where,
    shard,
    source_group,
    split_indices,
    with_force_constants,
)
from ase_fcnet.training.init_model import init_from
from ase_fcnet.training.metrics_log import MetricsLog
from ase_fcnet.training.objective import STATS, batch_loss, stats_vector, summarize
from ase_fcnet.training.terms import needs_probes
from ase_fcnet.training.optim import (EMA, Anchor, WarmupCosine, freeze_parameters, make_optimizer,
                                      restrict_to_species)
from ase_fcnet.training.statistics import fit_statistics, refit_reference_energies

#: Files a run writes into output_dir; temporaries of these left by a killed run are removed.
OUTPUT_FILES = ("last.pt", "model.pt", "metrics.csv", "metrics.json", "loss_curves.png")


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    model : torch.nn.Module — the averaged weights of the best validation epoch
        (of the last epoch without validation data), as saved in ``model.pt``
    history : list of dict — per-epoch metrics (as in ``metrics.json``)
    best_epoch : int — 1-based
    steps : int — optimizer steps done
    output_dir : Path
    """

    model: torch.nn.Module
    history: list
    best_epoch: int
    steps: int
    output_dir: Path


class Trainer:
    """Fits a model of any registered architecture to samples as a :class:`TrainConfig` says.

    Parameters
    ----------
    config : TrainConfig
    samples : sequence of Sample, optional
        The dataset; read from ``config.data.paths`` with
        :func:`ase_fcnet.data.load_dataset` when not given.

    Notes
    -----
    Under ``torchrun`` each process trains on its shard of every global batch
    (see :mod:`ase_fcnet.training.distributed`); only rank 0 writes files.
    """

    def __init__(self, config: TrainConfig, samples: Sequence[Sample] | None = None):
        self.config = cfg = config
        run = cfg.training
        self.dtype = resolve_dtype(run.dtype)
        device = resolve_device(run.device)
        self.dist = dist.setup(device)
        if device.type == "cuda" and self.dist.active:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        if samples is None:
            if not cfg.data.paths:
                raise ValueError("no training data: set data.paths in the config")
            from ase_fcnet.data import load_dataset
            samples = load_dataset(cfg.data.paths)
        if cfg.data.force_constants_only:
            samples = with_force_constants(samples)
        check_samples(samples, cfg.model.species, run.train_species)
        self.data = StructureSet(samples, cfg.model.cutoff, cfg.model.species, self.dtype, device)
        self.train_idx, self.val_idx = split_indices(
            [source_group(s.source) for s in samples], cfg.data.validation_fraction,
            cfg.data.split_seed)
        #: One epoch's training indices: structures with force constants ``fc_repeat`` times.
        self.epoch_idx = repeat_where(
            self.train_idx, [self.data.has(i, "force_constants") for i in self.train_idx],
            cfg.data.fc_repeat)
        self.out = Path(run.output_dir)
        self.model = registry.build(cfg.model, dtype=self.dtype, device=device, seed=run.seed)
        self.eval_model = registry.build(cfg.model, dtype=self.dtype, device=device,
                                         seed=run.seed)
        self.eval_model.requires_grad_(False)
        self.init_metadata: dict[str, Any] = {}
        if run.init_model:
            self.scale_source, self.init_metadata = init_from(self.model, run.init_model,
                                                              cfg.model)
            refit_reference_energies(self.model, self.data, self.train_idx,
                                     run.train_species or None)
        else:
            self.scale_source = fit_statistics(self.model, self.data, self.train_idx,
                                               run.energy_scale)
        #: Names of the parameters ``training.freeze`` (or ``train_species``) keeps fixed,
        #: and the gradient masks of ``train_species`` ((parameter, 0/1 tensor) pairs).
        masks = {}
        if run.train_species:
            self.frozen, masks = restrict_to_species(self.model, run.train_species)
        else:
            self.frozen = freeze_parameters(self.model, run.freeze)
        self.grad_masks = [(p, masks[n]) for n, p in self.model.named_parameters() if n in masks]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.model, cfg.optimizer, no_decay=list(masks))
        #: The initial weights that ``optimizer.anchor_decay`` pulls toward.
        self.anchor = Anchor(self.model, cfg.optimizer.anchor_decay)
        self.lr_factors = [g["lr_factor"] for g in self.optimizer.param_groups]
        self.steps_per_epoch = math.ceil(len(self.epoch_idx) / run.batch_size)
        total = run.epochs * self.steps_per_epoch
        self.total_steps = min(total, run.max_steps) if run.max_steps else total
        self.schedule = WarmupCosine(cfg.optimizer.lr, cfg.schedule, self.total_steps)
        self.ema = EMA(self.model, cfg.optimizer.ema_decay)
        self.probe_mode = cfg.loss.fc_probe_mode if needs_probes(cfg.loss) else None
        self.progress: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0,
                                         "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0,
                                         "stopped": False, "running": [0.0] * (len(STATS) + 1)}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.log = MetricsLog(self.out)

    # ------------------------------------------------------------------ steps
    def _rng(self, *key: int):
        return lambda i: np.random.default_rng([self.config.training.seed, *key, i])

    def train_step(self, global_batch: np.ndarray) -> tuple[torch.Tensor, float]:
        """One optimizer step on a global batch; returns the summed stats and the rate."""
        step = self.progress["step"]
        local = shard(global_batch, self.dist.rank, self.dist.world_size)
        norms = self.data.normalizers(global_batch)
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.schedule.apply(self.optimizer)
        stats = torch.zeros(len(STATS), dtype=self.dtype, device=self.device)
        if len(local):
            batch = self.data.batch(local, self.probe_mode, self.config.loss.fc_probes,
                                    self._rng(1, step))
            total, terms, errors = batch_loss(self.model, batch, self.config.loss, norms)
            total.backward()
            stats = stats_vector(total, terms, errors)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for p, mask in self.grad_masks:
            p.grad.mul_(mask)
        dist.all_reduce_gradients(self.params, self.dist)
        clip = self.config.optimizer.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(self.params, clip if clip > 0 else math.inf)
        if not torch.isfinite(norm):
            raise FloatingPointError(
                f"non-finite gradient at step {step + 1}; the weights were not updated and "
                f"{self.out / 'last.pt'} holds the last good state (try a lower optimizer.lr, "
                f"grad_clip or training.dtype float64)")
        self.optimizer.step()
        self.anchor.pull(self.optimizer)
        self.ema.update(self.model)
        self.progress["step"] = step + 1
        return dist.all_reduce_sum(stats, self.dist), lr

    def validate(self) -> dict[str, float]:
        """Loss terms and MAEs of the averaged weights on the validation structures.

        Probes are the same at every call (seeded by the structure only).
        """
        if len(self.val_idx) == 0:
            return {}
        self.eval_model.load_state_dict(self.ema.averaged_state(self.model))
        norms = self.data.normalizers(self.val_idx)
        size = self.config.training.batch_size
        stats = torch.zeros(len(STATS), dtype=self.dtype, device=self.device)
        mine = shard(self.val_idx, self.dist.rank, self.dist.world_size)
        for start in range(0, len(mine), size):
            batch = self.data.batch(mine[start: start + size], self.probe_mode,
                                    self.config.loss.fc_probes, self._rng(2))
            total, terms, errors = batch_loss(self.eval_model, batch, self.config.loss, norms,
                                              create_graph=False)
            stats += stats_vector(total, terms, errors)
        return summarize(dist.all_reduce_sum(stats, self.dist), 1, "val", self.config.loss, norms)

    # ------------------------------------------------------------ checkpoints
    def checkpoint_dict(self) -> dict[str, Any]:
        """The resumable state (see :mod:`ase_fcnet.training.checkpointing`)."""
        return {"config": self.config.to_dict(), "model": model_to_dict(self.model),
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "ema": self.ema.state_dict(), "progress": dict(self.progress),
                "best_state": self.best_state, "history": list(self.log.rows),
                "split": {"n": len(self.data), "train": self.train_idx.tolist(),
                          "val": self.val_idx.tolist()},
                "rng": rng_state()}

    def save_checkpoint(self, path: str | Path | None = None) -> None:
        """Write the checkpoint (rank 0 only), by default to ``output_dir/last.pt``."""
        if self.dist.is_main:
            write_checkpoint(self.checkpoint_dict(), path or self.out / "last.pt")

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore the state of :meth:`checkpoint_dict` from a checkpoint file."""
        data = read_checkpoint(path)
        try:
            same = model_config_from_dict(data["config"]["model"]) == self.config.model
        except ValueError:
            same = False
        if not same:
            raise CheckpointError(f"{path}: was written for another model configuration")
        split = data["split"]
        if (split["n"] != len(self.data) or split["train"] != self.train_idx.tolist()
                or split["val"] != self.val_idx.tolist()):
            raise CheckpointError(f"{path}: was written for another dataset or split "
                                  f"({split['n']} structures, now {len(self.data)})")
        self.model.load_state_dict(data["model"]["state_dict"])
        try:
            self.optimizer.load_state_dict(data["optimizer"])
        except ValueError as err:
            raise CheckpointError(f"{path}: its optimizer state does not fit this config's "
                                  f"parameter groups (training.freeze and "
                                  f"optimizer.backbone_lr_factor must stay as they were: "
                                  f"{err})") from err
        for group, factor in zip(self.optimizer.param_groups, self.lr_factors):
            group["lr_factor"] = factor
        self.schedule.load_state_dict(data["schedule"])
        self.ema.load_state_dict(data["ema"])
        self.progress = dict(data["progress"])
        self.best_state = data["best_state"]
        self.log.rows = list(data["history"])
        set_rng_state(data["rng"])

    def data_summary(self) -> str:
        """One line: training/validation structures, force-constant repeats, steps per epoch."""
        n_fc = sum(self.data.has(i, "force_constants") for i in self.train_idx)
        repeat = self.config.data.fc_repeat
        times = f", each {repeat}x per epoch" if repeat > 1 else ""
        n_train = sum(p.numel() for p in self.params)
        n_all = sum(p.numel() for p in self.model.parameters())
        return (f"{len(self.train_idx)} training structures ({n_fc} with force constants{times}), "
                f"{len(self.val_idx)} validation; {self.steps_per_epoch} steps per epoch; "
                f"{architecture_of(self.config.model)} model, {n_train:,} of {n_all:,} "
                f"parameters trained")

    # ------------------------------------------------------------------- loop
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until the epochs, ``max_steps`` or the patience run out.

        Parameters
        ----------
        resume : bool
            Continue from ``output_dir/last.pt``. Without it, an output folder
            that already holds ``last.pt`` is refused (nothing is overwritten).
            The model section and the data split must be those of the
            checkpoint; other settings may change (a larger budget extends the
            run, and the learning-rate schedule follows the new budget).

        Returns
        -------
        TrainResult
        """
        run = self.config.training
        last = self.out / "last.pt"
        if resume:
            self.load_checkpoint(last)
            if self._budget_spent():
                if self.dist.is_main:
                    tqdm.write(f"{self.out}: the run already ended at step {self.progress['step']} "
                               f"(epoch {self.progress['epoch']}); nothing to train and model.pt "
                               "left as it is. Raise training.max_steps or training.epochs (or "
                               "patience) in the config to extend it.")
                return self._finish(save=False)
        elif last.exists():
            raise FileExistsError(f"{self.out} already holds a training run (last.pt); resume "
                                  f"it (fcnet train --resume) or choose another output_dir")
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.out, OUTPUT_FILES)
        p = self.progress
        if run.progress and self.dist.is_main:
            tqdm.write(self.data_summary())
        bar = tqdm(total=self.total_steps, initial=p["step"], desc="training", unit="step",
                   disable=not (run.progress and self.dist.is_main), dynamic_ncols=True)
        start_time = time.perf_counter() - p.get("elapsed_s", 0.0)
        lr = self.schedule.value(max(p["step"] - 1, 0))
        try:
            while not p["stopped"] and p["epoch"] < run.epochs:
                batches = epoch_batches(self.epoch_idx, run.batch_size, run.seed, p["epoch"])
                for b in range(p["batch_in_epoch"], len(batches)):
                    if p["step"] >= self.total_steps:
                        break
                    stats, lr = self.train_step(batches[b])
                    p["batch_in_epoch"] = b + 1
                    p["running"] = [x + y for x, y in zip(p["running"], stats.tolist() + [1.0])]
                    bar.update(1)
                    bar.set_postfix(self._postfix(lr), refresh=False)
                    if p["step"] % run.checkpoint_interval == 0:
                        p["elapsed_s"] = time.perf_counter() - start_time
                        self.save_checkpoint()
                self._end_epoch(lr, time.perf_counter() - start_time)
                self.save_checkpoint()
        finally:
            bar.close()
        return self._finish()

    def _budget_spent(self) -> bool:
        """Whether a resumed run has no steps, epochs or patience left under this config.

        A finished checkpoint is marked stopped; a config with a larger
        ``max_steps``, ``epochs`` or ``patience`` re-opens it (the extension
        the resume promises), so the mark is recomputed from the budget.
        """
        p, run = self.progress, self.config.training
        patience_hit = (len(self.val_idx) > 0 and run.patience is not None
                        and p["bad_epochs"] >= run.patience)
        p["stopped"] = patience_hit or p["step"] >= self.total_steps or p["epoch"] >= run.epochs
        return p["stopped"]

    def _postfix(self, lr: float) -> dict[str, str]:
        run = self.progress["running"]
        summary = summarize(torch.tensor(run[:-1], dtype=torch.float64), max(int(run[-1]), 1),
                            "train", self.config.loss)
        out = {"loss": f"{summary['train_loss']:.3g}", "lr": f"{lr:.2g}"}
        out.update({k[6:]: f"{v:.3g}" for k, v in summary.items() if k.endswith("_mae")})
        return out

    def _end_epoch(self, lr: float, elapsed: float) -> None:
        p, run = self.progress, self.config.training
        n_steps = max(int(p["running"][-1]), 1)
        p["elapsed_s"] = elapsed
        row = {"epoch": p["epoch"] + 1, "step": p["step"], "lr": lr, "time_s": elapsed}
        row.update(summarize(torch.tensor(p["running"][:-1], dtype=torch.float64), n_steps,
                             "train", self.config.loss, self.data.normalizers(self.epoch_idx)))
        val = self.validate()
        row.update(val)
        if not val or val["val_loss"] < p["best_loss"]:
            p["best_loss"] = val.get("val_loss", math.nan)
            p["best_epoch"], p["bad_epochs"] = p["epoch"] + 1, 0
            self.best_state = {k: v.cpu() for k, v in self.ema.averaged_state(self.model).items()}
        else:
            p["bad_epochs"] += 1
        if val and run.patience is not None and p["bad_epochs"] >= run.patience:
            p["stopped"] = True
        if p["step"] >= self.total_steps:
            p["stopped"] = True
        p["epoch"] += 1
        p["batch_in_epoch"] = 0
        p["running"] = [0.0] * (len(STATS) + 1)
        self.log.append(row)
        if self.dist.is_main:
            self.log.write()

    def _finish(self, save: bool = True) -> TrainResult:
        p, run = self.progress, self.config.training
        if self.best_state is not None:
            self.eval_model.load_state_dict(self.best_state)
        best = next((r for r in self.log.rows if r["epoch"] == p["best_epoch"]), {})
        metadata = {
            "elements": list(self.config.model.species),
            "dataset_size": len(self.data), "n_train": len(self.train_idx),
            "n_validation": len(self.val_idx),
            "validation_metrics": {k: v for k, v in best.items() if k.startswith("val_")},
            "best_epoch": p["best_epoch"],
            "budget": {"steps_done": p["step"], "epochs_done": p["epoch"],
                       "step_limit": self.total_steps, "epoch_limit": run.epochs,
                       "batch_size": run.batch_size, "wall_time_s": p.get("elapsed_s", 0.0),
                       "early_stopped": p["bad_epochs"] >= (run.patience or math.inf)},
            "steps": p["step"], "epochs": p["epoch"], "world_size": self.dist.world_size,
            "energy_scale_source": self.scale_source,
            "architecture": architecture_of(self.config.model),
            # paths relative to output_dir: no machine's absolute paths in a model file
            "train_config": self.config.to_dict(relative_to=self.out),
        }
        if self.init_metadata:
            metadata["fine_tuned_from"] = self.init_metadata
        if self.dist.is_main and save:
            save_model(self.eval_model, self.out / "model.pt", metadata=metadata)
        dist.barrier(self.dist)
        self.eval_model.metadata = metadata
        return TrainResult(self.eval_model, list(self.log.rows), p["best_epoch"], p["step"],
                           self.out)


def train(config: TrainConfig, samples: Sequence[Sample] | None = None,
          resume: bool = False) -> TrainResult:
    """Build a :class:`Trainer` and run it (see :meth:`Trainer.fit`)."""
    trainer = Trainer(config, samples)
    try:
        return trainer.fit(resume=resume)
    finally:
        dist.teardown(trainer.dist)
