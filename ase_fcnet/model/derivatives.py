"""Forces, stress and second derivatives of the energy by automatic differentiation.

Sign conventions follow ASE: forces F = −∂E/∂r (eV/Å); stress σ = (1/V) ∂E/∂ε
(eV/Å³, Voigt order xx, yy, zz, yz, xz, xy); Hessian H = ∂²E/∂r∂r (eV/Å²), so
phonopy's force constants are Φ_ij^ab = H[3i+a, 3j+b].
"""
from __future__ import annotations

from typing import Callable

import torch

from ase_fcnet.graph import AtomicGraph

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))

#: Fraction of free GPU memory that batched Hessian rows may use.
GPU_MEMORY_FRACTION = 0.5

#: CPU rows go to several Python threads only with at least this many rows per
#: thread: 24 rows (P1 SiC) ran 1.3-1.5x faster in 2 threads, 5 rows (quartz)
#: and 2 rows (NaCl) not at all (benchmarks/hvp_threads.py, force_constants.py).
MIN_ROWS_PER_THREAD = 4


def energy_forces_stress(
    model: torch.nn.Module,
    graph: AtomicGraph,
    forces: bool = True,
    stress: bool = False,
    create_graph: bool = False,
    vectors: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Energies and their derivatives from one forward pass.

    Parameters
    ----------
    model : torch.nn.Module — a model of any registered architecture
    graph : AtomicGraph
        B structures, N atoms in all.
    forces, stress : bool
        Which first derivatives to return. Stress needs periodic cells.
    create_graph : bool
        Keep the graph of the derivatives (for losses on them in training).
    vectors : Tensor, shape (K, N, 3), optional
        Probe directions: ``H·v`` for each, one backward pass each through the
        same first-derivative graph (training's force-constant losses).

    Returns
    -------
    dict with ``energy`` (B,) eV; ``forces`` (N, 3) eV/Å; ``stress`` (B, 6)
    eV/Å³; ``hvp`` (K, N, 3) eV/Å² times the vectors' length
    """
    need_pos = forces or vectors is not None
    positions = graph.positions.detach().requires_grad_(need_pos)
    cell = graph.cell.detach()
    inputs = [positions] if need_pos else []
    if stress:
        strain = torch.zeros_like(cell).requires_grad_(True)
        eye_plus = torch.eye(3, dtype=cell.dtype, device=cell.device) + strain
        positions_s = torch.einsum("ni,nij->nj", positions, eye_plus[graph.batch])
        cell_s = cell @ eye_plus
        inputs.append(strain)
    else:
        positions_s, cell_s = positions, cell
    energy = model(positions_s, cell_s, graph.species, graph.edge_index, graph.shifts, graph.batch)
    out = {"energy": energy}
    if not inputs:
        return out
    keep = create_graph or vectors is not None
    grads = torch.autograd.grad(energy.sum(), inputs, create_graph=keep)
    if forces:
        out["forces"] = -grads[0]
    if stress:
        volume = torch.linalg.det(cell).abs()
        g = grads[-1]
        sym = 0.5 * (g + g.transpose(1, 2)) / volume[:, None, None]
        out["stress"] = torch.stack([sym[:, a, b] for a, b in VOIGT], dim=1)
    if vectors is not None:
        vectors = vectors.to(dtype=positions.dtype, device=positions.device)
        rows = [torch.autograd.grad(grads[0], positions, v, retain_graph=True,
                                    create_graph=create_graph)[0] for v in vectors]
        out["hvp"] = torch.stack(rows) if rows else torch.zeros_like(vectors)
    return out


def _gpu_chunk(one_row: Callable[[], torch.Tensor], device: torch.device) -> int:
    """Rows per batched call that fit in the free GPU memory (measured on one row)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    one_row()
    per_row = max(torch.cuda.max_memory_allocated(device) - before, 1)
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, int(GPU_MEMORY_FRACTION * free / per_row))


def graph_hessian_vector_products(
    model: torch.nn.Module,
    graph: AtomicGraph,
    vectors: torch.Tensor,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    row_threads: int | None = None,
) -> torch.Tensor:
    """Exact directional derivatives of the forces: H·v for each vector v.

    One forward pass and one first-derivative graph are built, then each
    product is one more backward pass through that graph. On a GPU rows are
    batched with ``is_grads_batched`` in chunks sized to the free memory (or
    ``chunk_size``). On CPU (where batching gave no speed-up and costs memory
    per row in flight) they run as a plain loop, split over as many Python
    threads as torch has intra-op threads when there are at least
    ``MIN_ROWS_PER_THREAD`` rows per thread, each thread with one intra-op
    thread: the second backward pass parallelises poorly inside torch, and
    24 rows side by side were 1.04–1.18× faster on 2 cores with the ``fcnet``
    command's allocator setting, 1.29–1.39× without it
    (``benchmarks/hvp_threads.py``). The results are the same to the bit.

    Parameters
    ----------
    model : torch.nn.Module — a model of any registered architecture
    graph : AtomicGraph
        N atoms in B structures. The Hessian of a batch is block-diagonal,
        so one vector can probe every structure of the batch at once.
    vectors : Tensor, shape (K, N, 3)
        Directions (any length; the result is linear in them), Å.
    chunk_size : int, optional
        GPU batch of rows; ignored on CPU.
    progress : callable(done, total), optional
    row_threads : int, optional
        CPU only: Python threads the rows are split over (default: torch's
        intra-op thread count), at most one per ``MIN_ROWS_PER_THREAD`` rows;
        1 runs a plain loop with torch's threads.

    Returns
    -------
    Tensor, shape (K, N, 3), eV/Å² times the vectors' length unit
    """
    positions = graph.positions.detach().requires_grad_(True)
    energy = model(positions, graph.cell, graph.species, graph.edge_index, graph.shifts,
                   graph.batch).sum()
    (grad,) = torch.autograd.grad(energy, positions, create_graph=True)
    vectors = vectors.to(dtype=grad.dtype, device=grad.device)
    k_total = vectors.shape[0]
    out = torch.empty_like(vectors)

    def rows(start: int, stop: int) -> torch.Tensor:
        v = vectors[start:stop]
        if stop - start == 1:
            return torch.autograd.grad(grad, positions, v[0], retain_graph=True)[0][None]
        return torch.autograd.grad(grad, positions, v, retain_graph=True,
                                   is_grads_batched=True)[0]

    n_threads = min(row_threads or torch.get_num_threads(), k_total // MIN_ROWS_PER_THREAD)
    if positions.device.type == "cpu" and n_threads > 1:
        _cpu_rows_in_threads(rows, out, n_threads, progress)
        return out
    if positions.device.type == "cuda" and k_total > 1:
        chunk = chunk_size or _gpu_chunk(lambda: rows(0, 1), positions.device)
    else:
        chunk = 1
    for start in range(0, k_total, chunk):
        stop = min(start + chunk, k_total)
        out[start:stop] = rows(start, stop).detach()
        if progress is not None:
            progress(stop, k_total)
    return out


def _cpu_rows_in_threads(rows: Callable[[int, int], torch.Tensor], out: torch.Tensor,
                         n_threads: int, progress: Callable[[int, int], None] | None) -> None:
    """Fill ``out[k] = rows(k, k + 1)`` from ``n_threads`` Python threads, 1 intra-op thread each.

    The threads share one first-derivative graph (``retain_graph=True``, which
    torch's autograd supports from several threads). torch's intra-op thread
    count is process-wide: it is set to 1 for the duration and restored.
    """
    import threading

    total, done, errors = out.shape[0], [0], []
    lock = threading.Lock()

    def work(indices: range) -> None:
        try:
            for k in indices:
                out[k] = rows(k, k + 1)[0].detach()
                with lock:
                    done[0] += 1
                    if progress is not None:
                        progress(done[0], total)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(err)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        threads = [threading.Thread(target=work, args=(range(t, total, n_threads),))
                   for t in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        torch.set_num_threads(before)
    if errors:
        raise errors[0]


def hessian(
    model: torch.nn.Module,
    graph: AtomicGraph,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The full Hessian ∂²E/∂r∂r (block-diagonal for a batch).

    Returns
    -------
    Tensor, shape (3N, 3N), eV/Å²
    """
    n = graph.n_atoms
    eye = torch.eye(3 * n, dtype=graph.positions.dtype, device=graph.positions.device)
    rows = graph_hessian_vector_products(model, graph, eye.reshape(3 * n, n, 3), chunk_size, progress)
    return rows.reshape(3 * n, 3 * n)
