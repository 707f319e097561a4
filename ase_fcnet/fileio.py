"""Atomic file and folder writing: a file or output folder is either complete or absent, never half-written."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, writer: Callable[[str], object]) -> Path:
    """Call ``writer(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0666 less the umask), not the private 0600 of temporary files. On any
    error the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        Destination; missing parent folders are created.
    writer : callable(str)
        Writes the complete file to the path it receives.

    Returns
    -------
    Path
        The destination.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        if os.path.getsize(tmp) == 0:
            raise RuntimeError(f"writer produced no data for {path}")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_weights_only(path: str | os.PathLike, what: str, error: type[Exception]):
    """``torch.load(weights_only=True)`` on CPU, with clear errors; the caller checks the content.

    Parameters
    ----------
    path : path-like
    what : str
        What the file should be, for messages (e.g. ``"ase_fcnet model file"``).
    error : exception class
        Raised, naming the file, when it cannot be read.

    Raises
    ------
    FileNotFoundError
        No such file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for foreign or corrupt files
        raise error(f"{path}: not a readable {what} ({err.__class__.__name__}: {err})") from err
    return data


class OutputFolderError(ValueError):
    """An output folder that cannot be written or would overwrite something."""


#: Signals held back while a finished staging folder replaces the output folder.
_SWAP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def check_output_folder(out: str | os.PathLike, overwrite: bool, marker: str) -> Path:
    """Refuse an output folder that cannot be (re)written, before any work starts.

    Parameters
    ----------
    out : path-like
        The output folder.
    overwrite : bool
        Whether an existing folder may be replaced whole.
    marker : str
        A file every complete output folder holds (e.g. ``"summary.json"``):
        only an empty folder or one holding it is replaced, so ``--overwrite``
        never deletes a folder of other files.

    Raises
    ------
    OutputFolderError
        A file is in the way, the folder exists (without ``overwrite``) or is
        not one of ours, or its parent cannot be written.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise OutputFolderError(f"output folder {out}: a file or link of that name is in the way")
        entries = list(out.iterdir())
        if entries and not overwrite:
            raise OutputFolderError(f"output folder {out} already exists; add --overwrite to "
                                    "replace it whole, or choose another --out")
        if entries and not (out / marker).is_file():
            raise OutputFolderError(f"output folder {out} holds files but no {marker}: it is not "
                                    "an earlier output of this command, so it is not replaced")
    parent = out.absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFolderError(f"output folder {out}: {existing} is a file, not a folder")
    try:  # a real write: permission bits say nothing for root or on read-only file systems
        shutil.rmtree(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=existing))
    except OSError as err:
        raise OutputFolderError(f"output folder {out}: cannot write in {existing} "
                                f"({err.strerror or err})") from None
    return out


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A hidden temporary folder beside ``out`` that replaces ``out`` whole on success.

    Everything written into the yielded folder appears at ``out`` in one step
    when the ``with`` block ends without an error; an existing ``out`` is
    replaced (check it first with :func:`check_output_folder`). On any error,
    ``KeyboardInterrupt`` or ``SystemExit`` (e.g. from a SIGTERM handler) the
    temporary folder is removed and ``out`` is left as it was. SIGINT and
    SIGTERM are held back (main thread only) during the two renames of the swap.

    Yields
    ------
    Path
        The staging folder.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``, replacing an existing ``out`` folder, signals held back."""
    main = threading.current_thread() is threading.main_thread()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _SWAP_SIGNALS) if main else None
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(staging, out)
    except BaseException:
        if old is not None and (old / out.name).exists() and not out.exists():
            os.replace(old / out.name, out)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def remove_stale_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Delete temporaries :func:`atomic_write` left for ``names`` in ``folder`` (after a SIGKILL).

    Parameters
    ----------
    folder : path-like
    names : iterable of str
        Final file names, e.g. ``["last.pt", "loss_curves.png"]``; their
        temporaries are ``.NAME.*.tmp``.

    Returns
    -------
    list of Path
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for name in names:
        for path in folder.glob(f".{glob.escape(name)}.*.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
