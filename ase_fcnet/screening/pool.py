"""Local worker processes, one material at a time each, that survive the death of a worker.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: when one of its
workers dies (killed, out of memory, segfault) the whole pool breaks and
every pending future fails with ``BrokenProcessPool``, without saying which
material killed it. Here each worker is a long-lived process with its own
pipe and is given one material at a time, so the driver always knows what a
dead worker was computing: that material is recorded as failed with the
signal or exit code, a fresh worker takes the dead one's place (loading the
model once more), and the run goes on. Workers are started with ``spawn``
(no copy of the driver's torch state) and leave when their pipe closes, so
they do not outlive a killed driver.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
from multiprocessing.connection import wait

from ase_fcnet.screening.settings import ScreenSettings
from ase_fcnet.screening.worker import WorkerConfig


def _worker_main(conn, settings: ScreenSettings, config: WorkerConfig) -> None:
    from ase_fcnet.screening.worker import calculator, compute

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    try:
        calculator(config)                        # load the model before the first material arrives
    except Exception:  # noqa: BLE001 - compute() raises it again and records it in each row
        pass
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        result = compute(task, settings, config)
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):  # the driver is gone: nobody to give the result to
            return


def death_reason(exitcode: int | None) -> str:
    """One line for how a worker process ended."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory, or by a user?)" if name == "SIGKILL" else ""
        return f"worker process died with {name}{hint} while computing this material"
    return f"worker process exited with code {exitcode} while computing this material"


class LocalPool:
    """``n_workers`` processes computing materials; use as a context manager.

    Parameters
    ----------
    n_workers : int
    settings : ScreenSettings
    configs : list of WorkerConfig
        One per worker (its device and thread count).
    """

    def __init__(self, n_workers: int, settings: ScreenSettings, configs: list[WorkerConfig]):
        self.settings = settings
        self.configs = configs
        self.context = mp.get_context("spawn")
        self.workers: list = [None] * n_workers

    def _start(self, slot: int):
        parent, child = self.context.Pipe()
        proc = self.context.Process(target=_worker_main, args=(child, self.settings, self.configs[slot]),
                                    daemon=True, name=f"fcnet-screen-{slot}")
        proc.start()
        child.close()
        self.workers[slot] = (proc, parent)

    def __enter__(self):
        for slot in range(len(self.workers)):
            self._start(slot)
        return self

    def __exit__(self, *exc):
        for proc, conn in filter(None, self.workers):
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
        for proc, _ in filter(None, self.workers):
            proc.join(timeout=5 if exc[0] is None else 0.5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        return False

    def describe(self) -> str:
        """Where the work runs, in words."""
        devices = sorted({c.device for c in self.configs})
        return (f"{len(self.workers)} local worker process{'es' * (len(self.workers) != 1)} × "
                f"{self.configs[0].threads} torch thread(s), device {', '.join(devices)}")

    def _send(self, slot: int, task) -> None:
        """Give ``task`` to worker ``slot``, first replacing the worker if it died while idle."""
        proc, conn = self.workers[slot]
        if proc.is_alive():
            try:
                conn.send(task)
                return
            except (BrokenPipeError, OSError):
                pass
        conn.close()
        proc.join(timeout=5)
        self._start(slot)
        self.workers[slot][1].send(task)

    def run(self, tasks):
        """Yield ``(task, result)`` as materials finish; ``result`` is :func:`~worker.compute`'s dict,
        or ``{"status": "failed", ...}`` when the worker died."""
        pending = iter(tasks)
        busy: dict[int, tuple] = {}
        exhausted = False
        while True:
            for slot in range(len(self.workers)):
                if slot in busy or exhausted:
                    continue
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                self._send(slot, task)
                busy[slot] = task
            if not busy:
                return
            watch = {}
            for slot in busy:
                proc, conn = self.workers[slot]
                watch[conn] = slot
                watch[proc.sentinel] = slot
            for ready in wait(list(watch)):
                slot = watch[ready]
                if slot not in busy:
                    continue
                proc, conn = self.workers[slot]
                result = None
                if conn.poll():
                    try:
                        result = conn.recv()
                    except (EOFError, OSError):
                        result = None
                if result is None and proc.is_alive():
                    continue
                task = busy.pop(slot)
                if result is None:
                    proc.join(timeout=5)
                    result = {"key": task[0], "atoms": task[2], "data": {}, "status": "failed",
                              "kvp": {"error": death_reason(proc.exitcode), "error_type": "WorkerDied"}}
                    conn.close()
                    self._start(slot)
                yield task, result
