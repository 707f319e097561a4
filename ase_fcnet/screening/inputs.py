"""Turning a screen's inputs (files, folders, globs, an ASE database, Atoms) into materials.

Reading is done by the driver, before any work starts: each material needs a
key, and the key needs the structure. A file that cannot be read becomes a
material that is already failed (its key comes from the file's bytes), so it
gets its row and its one-line reason like any other failure.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from ase_fcnet.screening.settings import file_sha256, structure_hash


@dataclass
class Material:
    """One structure to screen.

    Attributes
    ----------
    name : str
        Short label (file stem, ``stem@index`` for multi-structure files, a database row's ``name``).
    source : str
        Where it came from (file path, ``db:id``).
    atoms : Atoms or None
        The structure; ``None`` when it could not be read.
    structure_id : str
        SHA-256 of the structure (or of the file when unreadable).
    error : str or None
        One-line reason when the material failed before any computation.
    error_type : str or None
    key : str
        Set by the driver from structure, settings and model.
    """

    name: str
    source: str
    atoms: Atoms | None
    structure_id: str
    error: str | None = None
    error_type: str | None = None
    key: str = ""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a message to one line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _structure_files(folder: Path) -> list[Path]:
    """Files in ``folder`` (not recursive, not hidden) whose format ase.io recognises."""
    from ase.io.formats import UnknownFileTypeError, filetype

    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            filetype(str(path), guess=False)
        except (UnknownFileTypeError, OSError, ValueError):
            continue
        found.append(path)
    return found


def expand_inputs(inputs) -> list[Path]:
    """Structure files named by ``inputs``: files, folders (their recognised files) and glob patterns.

    Raises
    ------
    FileNotFoundError
        For an input that is neither a file, a folder nor a glob matching something.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += _structure_files(path)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
            if not matches:
                raise FileNotFoundError(f"no file matches {item!r}")
            files += matches
        else:
            raise FileNotFoundError(f"input not found: {item}")
    seen, out = set(), []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def read_file(path: Path) -> list[Material]:
    """Every structure in one file; a single failed material when it cannot be read."""
    from ase.io import read

    try:
        structures = read(str(path), index=":")
        if not structures:
            raise ValueError("no structure found in the file")
    except Exception as err:  # ase raises many kinds for unreadable files
        reason = str(err) if str(err) not in ("", "None") else f"{type(err).__name__} in ase.io.read"
        return [Material(path.stem, str(path), None, "file:" + file_sha256(path),
                         error=one_line(f"cannot read structure from {path}: {reason}"), error_type="ReadError")]
    if len(structures) == 1:
        return [Material(path.stem, str(path), structures[0], structure_hash(structures[0]))]
    return [Material(f"{path.stem}@{k}", f"{path}@{k}", atoms, structure_hash(atoms))
            for k, atoms in enumerate(structures)]


def read_database(url: str, selection: str | None = None) -> list[Material]:
    """The structures of an ASE database (SQLite file or server URL), optionally an ``ase db`` selection."""
    import ase.db

    if "://" not in url and not Path(url).is_file():
        raise FileNotFoundError(f"database not found: {url}")
    db = ase.db.connect(url)
    out = []
    try:
        rows = list(db.select(selection or None))
    except Exception as err:  # ase.db reports bad selections with several exception types
        raise ValueError(f"bad selection {selection!r} for {url}: {err}") from err
    for row in rows:
        atoms = row.toatoms()
        name = str(row.get("name", f"{Path(url).stem}-{row.id}"))
        out.append(Material(name, f"{url}:{row.id}", atoms, structure_hash(atoms)))
    return out


def from_atoms(items) -> list[Material]:
    """Materials from ``Atoms`` objects or ``(name, Atoms)`` pairs."""
    out = []
    for k, item in enumerate(items):
        name, atoms = item if isinstance(item, tuple) else (item.info.get("name", f"structure-{k}"), item)
        out.append(Material(str(name), f"python:{k}", atoms.copy(), structure_hash(atoms)))
    return out


def collect(inputs=(), from_db: str | None = None, selection: str | None = None) -> list[Material]:
    """All materials named by ``inputs`` (paths, globs, Atoms) and ``from_db``, duplicates removed.

    Two inputs with the same structure are one material (the first name is kept).
    """
    paths, atoms_items = [], []
    for item in inputs:
        (atoms_items if isinstance(item, (Atoms, tuple)) else paths).append(item)
    materials = from_atoms(atoms_items)
    for path in expand_inputs(paths):
        materials += read_file(path)
    if from_db is not None:
        materials += read_database(from_db, selection)
    unique: dict[str, Material] = {}
    for material in materials:
        unique.setdefault(material.structure_id, material)
    return list(unique.values())
