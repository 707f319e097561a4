"""Atomic writes: complete file or none, with ordinary permissions."""
import os
import stat

import pytest

from ase_fcnet.fileio import atomic_write, atomic_write_text


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a" / "x.txt", "hello")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_failure_leaves_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")

    def broken(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_empty_output_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no data"):
        atomic_write(tmp_path / "x.txt", lambda tmp: None)
    assert os.listdir(tmp_path) == []
