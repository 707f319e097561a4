"""Shared by the screening tests: 7 good small crystals and 3 bad files, fast settings, row tables."""
from __future__ import annotations

import os
import signal
import time

from ase import Atoms
from ase.build import bulk
from ase.io import write

from ase_fcnet.screening import ScreenSettings

#: Small supercells and meshes: each material takes a fraction of a second in a warm worker.
FAST = ScreenSettings(min_length=6.0, mesh=(4, 4, 4), npoints=5, t_step=100.0)
MODEL = "fcnet-small"

GOOD = {
    "si": lambda: bulk("Si", "diamond", a=5.43),
    "c": lambda: bulk("C", "diamond", a=3.567),
    "sic": lambda: bulk("SiC", "zincblende", a=4.36),
    "nacl": lambda: bulk("NaCl", "rocksalt", a=5.64),
    "mgo": lambda: bulk("MgO", "rocksalt", a=4.21),
    "cu": lambda: bulk("Cu", "fcc", a=3.615),
    "al": lambda: bulk("Al", "fcc", a=4.05),
}


def write_inputs(folder):
    """10 structure files in ``folder``: 7 good, one unreadable, one unknown element, one overlap."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in GOOD.items():
        write(folder / f"{name}.cif", build())
    (folder / "garbage.cif").write_text("this is not a CIF file\n")
    write(folder / "argon.cif", bulk("Ar", "fcc", a=5.26))        # fcnet-small has no Ar
    overlap = bulk("Cu", "fcc", a=3.615, cubic=True)
    overlap.positions[1] = overlap.positions[0] + [0.1, 0.0, 0.0]
    write(folder / "overlap.cif", overlap)
    return folder


def row_table(db_path) -> dict:
    """key -> (name, status, error_type, rounded lowest frequency, rounded S(300 K)) of every row."""
    import ase.db

    out = {}
    for row in ase.db.connect(str(db_path)).select():
        fmin, s300 = row.get("fmin_THz"), row.get("S300_kB_per_atom")
        out[row.key] = (row.name, row.status, row.get("error_type"),
                        None if fmin is None else round(fmin, 5), None if s300 is None else round(s300, 6))
    return out


class DiesInDaskWorker(Atoms):
    """Silicon whose element check kills the Dask worker process computing it (as the OOM
    killer would); anywhere else (the driver, the in-process scheduler) it is plain silicon."""

    def get_chemical_symbols(self):
        try:
            from distributed import get_worker

            get_worker()
        except (ImportError, ValueError):
            return super().get_chemical_symbols()
        # Dask fails every task the scheduler believes a dead worker was running: let the worker
        # report the material it finished just before this one (within milliseconds) first
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)
