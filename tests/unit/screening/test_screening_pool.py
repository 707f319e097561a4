"""Local worker pool: a worker killed while computing marks that material failed; the rest go on."""
import signal

from ase.build import bulk
from screening_helpers import FAST

from ase_fcnet.pretrained import model_file
from ase_fcnet.screening.pool import LocalPool, death_reason
from ase_fcnet.screening.worker import WorkerConfig


class KillsItsWorker:
    """Unpickled in a worker, it kills that worker with a signal (as the OOM killer would)."""

    def __init__(self, signum):
        self.signum = signum

    def __reduce__(self):
        return signal.raise_signal, (self.signum,)


def test_death_reason_names_the_signal():
    assert "SIGKILL" in death_reason(-9) and "out of memory" in death_reason(-9)
    assert "SIGSEGV" in death_reason(-11)
    assert "code 3" in death_reason(3)


def test_killed_worker_fails_its_material_only():
    config = WorkerConfig(str(model_file("fcnet-small")), "cpu", None, 1)
    tasks = [("k1", "si", bulk("Si", "diamond", a=5.43)), ("k2", "boom", KillsItsWorker(signal.SIGKILL)),
             ("k4", "nacl", bulk("NaCl", "rocksalt", a=5.64))]
    with LocalPool(1, FAST, [config]) as pool:
        results = {task[0]: out for task, out in pool.run(tasks)}
        alive = pool.workers[0][0].is_alive()
    assert results["k1"]["status"] == "done" and results["k4"]["status"] == "done"
    assert results["k2"]["status"] == "failed" and results["k2"]["kvp"]["error_type"] == "WorkerDied"
    assert "SIGKILL" in results["k2"]["kvp"]["error"]
    assert alive                                     # a fresh worker took the dead one's place
    assert results["k1"]["kvp"]["worker_pid"] != results["k4"]["kvp"]["worker_pid"]
