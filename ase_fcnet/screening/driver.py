"""``screen``: phonons of many materials, one row each in an ASE database, resumable.

The driver (this process) reads the inputs, works out each material's key,
skips the materials the database already has, hands the rest to workers
(local processes or Dask) and writes each result as it arrives. It is the
only writer of the database.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from ase_fcnet.screening import store
from ase_fcnet.screening.inputs import Material, collect
from ase_fcnet.screening.settings import (
    ScreenSettings,
    material_key,
    model_identity,
    settings_dict,
    settings_hash,
)
from ase_fcnet.screening.worker import WorkerConfig, compute


@dataclass
class ScreenResult:
    """What one call of :func:`screen` did.

    Attributes
    ----------
    db : str
        The results database.
    keys : list of str
        Keys of all materials of the inputs (done before, done now or failed).
    n_materials, n_skipped, n_done, n_failed : int
        Materials in the inputs; already in the database (skipped); computed
        now; failed now (including unreadable inputs).
    n_left : int
        Materials left for a later run (``limit``).
    elapsed_s : float
        Wall time of the run, s.
    settings : dict
    """

    db: str
    keys: list = field(default_factory=list)
    n_materials: int = 0
    n_skipped: int = 0
    n_done: int = 0
    n_failed: int = 0
    n_left: int = 0
    elapsed_s: float = 0.0
    settings: dict = field(default_factory=dict)

    def rows(self) -> list:
        """This screen's rows of the database (no ``data``)."""
        return store.rows_for(store.connect(self.db), self.keys)


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _local_configs(n: int, model_path: str, device: str, dtype, threads) -> list[WorkerConfig]:
    """One config per local worker: its device (one GPU each where there are GPUs) and threads."""
    from ase_fcnet.calculator import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        import torch

        count = torch.cuda.device_count()
        devices = [f"cuda:{k % count}" if resolved.index is None else str(resolved) for k in range(n)]
    else:
        devices = [str(resolved)] * n
    per_worker = threads or max(1, available_cores() // max(n, 1))
    return [WorkerConfig(model_path, dev, dtype, per_worker, tune_malloc=True) for dev in devices]


def default_workers(device: str = "auto") -> int:
    """One worker per GPU where there are GPUs, else one per core."""
    from ase_fcnet.calculator import resolve_device

    if resolve_device(device).type == "cuda":
        import torch

        return torch.cuda.device_count()
    return available_cores()


def screen(inputs=(), db: str = "screen.db", *, model=None, settings: ScreenSettings | None = None,
           workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None,
           threads: int | None = None, device: str = "auto", retry_failed: bool = False,
           limit: int | None = None, shuffle: bool = False, seed: int = 0, from_db: str | None = None,
           selection: str | None = None, progress: bool = True,
           log: Callable[[str], None] | None = None) -> ScreenResult:
    """Phonons of many materials, one row per material in an ASE database.

    Parameters
    ----------
    inputs : iterable
        Structure files, folders, glob patterns, ``Atoms`` or ``(name, Atoms)`` pairs.
    db : str
        Results database: a ``.db`` file (SQLite) or a ``postgresql://`` URL.
    model : str or path, optional
        Model file or bundled model's name (default: the bundled default).
    settings : ScreenSettings, optional
    workers : int, optional
        Local worker processes (default: one per core, or one per GPU);
        ``0`` computes in this process (no isolation from crashes).
    scheduler : str, optional
        Address of a running Dask scheduler: the work goes there.
    dask_local : int, optional
        Start a Dask LocalCluster with this many worker processes.
    threads : int, optional
        torch threads per worker (default: cores // workers, and 1 on an external scheduler).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    retry_failed : bool
        Compute again the materials whose rows say failed (the row is replaced).
    limit : int, optional
        Compute at most this many materials in this run.
    shuffle : bool
        Compute the pending materials in random order (``seed``).
    from_db, selection : str, optional
        Also take the structures of this ASE database, optionally an ``ase db`` selection.
    progress : bool
        Show a progress bar (rate, ETA, failures) on stderr.
    log : callable(str), optional
        Receives a few lines: what is skipped, what runs where.

    Returns
    -------
    ScreenResult
    """
    start = time.perf_counter()
    settings = settings or ScreenSettings()
    if scheduler is not None and dask_local is not None:
        raise ValueError("give either scheduler (an existing Dask scheduler) or dask_local, not both")
    for name, value in (("workers", workers), ("dask_local", dask_local), ("threads", threads), ("limit", limit)):
        if value is not None and (int(value) != value or value < (0 if name in ("workers", "limit") else 1)):
            raise ValueError(f"{name} must be a {'non-negative' if name in ('workers', 'limit') else 'positive'} "
                             f"integer, got {value!r}")
    model_name, model_path, model_sha = model_identity(model)
    executor = _executor(workers, scheduler, dask_local, threads, device, settings, str(model_path))
    materials = collect(inputs, from_db, selection)
    if not materials:
        raise ValueError("no structures found in the inputs")
    settings_sha = settings_hash(settings)
    for m in materials:
        m.key = material_key(m.structure_id, settings_sha, model_sha)
    database = store.connect(db)
    have = store.existing(database)
    result = ScreenResult(str(db), [m.key for m in materials], len(materials), settings=settings_dict(settings))
    meta = {"model": model_name, "model_sha256": model_sha, "settings_sha256": settings_sha}

    todo: list[Material] = []
    for m in materials:
        old = have.get(m.key)
        if old is not None and (old[1] == "done" or not retry_failed):
            result.n_skipped += 1
        else:
            todo.append(m)
    if shuffle:
        random.Random(seed).shuffle(todo)
    if limit is not None:
        result.n_left = max(0, len(todo) - limit)
        todo = todo[:limit]

    def meta_of(m: Material) -> dict:
        return {**meta, "name": m.name, "source": m.source}

    for m in [m for m in todo if m.error is not None]:
        failed = {"key": m.key, "atoms": None, "status": "failed",
                  "kvp": {"error": m.error, "error_type": m.error_type}}
        store.write(database, failed, meta_of(m), replace=have.get(m.key, (None,))[0])
        result.n_failed += 1
    todo = [m for m in todo if m.error is None]
    report = log or (lambda line: None)
    report(f"{result.n_materials} materials: {result.n_skipped} already in {db} (skipped), "
           f"{result.n_failed} unreadable, {len(todo)} to compute"
           + (f", {result.n_left} left for a later run (limit)" if result.n_left else ""))
    by_key = {m.key: m for m in todo}
    tasks = [(m.key, m.name, m.atoms) for m in todo]

    if not tasks:
        result.elapsed_s = time.perf_counter() - start
        return result
    bar = None
    try:
        with executor as pool:
            report(f"model {model_name} (sha256 {model_sha}); {pool.describe()}")
            bar = _progress_bar(len(tasks), progress, result.n_failed)
            for task, out in pool.run(tasks):
                m = by_key[task[0]]
                store.write(database, out, meta_of(m), replace=have.get(m.key, (None,))[0])
                if out["status"] == "done":
                    result.n_done += 1
                else:
                    result.n_failed += 1
                if bar is not None:
                    bar.set_postfix(failed=result.n_failed, refresh=False)
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        result.elapsed_s = time.perf_counter() - start
    return result


def _progress_bar(total: int, show: bool, failed: int):
    if not show or total == 0:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="material", desc="screen", dynamic_ncols=True, smoothing=0.1)
    bar.set_postfix(failed=failed)
    return bar


class _InProcess:
    """``workers=0``: compute in the driver's own process."""

    def __init__(self, settings, config):
        self.settings, self.config = settings, config

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> str:
        return "computing in this process"

    def run(self, tasks):
        for task in tasks:
            yield task, compute(task, self.settings, self.config)


def _executor(workers, scheduler, dask_local, threads, device, settings, model_path):
    """The (not yet started) pool that will compute: Dask, local processes or this process."""
    if scheduler is not None or dask_local is not None:
        from ase_fcnet.screening.dask_pool import DaskPool, require_dask

        require_dask()
        if threads is None:
            threads = max(1, available_cores() // dask_local) if dask_local else 1
        config = WorkerConfig(model_path, device, settings.dtype, threads, tune_malloc=True)
        return DaskPool(settings, config, scheduler=scheduler, local_workers=dask_local)
    n = default_workers(device) if workers is None else workers
    if n == 0:
        # the caller's process: its torch thread count is changed only when asked for
        config = _local_configs(1, model_path, device, settings.dtype, threads)[0]
        return _InProcess(settings, WorkerConfig(model_path, config.device, settings.dtype, threads))
    from ase_fcnet.screening.pool import LocalPool

    return LocalPool(n, settings, _local_configs(n, model_path, device, settings.dtype, threads))
