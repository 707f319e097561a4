"""The results database: one row per material in an ASE database, written only by the driver.

Each row is written in its own transaction, so a killed run leaves every
finished row complete and nothing half-written. A failed row that is
computed again (``retry_failed``) is replaced in one transaction: deleted
and written anew, never duplicated. The write looks up the material's key
again inside its transaction, so two runs on one database (a rerun started
while the first still finishes, drivers on one PostgreSQL server) never
leave two rows of a material: a done row stays and a later result of the
same key is dropped; a failed row gives way to a done one.
"""
from __future__ import annotations

from pathlib import Path

from ase import Atoms


def connect(url: str):
    """Open (create) an ASE database: a file path (SQLite, ``.db``) or a server URL (``postgresql://``)."""
    import ase.db

    if "://" not in str(url):
        path = Path(url)
        if path.suffix not in (".db", ".json"):
            raise ValueError(f"results database {url}: give a .db file (SQLite) or a postgresql:// URL")
        if path.parent and not path.parent.exists():
            raise FileNotFoundError(f"folder of the results database does not exist: {path.parent}")
    return ase.db.connect(str(url), append=True)


def existing(db) -> dict[str, tuple[int, str]]:
    """``key -> (row id, status)`` of every screening row in the database."""
    out = {}
    for row in db.select("key", include_data=False):
        key = row.get("key")
        if key is not None and row.get("status") in ("done", "failed"):
            out[key] = (row.id, row.status)
    return out


def write(db, result: dict, meta: dict, replace: int | None = None) -> int:
    """Write one material's row (replacing row ``replace``, if given); returns its row id.

    Nothing is written when the database already holds a done row of the key,
    or a failed one and ``result`` failed too without ``replace`` naming it;
    the id of that row is returned.

    Parameters
    ----------
    result : dict
        :func:`~ase_fcnet.screening.worker.compute`'s output.
    meta : dict
        Key-value pairs every row of the run carries (name, source, model, hashes).
    """
    atoms = result.get("atoms")
    atoms = atoms.copy() if isinstance(atoms, Atoms) else Atoms()
    atoms.calc = None
    atoms.set_constraint()
    kvp = {**meta, **result["kvp"], "key": result["key"], "status": result["status"]}
    kvp = {k: v for k, v in kvp.items() if v is not None}
    with db:
        rows = list(db.select(key=result["key"], include_data=False))
        done = [row.id for row in rows if row.get("status") == "done"]
        if done:                                   # another run wrote this material meanwhile
            return done[0]
        failed = [row.id for row in rows if row.get("status") == "failed"]
        if failed and result["status"] != "done" and replace not in failed:
            return failed[0]                       # failed again: keep the first failure
        if failed:
            db.delete(failed)
        return db.write(atoms, key_value_pairs=kvp, data=result.get("data") or {})


def rows_for(db, keys) -> list:
    """Rows (without data) whose key is in ``keys``, in database order."""
    keys = set(keys)
    return [row for row in db.select("key", include_data=False) if row.get("key") in keys]
