"""Cost of the force-constant step, estimated before it starts.

The cost of a Hessian-vector product grows linearly with the number of atoms
(every atom has the same neighbours in any supercell of one crystal), so a
small probe cell (the unit cell repeated to about :data:`PROBE_ATOMS` atoms)
is timed for one first-derivative graph with one product and with
``1 +`` :func:`probe_rows` products, and the tensors its autograd graphs keep are
counted (times :data:`MEMORY_FACTOR` for the intermediates of the products);
both are scaled to the supercell. Supercells of at most
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
def probe_rows() -> int:
    """Extra products timed on the probe: enough for the CPU row threads of
    :func:`ase_fcnet.model.derivatives.hessian_vector_products` to run as in the
    real step (4 per torch thread, at least 8). With 1 + 4 products in one
    thread, a row of the P1 360-atom cell cost 0.84 s; with 1 + 15 in two
    threads 0.34-0.44 s, and the 1080-direction run 0.51 s (fcnet-small, 2 cores).
    """
    import torch

    from ase_fcnet.model.derivatives import MIN_ROWS_PER_THREAD

    return max(8, MIN_ROWS_PER_THREAD * torch.get_num_threads())

#: Peak memory of the products per byte of autograd's saved tensors. Measured with
#: fcnet-small (2 CPU threads): the resident memory grew 2.0-2.2x the saved tensors
#: during 16 warm products (P1 NaCl 360 atoms, Al 216 and 512 atoms), and the whole
#: 1080-direction run of the 360-atom cell peaked at 1.52 GB resident, about 0.9 GB
#: above the loaded model, 3.8x its 0.24 GB of saved tensors.
MEMORY_FACTOR = 4.0
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
        Estimated memory of the products (autograd graphs and intermediates) and
        the results, bytes.
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
    n_probe, extra = len(probe), probe_rows()
    directions = np.zeros((1 + extra, n_probe, 3))
    for k in range(1 + extra):
        directions[k, (k * n_probe) // (1 + extra), k % 3] = 1.0
    with _SavedTensorBytes() as memory:  # also the warm-up (first-call costs)
        calculator.hessian_vector_products(probe, directions[:1])
    start = time.perf_counter()
    calculator.hessian_vector_products(probe, directions[:1])
    one = time.perf_counter() - start
    start = time.perf_counter()
    calculator.hessian_vector_products(probe, directions)
    more = time.perf_counter() - start
    row = max(more - one, 0.0) / extra
    setup = max(one - row, 0.0)
    scale = n_super / n_probe
    return CostEstimate(n_atoms=n_super, n_directions=n_directions, probe_atoms=n_probe,
                        seconds=scale * (setup + n_directions * row),
                        memory_bytes=MEMORY_FACTOR * scale * memory.total
                        + 8.0 * 3 * n_super * n_directions)
