"""Progress of long loops on stderr, and prompt, clean stops on SIGINT and SIGTERM.

A :class:`Progress` is a bar (tqdm) on a terminal or a line every tenth of
the work elsewhere (log files, pipes), with the elapsed time and an estimate
of the rest. Inside :func:`stop_on_signals`, SIGINT and SIGTERM raise
:class:`StopSignal` (a ``KeyboardInterrupt``) in the main thread, so
``finally`` blocks (temporary folders) run; both also set :data:`STOP`, which
:meth:`Progress.update` turns into ``KeyboardInterrupt`` in worker threads, so
threads computing Hessian rows end after their current row.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Callable, Iterator, TextIO

#: Seconds between two progress lines at least (quick steps print none).
MIN_LINE_INTERVAL = 2.0

#: Set by the handlers of :func:`stop_on_signals`; checked by :meth:`Progress.update`.
STOP = threading.Event()


class Progress:
    """Progress over ``total`` units of work.

    Parameters
    ----------
    total : int
    label : str
        What is counted, e.g. ``"Hessian directions"``.
    report : callable(str), optional
        Receives a line at every tenth of the work (when there is no bar),
        at most one per ``MIN_LINE_INTERVAL`` seconds.
    bar : bool
        A tqdm bar on ``stream`` (for terminals) instead of the lines.
    stream : text stream, optional
        The bar's stream, default ``sys.stderr``.
    """

    def __init__(self, total: int, label: str, report: Callable[[str], None] | None = None,
                 bar: bool = False, stream: TextIO | None = None):
        self.total, self.label = max(int(total), 0), label
        self.report = report or (lambda line: None)
        self.start = time.perf_counter()
        self.done = 0
        self._next_line = 0.1
        self._last_line = self.start
        self._lock = threading.Lock()
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, file=stream or sys.stderr,
                             dynamic_ncols=True, mininterval=0.5, leave=False)

    def update(self, done: int, total: int | None = None) -> None:
        """Record ``done`` units finished (a ``progress(done, total)`` callback).

        Raises
        ------
        KeyboardInterrupt
            When :data:`STOP` is set (a signal arrived), in whichever thread calls it.
        """
        if STOP.is_set():
            raise KeyboardInterrupt("stopped by a signal")
        with self._lock:
            step, self.done = done - self.done, done
            if self._bar is not None:
                self._bar.update(step)
            elif self.total and done / self.total >= self._next_line and done < self.total:
                self._next_line = (int(10 * done / self.total) + 1) / 10
                now = time.perf_counter()
                if now - self._last_line >= MIN_LINE_INTERVAL:
                    self._last_line = now
                    self.report(f"{self.label}: {self.line()}")

    def line(self) -> str:
        """``"done/total, elapsed s, about N s left"``."""
        elapsed = time.perf_counter() - self.start
        left = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        return f"{self.done}/{self.total} after {elapsed:.1f} s, about {left:.0f} s left"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def counted(func: Callable, progress: Progress) -> Callable:
    """``func`` wrapped to advance ``progress`` by one after each call."""

    def wrapper(*args, **kwargs):
        out = func(*args, **kwargs)
        progress.update(progress.done + 1)
        return out

    return wrapper


class StopSignal(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``exit_code`` is the shell's convention (128 + signal number)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.exit_code = signum, 128 + signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`StopSignal` (a ``KeyboardInterrupt``) and set :data:`STOP`.

    Does nothing outside the main thread (Python handles signals only there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        STOP.set()
        raise StopSignal(signum)

    STOP.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        STOP.clear()
