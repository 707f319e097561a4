"""Materials on a Dask cluster: an existing scheduler, or a LocalCluster started here.

Workers only compute and return results (the same :func:`~worker.compute`
as local processes, so the model is loaded once per Dask worker process);
the driver writes every row. At most ``2 × workers`` materials are in flight,
so stopping the driver loses at most those. A worker that dies while
computing a material makes Dask retry it elsewhere, up to the scheduler's
``distributed.scheduler.allowed-failures``; then the task raises
``KilledWorker`` and the material is recorded as failed with that reason.
"""
from __future__ import annotations

import os

from ase_fcnet.screening.inputs import one_line
from ase_fcnet.screening.settings import ScreenSettings
from ase_fcnet.screening.worker import WorkerConfig, compute


#: Dask settings of the LocalCluster started here. By default every worker samples its task
#: thread's stack every 10 ms (profiler), checks its event loop every 20 ms and its memory
#: every 100 ms, in threads that take the GIL and the cores from the task. On 2 busy cores,
#: with the profiler off, a LocalCluster of 2 took 17-24 % longer than 2 local worker
#: processes with the default checks and 10-11 % with these (74 materials, two ad hoc pairs
#: of runs; docs/benchmarks.md, "Screening"). Memory limits are still enforced, once a second.
#: MALLOC_ARENA_MAX=1 (set before a worker process starts, the only time glibc reads it): a Dask
#: task runs in a second thread, which glibc serves from a malloc arena of its own. Such an
#: arena grows in 64 MB heaps, hands freed pages back and maps large blocks afresh whatever
#: ``tune_glibc_malloc`` asked, so the Hessian rows fault their memory in again and again.
#: With one arena the task thread shares the tuned main heap: a LocalCluster of 2 screening
#: the 74 benchmark crystals had 0.68-1.05 million minor page faults without it, 0.31-0.33
#: million with it; 2 local worker processes, computing in their main thread, 0.30-0.31
#: million (benchmarks/screening.py, docs/benchmarks.md "Screening").
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
}


def require_dask():
    """``distributed``, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError("Dask is not installed: pip install 'ase_fcnet[dask]' "
                          "(or pip install 'dask[distributed]')") from err
    return distributed


class DaskPool:
    """Run materials through a Dask client; use as a context manager.

    Parameters
    ----------
    settings : ScreenSettings
    config : WorkerConfig
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    local_workers : int, optional
        Start a LocalCluster with this many single-threaded worker processes instead.
    """

    def __init__(self, settings: ScreenSettings, config: WorkerConfig, scheduler: str | None = None,
                 local_workers: int | None = None):
        if (scheduler is None) == (local_workers is None):
            raise ValueError("give exactly one of scheduler and local_workers")
        self.settings, self.config = settings, config
        self.scheduler, self.local_workers = scheduler, local_workers
        self.cluster = self.client = None
        self._environ = {}

    def __enter__(self):
        distributed = require_dask()
        if self.scheduler is not None:
            self.client = distributed.Client(self.scheduler)
        else:
            import dask

            before = dict(os.environ)
            with dask.config.set(QUIET_CLUSTER):
                self.cluster = distributed.LocalCluster(
                    n_workers=self.local_workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=40)
            # Dask's nannies set the workers' start-up variables in this process too
            self._environ = {k: before.get(k) for k, v in os.environ.items() if before.get(k) != v}
            self.client = distributed.Client(self.cluster)
            self.client.wait_for_workers(self.local_workers)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            for key, value in self._environ.items():   # give this process its environment back
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return False

    @property
    def n_workers(self) -> int:
        """Worker threads the scheduler knows now (at least 1)."""
        info = self.client.scheduler_info()["workers"]
        return max(1, sum(w.get("nthreads", 1) for w in info.values()))

    def describe(self) -> str:
        """Where the work runs, in words."""
        where = f"Dask scheduler {self.scheduler}" if self.scheduler else "Dask LocalCluster"
        return f"{where}: {self.n_workers} worker thread(s) × {self.config.threads} torch thread(s)"

    def run(self, tasks):
        """Yield ``(task, result)`` as materials finish (see :meth:`LocalPool.run`)."""
        distributed = require_dask()
        pending = iter(tasks)
        in_flight = 2 * self.n_workers
        by_future = {}
        done = distributed.as_completed()
        for task in pending:
            future = self._submit(task)
            by_future[future] = task
            done.add(future)
            if len(by_future) >= in_flight:
                break
        for future in done:
            task = by_future.pop(future)
            try:
                result = future.result()
            except Exception as err:  # noqa: BLE001 - KilledWorker and friends: record and go on
                result = {"key": task[0], "atoms": task[2], "data": {}, "status": "failed",
                          "kvp": {"error": one_line(f"Dask worker failed: {err}"), "error_type": type(err).__name__}}
            future.release()
            nxt = next(pending, None)
            if nxt is not None:
                new = self._submit(nxt)
                by_future[new] = nxt
                done.add(new)
            yield task, result

    def _submit(self, task):
        return self.client.submit(compute, task, self.settings, self.config, pure=False,
                                  key=f"fcnet-screen-{task[0]}-{id(task)}")
