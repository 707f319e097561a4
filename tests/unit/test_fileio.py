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


def test_staged_folder_replaces_whole_or_leaves_the_old(tmp_path):
    from ase_fcnet.fileio import staged_folder

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("old")
    (out / "stale.txt").write_text("from the first run")
    with pytest.raises(RuntimeError):
        with staged_folder(out) as staging:
            (staging / "summary.json").write_text("half")
            raise RuntimeError("failed while writing")
    assert (out / "summary.json").read_text() == "old"
    with staged_folder(out) as staging:
        (staging / "summary.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # no stale file kept
    assert (out / "summary.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no hidden leftovers


def test_check_output_folder(tmp_path):
    from ase_fcnet.fileio import OutputFolderError, check_output_folder

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="in the way"):
        check_output_folder(tmp_path / "file", True, "summary.json")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "summary.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="--overwrite"):
        check_output_folder(ours, False, "summary.json")
    assert check_output_folder(ours, True, "summary.json") == ours
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputFolderError, match="not an earlier output"):
        check_output_folder(tmp_path / "home", True, "summary.json")
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", False, "summary.json")
    check_output_folder(tmp_path / "new" / "deeper", False, "summary.json")
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(OutputFolderError, match="cannot write"):
        check_output_folder("/proc/fcnet-test-out", False, "summary.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "home", "ours"]


def test_remove_stale_temporaries(tmp_path):
    from ase_fcnet.fileio import remove_stale_temporaries

    (tmp_path / ".loss_curves.png.abc123.tmp").write_text("half")
    (tmp_path / ".last.pt.x.tmp").write_text("half")
    (tmp_path / ".other.txt.y.tmp").write_text("not ours")
    (tmp_path / "loss_curves.png").write_text("kept")
    removed = remove_stale_temporaries(tmp_path, ["loss_curves.png", "last.pt"])
    assert len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.y.tmp", "loss_curves.png"]
