"""Atomic file writing: a file is either complete or absent, never half-written."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


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
