"""`fcnet screen`: the CLI through click's runner, and a driver killed halfway then resumed."""
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time

import ase.db
from ase.build import bulk
from ase.io import write
from click.testing import CliRunner

from ase_fcnet.cli import main

FAST = ["--model", "fcnet-small", "--min-length", "6", "--mesh", "4 4 4", "--npoints", "5", "--tstep", "100"]


def test_cli_screen_writes_rows_summary_csv_and_figure(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "si.cif", bulk("Si", "diamond", a=5.43))
    write(folder / "nacl.cif", bulk("NaCl", "rocksalt", a=5.64))
    (folder / "broken.cif").write_text("not a cif\n")
    (folder / "README.txt").write_text("notes, not a structure\n")       # skipped: unknown format
    db, table = tmp_path / "screen.db", tmp_path / "screen.csv"
    result = CliRunner().invoke(main, ["screen", str(folder), "--db", str(db), "--workers", "1", "--quiet",
                                       "--csv", str(table), *FAST], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "materials 3: stable 2, unstable (imaginary modes) 0, failed 1" in result.output
    assert "ReadError" in result.output and "broken" in result.output
    lines = list(csv.DictReader(table.open()))
    assert sorted(line["name"] for line in lines) == ["broken", "nacl", "si"]
    assert float(next(line for line in lines if line["name"] == "si")["fmax_THz"]) > 1
    assert (tmp_path / "screen_screen.png").stat().st_size > 10_000
    again = CliRunner().invoke(main, ["screen", str(folder), "--db", str(db), "--quiet", "--no-figure", *FAST])
    assert again.exit_code == 0 and "0 done, 0 failed, 3 skipped" in again.output


def test_cli_screen_usage_errors(tmp_path):
    runner = CliRunner()
    nothing = runner.invoke(main, ["screen", "--db", str(tmp_path / "x.db")])
    assert nothing.exit_code == 2 and "give structure files" in nothing.output
    select = runner.invoke(main, ["screen", str(tmp_path), "--select", "natoms<3"])
    assert select.exit_code == 2 and "--select needs --from-db" in select.output
    mesh = runner.invoke(main, ["screen", str(tmp_path), "--mesh", "4 4"])
    assert mesh.exit_code == 2 and "--mesh: '4 4': give three integers" in mesh.output
    zero = runner.invoke(main, ["screen", str(tmp_path), "--mesh", "0 0 0"])
    assert zero.exit_code == 2 and "mesh: must be three integers >= 1" in zero.output
    missing = runner.invoke(main, ["screen", str(tmp_path / "none.cif"), "--db", str(tmp_path / "x.db")])
    assert missing.exit_code == 1 and "input not found" in missing.output
    assert not (tmp_path / "x.db").exists()


def _done_rows(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("select count(*) from keys where key='status'").fetchone()[0]
    except sqlite3.OperationalError:      # tables not created yet
        return 0


def _start(args, cwd):
    code = "from ase_fcnet.cli import entry_point; entry_point()"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(db, n, proc, timeout=180.0):
    end = time.monotonic() + timeout
    while _done_rows(db) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"fewer than {n} rows after {timeout} s"
        time.sleep(0.05)


def test_driver_killed_halfway_then_resumed_has_no_duplicates(tmp_path):
    structures = []                      # 2-atom cells, rattled: well under 1 s each in a warm worker
    for k in range(12):
        atoms = bulk("Si", "diamond", a=5.43) if k % 2 else bulk("SiC", "zincblende", a=4.36)
        atoms.rattle(0.03, seed=k)
        structures.append(atoms)
    write(tmp_path / "set.extxyz", structures)
    n = len(structures)
    db = tmp_path / "resume.db"
    args = ["screen", "set.extxyz", "--db", "resume.db", "--no-figure",
            "--model", "fcnet-small", "--min-length", "6", "--mesh", "4 4 4", "--npoints", "5", "--tstep", "100"]
    in_process, one_worker = args + ["--workers", "0"], args + ["--workers", "1"]   # the same keys

    first = _start(in_process, tmp_path)
    _wait_for_rows(db, 2, first)
    first.send_signal(signal.SIGTERM)                    # polite stop: message and exit code 1
    _, err = first.communicate(timeout=60)
    assert first.returncode == 1 and "run the same command again to resume" in err
    after_term = _done_rows(db)

    second = _start(one_worker, tmp_path)
    _wait_for_rows(db, after_term + 2, second)
    second.kill()                                # SIGKILL: no clean-up at all; its worker is orphaned
    second.wait(timeout=30)
    after_kill = {row.key: row.id for row in ase.db.connect(str(db)).select()}
    assert 2 <= len(after_kill) < n, "the run finished before it could be killed; make the materials slower"

    third = _start(in_process, tmp_path)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    assert f"{len(after_kill)} already in resume.db (skipped)" in err
    rows = list(ase.db.connect(str(db)).select())
    keys = [row.key for row in rows]
    assert len(rows) == n and len(set(keys)) == n
    assert all(row.status == "done" for row in rows)
    assert {row.key: row.id for row in rows if row.key in after_kill} == after_kill   # kept as they were
