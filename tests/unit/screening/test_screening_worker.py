"""The worker's structure checks: what fcnet phonons refuses, a screen fails with the same reason."""
import pytest
from ase.build import bulk
from ase.io import read

from ase_fcnet.graph import StructureError
from ase_fcnet.screening.worker import check_material


@pytest.mark.parametrize("sites, words", [
    ("Na1 Na 0 0 0 0.8", "partial occupancy Na 0.8"),
    ("Na1 Na 0 0 0 0.5\nK1 K 0 0 0 0.5", "mixed occupancy Na 0.5 + K 0.5"),
])
def test_disordered_sites_fail_with_the_site(tmp_path, write_rocksalt_cif, sites, words):
    atoms = read(write_rocksalt_cif(tmp_path / "x.cif", sites))
    with pytest.raises(StructureError, match="site 0") as err:
        check_material(atoms, ["Na", "K", "Cl"], 5.0)
    assert words in str(err.value)


def test_ordered_crystal_passes_and_unknown_element_is_named():
    check_material(bulk("NaCl", "rocksalt", a=5.64), ["Na", "Cl"], 5.0)
    with pytest.raises(StructureError, match="element.s. K not supported"):
        check_material(bulk("KCl", "rocksalt", a=6.3), ["Na", "Cl"], 5.0)


def test_phonopy_steps_run_with_the_workers_thread_share(monkeypatch):
    """A 1-thread worker's BLAS and OpenMP pools use 1 thread too (no oversubscription)."""
    import torch
    from threadpoolctl import threadpool_info

    from ase_fcnet.pretrained import model_file
    from ase_fcnet.screening import worker
    from ase_fcnet.screening.settings import ScreenSettings

    seen = []

    def spy(atoms, calc, settings, timings):
        seen.append({p["filepath"]: p["num_threads"] for p in threadpool_info()})
        return {}, {}, atoms

    monkeypatch.setattr(worker, "_phonons", spy)
    before = torch.get_num_threads()
    try:
        config = worker.WorkerConfig(str(model_file("fcnet-small")), device="cpu", threads=1)
        out = worker.compute(("key", "Si", bulk("Si")), ScreenSettings(), config)
    finally:
        torch.set_num_threads(before)
    assert out["status"] == "done", out["kvp"]
    assert seen and seen[0], "no thread pools seen"
    assert set(seen[0].values()) == {1}, seen[0]


def test_warnings_are_kept_in_the_row_not_printed(monkeypatch, capsys):
    """phonopy's warnings (e.g. a mesh rebuilt for symmetry) go to the material's row, once each."""
    import warnings as w

    from ase_fcnet.pretrained import model_file
    from ase_fcnet.screening import worker
    from ase_fcnet.screening.settings import ScreenSettings

    def noisy(atoms, calc, settings, timings):
        for _ in range(3):
            w.warn("Mesh [4, 4, 3] is incompatible\nwith the point group", UserWarning)
        w.warn("x" * 900, RuntimeWarning)
        w.warn("y" * 900, RuntimeWarning)
        return {}, {}, atoms

    monkeypatch.setattr(worker, "_phonons", noisy)
    config = worker.WorkerConfig(str(model_file("fcnet-small")), device="cpu")
    out = worker.compute(("key", "Si", bulk("Si")), ScreenSettings(), config)
    line = out["kvp"]["warnings"]
    assert line.startswith("UserWarning: Mesh [4, 4, 3] is incompatible with the point group | RuntimeWarning: x")
    assert line.count("UserWarning") == 1 and len(line) == worker.MAX_WARNINGS_CHARS
    assert line.endswith("yyy…")
    assert "incompatible" not in capsys.readouterr().err
