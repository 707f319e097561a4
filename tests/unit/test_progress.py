"""Progress lines and stops on signals."""
import os
import signal
import threading

import pytest

from ase_fcnet import progress as prog
from ase_fcnet.progress import STOP, Progress, StopSignal, counted, stop_on_signals


def test_lines_at_tenths_with_an_estimate(monkeypatch):
    monkeypatch.setattr(prog, "MIN_LINE_INTERVAL", 0.0)
    lines = []
    bar = Progress(20, "directions", lines.append)
    for k in range(1, 21):
        bar.update(k)
    assert len(lines) == 9  # 10 %, 20 %, ... 90 %; none at the end
    assert lines[0].startswith("directions: 2/20 after") and "s left" in lines[0]


def test_no_lines_for_quick_work():
    lines = []
    bar = Progress(20, "directions", lines.append)
    for k in range(1, 21):
        bar.update(k)
    assert lines == []  # all within MIN_LINE_INTERVAL


def test_counted_wraps_calls():
    bar = Progress(3, "q-points")
    double = counted(lambda x: 2 * x, bar)
    assert [double(1), double(2)] == [2, 4] and bar.done == 2


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_raise_stop_and_stop_worker_updates(signum, code):
    before = signal.getsignal(signum)
    with pytest.raises(StopSignal) as err:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            threading.Event().wait(5)  # the handler interrupts this
    assert err.value.exit_code == code and isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signum) is before and not STOP.is_set()
    STOP.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            Progress(5, "rows").update(1)
    finally:
        STOP.clear()
