"""glibc allocator setting used by the ``fcnet`` command (each check in a fresh process)."""
import subprocess
import sys
import textwrap

import pytest

from ase_fcnet.allocator import tune_glibc_malloc

ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from ase_fcnet.allocator import tune_glibc_malloc
    tuned = tune_glibc_malloc() if sys.argv[1] == "tuned" else False
    def rounds():
        for _ in range(10):
            arrays = [np.ones(1_000_000) for _ in range(10)]  # 10 x 8 MB live, then all freed
            del arrays
    rounds()  # warm up: the heap grows once
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds()
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
""")


def _faults(mode: str, env=None) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True,
                          timeout=120, env=env, check=True)
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


def _glibc() -> bool:
    import ctypes
    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL(None).gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc only")
def test_tuned_allocator_reuses_freed_memory():
    plain_flag, plain = _faults("plain")
    tuned_flag, tuned = _faults("tuned")
    assert (plain_flag, tuned_flag) == ("False", "True")
    # untuned, the 80 MB freed at the top of the heap is trimmed and faulted in
    # afresh each round (52,000 faults here); tuned, it is kept and reused (0)
    assert plain > 1_000
    assert tuned < plain / 10


def test_opt_out_by_environment(monkeypatch):
    monkeypatch.setenv("FCNET_MALLOC_TUNING", "0")
    assert tune_glibc_malloc() is False
