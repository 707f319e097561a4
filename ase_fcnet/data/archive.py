"""A folder of phonopy datasets packed into one tar file, and read back.

A generated data set (``fcnet data generate``, ``fcnet data teacher``) is a
tree of small files: one folder per structure holding its phonopy yaml and a
``labels.json``. Thousands of such files are slow to clone and to list, so a
finished split is packed into one ``<split>.tar.xz`` whose members are the
same files with paths relative to the split folder. Packing is byte-exact
(the members are the original files) and deterministic (sorted members, zero
times and owners), so reading a packed split gives the same samples, with the
same arrays, as reading the folder.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ase_fcnet.fileio import atomic_write

__all__ = ["ARCHIVE_SUFFIXES", "is_archive", "pack_folder", "unpack_archive", "unpacked",
           "unpacked_once"]

#: File name endings read as a packed folder.
ARCHIVE_SUFFIXES = (".tar", ".tar.xz", ".tar.gz", ".tgz", ".tar.bz2")


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a packed folder (by its ending, see :data:`ARCHIVE_SUFFIXES`)."""
    return Path(path).name.endswith(ARCHIVE_SUFFIXES)


def _compress(data: bytes, name: str) -> bytes:
    """``data`` compressed as the file name's ending says, with no time or name stored."""
    if name.endswith(".xz"):
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=6)
    if name.endswith((".gz", ".tgz")):
        return gzip.compress(data, mtime=0)
    if name.endswith(".bz2"):
        return bz2.compress(data)
    return data


def pack_folder(folder: str | os.PathLike, archive: str | os.PathLike) -> int:
    """Pack every file under ``folder`` into the tar file ``archive``.

    Parameters
    ----------
    folder : path
        The folder to pack; members are named relative to it. Hidden files
        and folders (``.name``) are left out.
    archive : path
        Output file; its ending picks the compression (``.tar.xz`` xz,
        ``.tar.gz`` gzip, ``.tar`` none). Written atomically.

    Returns
    -------
    int
        Number of files packed.

    Raises
    ------
    ValueError
        If ``folder`` is not a folder, holds no files, or ``archive`` has
        none of the endings in :data:`ARCHIVE_SUFFIXES`.
    """
    folder, archive = Path(folder), Path(archive)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    if not is_archive(archive):
        raise ValueError(f"{archive}: name must end in one of {', '.join(ARCHIVE_SUFFIXES)}")
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise ValueError(f"{folder}: holds no files to pack")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    packed = _compress(buffer.getvalue(), archive.name)
    atomic_write(archive, lambda tmp: Path(tmp).write_bytes(packed))
    return len(files)


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"{archive}: member {name!r} points outside the archive")
    return path


def unpack_archive(archive: str | os.PathLike, folder: str | os.PathLike) -> int:
    """Write the regular files of a packed folder under ``folder``.

    Only regular files are written (no links, devices or absolute or ``..``
    paths), so an archive cannot write outside ``folder``.

    Returns
    -------
    int
        Number of files written.

    Raises
    ------
    FileNotFoundError
        If ``archive`` does not exist.
    ValueError
        If it is not a readable tar file or a member leaves the folder.
    """
    archive, folder = Path(archive), Path(folder)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such file")
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                target = folder.joinpath(*_safe_member(archive, member.name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src:
                    target.write_bytes(src.read())
                count += 1
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError(f"{archive}: cannot be read as a packed folder ({err})") from err
    return count


def unpacked_once(archive: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """``folder``, holding the files of ``archive``; unpacked only if it does not exist yet.

    The files are written to ``<folder>.part`` first and the folder renamed
    into place, so an interrupted unpack never leaves a half-filled ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        part = folder.with_name(folder.name + ".part")
        if part.exists():
            shutil.rmtree(part)
        unpack_archive(archive, part)
        part.rename(folder)
    return folder


class unpacked:
    """Context manager: a packed folder unpacked into a temporary folder.

    ``with unpacked(archive) as folder:`` gives the temporary folder (a
    :class:`pathlib.Path`), removed on exit.
    """

    def __init__(self, archive: str | os.PathLike):
        self.archive = Path(archive)
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        self._tmp = tempfile.TemporaryDirectory(prefix="fcnet-unpacked-")
        try:
            unpack_archive(self.archive, self._tmp.name)
        except BaseException:
            self._tmp.cleanup()
            raise
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()
