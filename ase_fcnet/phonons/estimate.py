"""Cost of the force-constant step, estimated before it starts.

The cost of a Hessian-vector product grows linearly with the number of atoms
(every atom has the same neighbours in any supercell of one crystal), so a
small probe cell (the unit cell repeated to about :data:`PROBE_ATOMS` atoms)
is timed for one first-derivative graph plus one and two products, and the
tensors its autograd graphs keep are counted; both are scaled to the supercell. Supercells of at most
:data:`PROBE_THRESHOLD` atoms are not probed: the run itself is quick and its
first direction gives the estimate shown in the progress lines.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms

#: Supercells up to this many atoms are computed without a probe.
PROBE_THRESHOLD = 256
#: Approximate size of the probe cell.
PROBE_ATOMS = 64
#: Default refusal limit on the supercell size (``fcnet phonons --max-atoms``).
DEFAULT_MAX_ATOMS = 3000


@dataclass
class CostEstimate:
    """Estimated cost of the analytic force constants of one supercell.

    Attributes
    ----------
    n_atoms, n_directions : int
    probe_atoms : int
        Size of the timed probe cell.
    seconds : float
        Estimated wall time of the force-constant step, s.
    memory_bytes : float
        Estimated memory of the autograd graphs and the results, bytes.
    """

    n_atoms: int
    n_directions: int
    probe_atoms: int
    seconds: float
    memory_bytes: float

    def line(self) -> str:
        return (f"estimate from a {self.probe_atoms}-atom probe: about {self.seconds:.0f} s and "
                f"{self.memory_bytes / 1e9:.1f} GB for the force constants")


def available_memory() -> float | None:
    """Memory the system can still give (``MemAvailable``), bytes; None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _SavedTensorBytes:
    """Bytes of the distinct tensor storages autograd keeps for backward passes while active.

    These are what a Hessian-vector product holds in memory (the forward graph
    and the first-derivative graph built with ``create_graph``), counted
    exactly and independent of the memory allocator's caching.
    """

    def __enter__(self):
        import torch

        self.total, self._seen = 0, set()

        def pack(tensor):
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), tensor.device)
            if key not in self._seen:
                self._seen.add(key)
                self.total += storage.nbytes()
            return tensor

        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


def probe_cell(atoms: Atoms, n_target: int = PROBE_ATOMS) -> Atoms:
    """The unit cell repeated equally along its three vectors to at least ``n_target`` atoms."""
    reps = max(1, math.ceil((n_target / len(atoms)) ** (1 / 3)))
    return atoms.repeat((reps, reps, reps))


def estimate_cost(atoms: Atoms, calculator, n_super: int, n_directions: int) -> CostEstimate | None:
    """Time and memory of the force constants of an ``n_super``-atom supercell of ``atoms``.

    Parameters
    ----------
    atoms : Atoms
        Unit cell.
    calculator : object with ``hessian_vector_products(atoms, vectors)``
    n_super : int
        Atoms in the supercell.
    n_directions : int
        Hessian directions to compute.

    Returns
    -------
    CostEstimate or None
        None for supercells of at most :data:`PROBE_THRESHOLD` atoms or
        calculators without Hessian-vector products.
    """
    if n_super <= PROBE_THRESHOLD or not hasattr(calculator, "hessian_vector_products"):
        return None
    probe = probe_cell(atoms)
    n_probe = len(probe)
    directions = np.zeros((2, n_probe, 3))
    directions[0, 0, 0] = directions[1, n_probe // 2, 1] = 1.0
    with _SavedTensorBytes() as memory:  # also the warm-up (first-call costs)
        calculator.hessian_vector_products(probe, directions[:1])
    start = time.perf_counter()
    calculator.hessian_vector_products(probe, directions[:1])
    one = time.perf_counter() - start
    start = time.perf_counter()
    calculator.hessian_vector_products(probe, directions)
    two = time.perf_counter() - start
    row = max(two - one, 0.0)
    setup = max(one - row, 0.0)
    scale = n_super / n_probe
    return CostEstimate(n_atoms=n_super, n_directions=n_directions, probe_atoms=n_probe,
                        seconds=scale * (setup + n_directions * row),
                        memory_bytes=scale * memory.total + 8.0 * 3 * n_super * n_directions)
