"""Find phonopy data in folders and files and read it all as samples."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .archive import is_archive, unpacked
from .phonopy_io import COMPRESSION_SUFFIXES, YAML_NAMES, read_phonopy
from .sample import Sample

__all__ = ["find_phonopy_yamls", "load_dataset"]

_SIDE_FILES = ("FORCE_SETS", "FORCE_CONSTANTS", "force_constants.hdf5")
_PREFIX_ENDS = ("_", "-", ".")


def _yaml_rank(name: str) -> tuple[str, int, int] | None:
    """(prefix, name rank, compression rank) of a phonopy yaml file name, or None."""
    for c_rank, suffix in enumerate(COMPRESSION_SUFFIXES):
        if suffix and not name.endswith(suffix):
            continue
        stem = name[: len(name) - len(suffix)] if suffix else name
        for n_rank, std in enumerate(YAML_NAMES):
            if stem == std:
                return "", n_rank, c_rank
            if stem.endswith(std) and stem[: -len(std)].endswith(_PREFIX_ENDS):
                return stem[: -len(std)], n_rank, c_rank
    return None


def find_phonopy_yamls(folder: str | os.PathLike) -> list[Path]:
    """Phonopy yaml files directly in ``folder``, one per dataset.

    A dataset is a standard name (``phonopy_params.yaml``, ``phonopy.yaml``,
    ``phonopy_disp.yaml``, optionally compressed) or such a name with a prefix
    ending in ``_``, ``-`` or ``.`` (``Si_phonopy_params.yaml``). Of several
    files with the same prefix, the first in the order above is taken
    (uncompressed before compressed), since they describe the same
    calculation at different stages.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to search (not recursively).

    Returns
    -------
    list of pathlib.Path
        Sorted by prefix.
    """
    best: dict[str, tuple[int, int, Path]] = {}
    for entry in sorted(Path(folder).iterdir()):
        if not entry.is_file():
            continue
        rank = _yaml_rank(entry.name)
        if rank is None:
            continue
        prefix, n_rank, c_rank = rank
        if prefix not in best or (n_rank, c_rank) < best[prefix][:2]:
            best[prefix] = (n_rank, c_rank, entry)
    return [best[prefix][2] for prefix in sorted(best)]


def _only_yaml(folder: Path, for_file: Path) -> Path:
    yamls = find_phonopy_yamls(folder)
    if len(yamls) != 1:
        found = ", ".join(p.name for p in yamls) or "none"
        raise ValueError(
            f"{for_file}: needs exactly one phonopy yaml beside it for the structure, found {found}"
        )
    return yamls[0]


def _load_file(path: Path) -> list[Sample]:
    if path.name.startswith("FORCE_SETS"):
        return read_phonopy(_only_yaml(path.parent, path), force_sets=path)
    if path.name.startswith("FORCE_CONSTANTS") or path.suffix in (".hdf5", ".h5"):
        return read_phonopy(_only_yaml(path.parent, path), force_constants=path)
    return read_phonopy(path)


def _load_archive(archive: Path) -> list[Sample]:
    """Samples of a packed folder; sources read ``<archive>/<member>`` as if it were a folder."""
    with unpacked(archive) as folder:
        samples = _load_folder(folder, set())
        prefix = str(folder)
        for sample in samples:
            if sample.source.startswith(prefix):
                sample.source = str(archive) + sample.source[len(prefix):]
    return samples


def _load_folder(folder: Path, visited: set[Path]) -> list[Sample]:
    real = folder.resolve()
    if real in visited:
        return []
    visited.add(real)
    samples: list[Sample] = []
    yamls = find_phonopy_yamls(folder)
    for yaml_path in yamls:
        samples.extend(read_phonopy(yaml_path))
    if not yamls:
        orphans = [name for name in _SIDE_FILES if (folder / name).is_file()]
        if orphans:
            raise ValueError(
                f"{folder}: has {', '.join(orphans)} but no phonopy yaml "
                f"({', '.join(YAML_NAMES)}) giving the structure"
            )
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith((".", "__")):
            samples.extend(_load_folder(sub, visited))
    return samples


def load_dataset(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Sample]:
    """Read every phonopy dataset in the given files and folders.

    Parameters
    ----------
    paths : path or iterable of paths
        Each entry is

        * a folder: every phonopy yaml in it (see :func:`find_phonopy_yamls`)
          is read with :func:`read_phonopy`, which also uses FORCE_SETS,
          FORCE_CONSTANTS and force_constants.hdf5 beside it; sub-folders are
          searched recursively, each one its own dataset;
        * a packed folder (``*.tar.xz``, ``*.tar`` ..., see
          :mod:`ase_fcnet.data.archive`), read as that folder would be; the
          samples' sources are ``<archive>/<path in the archive>``;
        * a phonopy yaml file (any name, possibly compressed);
        * a FORCE_SETS / FORCE_CONSTANTS / ``*.hdf5`` file, read with the
          single phonopy yaml beside it.

    Returns
    -------
    list of Sample
        All samples, in the order of ``paths`` and, within a folder, sorted by
        file and sub-folder name. Units as in :class:`Sample`.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    ValueError
        If no paths are given, a folder tree holds no phonopy yaml, or a file
        cannot be read (see :func:`read_phonopy`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("load_dataset: no paths given")
    samples: list[Sample] = []
    for path in paths:
        if path.is_dir() or (path.is_file() and is_archive(path)):
            found = _load_folder(path, set()) if path.is_dir() else _load_archive(path)
            if not found:
                raise ValueError(
                    f"{path}: no phonopy yaml ({', '.join(YAML_NAMES)}, optionally compressed "
                    f"or prefixed like Si_phonopy_params.yaml) in it or its sub-folders"
                )
        elif path.is_file():
            found = _load_file(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        samples.extend(found)
    return samples
