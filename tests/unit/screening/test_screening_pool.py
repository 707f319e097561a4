"""Worker pools: a worker killed while computing marks that material failed and the rest go on
(local processes and Dask); one local worker per GPU where there are GPUs."""
import signal

import pytest
import torch
from ase.build import bulk
from screening_helpers import FAST, DiesInDaskWorker

from ase_fcnet.pretrained import model_file
from ase_fcnet.screening import driver
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


def test_killed_dask_worker_fails_its_material_only():
    pytest.importorskip("distributed")
    import dask

    from ase_fcnet.screening.dask_pool import DaskPool

    config = WorkerConfig(str(model_file("fcnet-small")), "cpu", None, 1)
    # the dying material last: no other material reaches the worker after it (see DiesInDaskWorker)
    tasks = [("k1", "si", bulk("Si", "diamond", a=5.43)),
             ("k3", "nacl", bulk("NaCl", "rocksalt", a=5.64)),
             ("k2", "boom", DiesInDaskWorker(bulk("Si", "diamond", a=5.43)))]
    # no retries on other workers: the first death is the material's verdict
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with DaskPool(FAST, config, local_workers=1) as pool:
            results = {task[0]: out for task, out in pool.run(tasks)}
    assert results["k1"]["status"] == "done" and results["k3"]["status"] == "done"
    assert results["k2"]["status"] == "failed" and results["k2"]["kvp"]["error_type"] == "KilledWorker"
    assert results["k2"]["kvp"]["error"].startswith("Dask worker failed")
    assert "\n" not in results["k2"]["kvp"]["error"]


@pytest.fixture
def two_gpus(monkeypatch):
    """This process believes it has two CUDA devices (nothing is computed on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(driver, "available_cores", lambda: 8)


def test_one_local_worker_per_gpu(two_gpus):
    assert driver.default_workers("auto") == 2 and driver.default_workers("cpu") == 8
    configs = driver._local_configs(2, "model.pt", "auto", None, None)
    assert [c.device for c in configs] == ["cuda:0", "cuda:1"]
    assert [c.threads for c in configs] == [4, 4]            # the cores shared between workers
    more = driver._local_configs(3, "model.pt", "cuda", None, None)
    assert [c.device for c in more] == ["cuda:0", "cuda:1", "cuda:0"]
    pinned = driver._local_configs(2, "model.pt", "cuda:1", None, 1)
    assert [c.device for c in pinned] == ["cuda:1", "cuda:1"] and pinned[0].threads == 1
    assert [c.device for c in driver._local_configs(2, "model.pt", "cpu", None, None)] == ["cpu", "cpu"]


def test_dask_workers_start_with_one_malloc_arena_and_our_environment_is_restored():
    pytest.importorskip("distributed")
    import os

    from ase_fcnet.screening.dask_pool import DaskPool

    names = ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "PYTHONHASHSEED")
    before = {name: os.environ.get(name) for name in names}
    config = WorkerConfig(str(model_file("fcnet-small")), "cpu", None, 1)
    with DaskPool(FAST, config, local_workers=1) as pool:
        in_worker = pool.client.submit(os.getenv, "MALLOC_ARENA_MAX", pure=False).result()
    assert in_worker == "1"            # the task thread shares the main, tuned heap
    assert {name: os.environ.get(name) for name in names} == before
