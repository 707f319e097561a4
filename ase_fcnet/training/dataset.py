"""Samples → cached graphs → batches with their labels and force-constant probes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ase_fcnet.data.sample import Sample
from ase_fcnet.graph import AtomicGraph, atoms_to_graph, batch_graphs, species_indices
from ase_fcnet.training.probes import sample_probes, stack_probes
from ase_fcnet.training.terms import LOSS_TERMS

#: Loss terms and the label each needs.
LABEL_OF_TERM = {t.name: t.label for t in LOSS_TERMS}


def source_group(source: str) -> str:
    """The dataset a sample came from: its source without the ``#k`` snapshot index."""
    return source.split("#", 1)[0]


def split_indices(groups: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split into training and validation indices, whole groups at a time.

    Samples of one group (the displaced snapshots and force constants of one
    crystal's phonopy dataset) always land on the same side, so validation
    never sees a crystal that training saw.

    Parameters
    ----------
    groups : sequence of str, length n — group key of each sample
    fraction : float — validation fraction of the groups; at least one
        validation group when > 0, and at least one training group always
    seed : int

    Raises
    ------
    ValueError
        ``fraction > 0`` with a single group: no split can be made.

    Returns
    -------
    train, val : ndarray of int, sorted
    """
    keys = sorted(set(groups))
    if not keys:
        raise ValueError("no training structures")
    if fraction > 0 and len(keys) < 2:
        raise ValueError(f"data.validation_fraction {fraction:g} cannot be honoured: the data hold "
                         f"{len(keys)} dataset ({keys[0]}) and validation takes whole datasets, so "
                         "that it never sees a crystal training saw; add datasets, or set "
                         "data.validation_fraction: 0 to train without validation")
    n_val = 0 if fraction <= 0 or len(keys) < 2 else min(max(1, int(round(fraction * len(keys)))),
                                                          len(keys) - 1)
    perm = np.random.default_rng(seed).permutation(len(keys))
    val_keys = {keys[k] for k in perm[:n_val]}
    is_val = np.array([g in val_keys for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def epoch_batches(indices: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled global batches of one epoch (a function of seed and epoch only).

    Returns
    -------
    list of ndarray of int — the last batch may be smaller
    """
    order = np.random.default_rng([seed, 7, epoch]).permutation(np.asarray(indices))
    return [order[k: k + batch_size] for k in range(0, len(order), batch_size)]


def repeat_where(indices: np.ndarray, mask: Sequence[bool], repeat: int) -> np.ndarray:
    """``indices`` with every index whose ``mask`` entry is true listed ``repeat`` times.

    Parameters
    ----------
    indices : ndarray of int, shape (n,)
    mask : sequence of bool, shape (n,)
    repeat : int, >= 1

    Returns
    -------
    ndarray of int, shape (n + (repeat - 1) * sum(mask),) — the extra copies follow the originals
    """
    indices = np.asarray(indices)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != indices.shape:
        raise ValueError(f"mask has shape {mask.shape}, indices {indices.shape}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    return np.concatenate([indices] + [indices[mask]] * (repeat - 1))


def shard(indices: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This process's part of a global batch (round robin; may be empty)."""
    return np.asarray(indices)[rank::world_size]


@dataclass
class Batch:
    """Inputs and labels of a batch of B structures, N atoms (tensors on the device).

    Attributes
    ----------
    graph : AtomicGraph
    n_atoms : Tensor (B,)
    energy, stress : Tensor (B,) eV and (B, 6) eV/Å³ (zero where unlabelled)
    forces : Tensor (N, 3) eV/Å (zero where unlabelled)
    weights : dict term → Tensor (B,) — sample weight, 0 where the label is missing
    vectors, fc_targets : Tensor (K, N, 3) or None — probes and reference Φ·v, eV/Å²
    fc_counts : Tensor (B,) — probes per structure (block mode: atoms)
    fc_rows : Tensor (B,) — probe vectors per structure (block mode: 3 per atom)
    masses : Tensor (N,) — atomic masses, amu
    """

    graph: AtomicGraph
    n_atoms: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    weights: dict
    vectors: torch.Tensor | None
    fc_targets: torch.Tensor | None
    fc_counts: torch.Tensor
    fc_rows: torch.Tensor
    masses: torch.Tensor


class StructureSet:
    """The dataset as graphs, each built once and cached (on the training device).

    Parameters
    ----------
    samples : sequence of Sample
    cutoff : float, Å
    species : sequence of str
    dtype : torch.dtype
    device : torch.device
    """

    def __init__(self, samples: Sequence[Sample], cutoff: float, species: Sequence[str],
                 dtype: torch.dtype, device: torch.device):
        self.samples = list(samples)
        self.cutoff, self.species = float(cutoff), list(species)
        self.dtype, self.device = dtype, device
        self._graphs: dict[int, AtomicGraph] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def graph(self, i: int) -> AtomicGraph:
        """Graph of structure i (built on first use)."""
        i = int(i)
        if i not in self._graphs:
            try:
                self._graphs[i] = atoms_to_graph(self.samples[i].atoms, self.cutoff, self.species,
                                                 dtype=self.dtype, device=self.device)
            except ValueError as err:
                raise ValueError(f"{self.samples[i].source}: {err}") from err
        return self._graphs[i]

    def has(self, i: int, label: str) -> bool:
        """Whether structure i carries ``label`` (energy, forces, stress, force_constants)."""
        return getattr(self.samples[int(i)], label) is not None

    def label_weight(self, i: int, term: str) -> float:
        """Weight of structure i in loss ``term`` (0 without the label)."""
        sample = self.samples[int(i)]
        return sample.weight if self.has(i, LABEL_OF_TERM[term]) else 0.0

    def normalizers(self, indices: Sequence[int]) -> dict[str, float]:
        """``Σ_s w_s`` per loss term over ``indices`` (the global batch)."""
        return {term: float(sum(self.label_weight(i, term) for i in indices))
                for term in LABEL_OF_TERM}

    def counts(self, indices: Sequence[int]) -> dict[str, int]:
        """Number of structures with each label among ``indices``."""
        labels = ("energy", "forces", "stress", "force_constants")
        return {lab: int(sum(self.has(i, lab) for i in indices)) for lab in labels}

    def batch(self, indices: Sequence[int], probe_mode: str | None = None, n_probes: int = 0,
              rng_of: Callable[[int], np.random.Generator] | None = None) -> Batch:
        """Collate structures into a :class:`Batch`.

        Parameters
        ----------
        indices : sequence of int (non-empty)
        probe_mode : {"block", "row", "random"} or None
            None: no force-constant probes.
        n_probes : int
        rng_of : callable(structure index) → numpy Generator
            Source of the probes of each structure (so that a structure's
            probes do not depend on which process or batch position it has).
        """
        samples = [self.samples[int(i)] for i in indices]
        n_atoms = [s.n_atoms for s in samples]
        t = dict(dtype=self.dtype, device=self.device)

        def labels(name, shape):
            return [np.zeros(shape(s)) if getattr(s, name) is None else getattr(s, name)
                    for s in samples]

        energy = [0.0 if s.energy is None else s.energy for s in samples]
        forces = np.concatenate(labels("forces", lambda s: (s.n_atoms, 3)))
        stress = np.stack(labels("stress", lambda s: (6,)))
        weights = {term: torch.tensor([self.label_weight(i, term) for i in indices], **t)
                   for term in LABEL_OF_TERM}
        vectors = targets = None
        counts = rows = np.zeros(len(samples), dtype=np.int64)
        if probe_mode is not None and any(s.force_constants is not None for s in samples):
            probes = [None if s.force_constants is None else
                      sample_probes(s.fc_atoms, s.force_constants, probe_mode, n_probes,
                                    rng_of(int(i)))
                      for i, s in zip(indices, samples)]
            v, tg, counts, rows = stack_probes(probes, n_atoms)
            vectors, targets = torch.tensor(v, **t), torch.tensor(tg, **t)
        return Batch(
            graph=batch_graphs([self.graph(i) for i in indices]),
            n_atoms=torch.tensor(n_atoms, **t),
            energy=torch.tensor(energy, **t),
            forces=torch.tensor(forces, **t),
            stress=torch.tensor(stress, **t),
            weights=weights,
            vectors=vectors,
            fc_targets=targets,
            fc_counts=torch.tensor(counts, device=self.device),
            fc_rows=torch.tensor(rows, device=self.device),
            masses=torch.tensor(np.concatenate([s.atoms.get_masses() for s in samples]), **t),
        )


def check_samples(samples: Sequence[Sample], species: Sequence[str], trained=()) -> None:
    """Refuse empty data, atoms the model lacks, and ``trained`` elements absent from the data."""
    if not samples:
        raise ValueError("no training data: the dataset is empty")
    for s in samples:
        if not isinstance(s, Sample):
            raise TypeError(f"training data must be Sample objects, got {type(s).__name__}")
        try:
            species_indices(s.atoms.numbers, species)
        except ValueError as err:
            raise ValueError(f"{s.source}: {err}; add it to model.species") from err
    present = set().union(*(s.atoms.get_chemical_symbols() for s in samples)) if trained else ()
    absent = [el for el in trained if el not in present]
    if absent:
        raise ValueError(f"training.train_species: no atom of {', '.join(absent)} in the "
                         f"training data, so nothing of it would train")


def with_force_constants(samples: Sequence[Sample]) -> list[Sample]:
    """The samples that carry force constants (``data.force_constants_only``)."""
    kept = [s for s in samples if s.force_constants is not None]
    if not kept:
        raise ValueError(f"data.force_constants_only: none of the {len(samples)} samples "
                         "carries force constants")
    return kept
