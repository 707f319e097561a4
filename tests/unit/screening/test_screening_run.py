"""A 10-material screen in SQLite: 7 done, 3 failed with clear reasons; reruns, retries, limits, Dask."""
import ase.db
import numpy as np
import pytest
from screening_helpers import FAST, MODEL, row_table

from ase_fcnet.screening import screen


@pytest.fixture(scope="module")
def local_db(inputs_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("local") / "results.db"
    result = screen([inputs_dir], db, model=MODEL, settings=FAST, workers=2, progress=False)
    return db, result


def test_ten_materials_seven_done_three_failed(local_db):
    db, result = local_db
    assert (result.n_materials, result.n_done, result.n_failed, result.n_skipped) == (10, 7, 3, 0)
    rows = {row.name: row for row in ase.db.connect(str(db)).select()}
    assert len(rows) == 10
    assert sorted(n for n, r in rows.items() if r.status == "done") == ["al", "c", "cu", "mgo", "nacl", "si", "sic"]
    assert "cannot read structure from" in rows["garbage"].error and rows["garbage"].error_type == "ReadError"
    assert "Ar not supported by this model" in rows["argon"].error
    assert "overlapping atoms" in rows["overlap"].error and "0.100 Å apart" in rows["overlap"].error
    for row in rows.values():
        if row.status == "failed":
            assert "\n" not in row.error


def test_done_rows_hold_the_listed_columns_and_data(local_db):
    db, _ = local_db
    row = ase.db.connect(str(db)).get(name="nacl")
    assert row.formula == "NaCl" and row.natoms == 2 and row.space_group == "Fm-3m"
    assert row.space_group_number == 225 and row.supercell == "2x2x2" and row.natoms_supercell == 16
    assert row.model == MODEL and len(row.model_sha256) == 16 and len(row.settings_sha256) == 16
    assert row.fmax_THz > 1.0 and abs(row.fmin_THz) < 0.01 and row.imaginary is False
    assert len(row.q_lowest.split()) == 3
    # 300 K is above the Debye temperature of NaCl: C_v close to 3 k_B per atom, 6 per formula unit
    assert 2.7 < row.Cv300_kB_per_atom < 3.0 and row.Cv300_kB_per_fu == pytest.approx(2 * row.Cv300_kB_per_atom)
    assert row.S300_kB_per_atom > 0 and row.zpe_eV_per_atom > 0 and row.F300_eV_per_atom < row.zpe_eV_per_atom
    assert row.time_force_constants_s > 0 and row.time_total_s >= row.time_force_constants_s
    assert row.model_loads == 1                                    # the worker's model was reused
    data = row.data
    assert data["band"]["frequencies_THz"][0].shape[1] == 6
    dos = data["dos"]
    assert np.trapezoid(dos["total_per_THz"], dos["frequency_THz"]) == pytest.approx(6.0, rel=0.05)
    thermal = data["thermal"]
    assert thermal["T_K"][0] == 0 and thermal["T_K"][-1] == 1000
    i300 = int(np.flatnonzero(thermal["T_K"] == 300)[0])
    assert thermal["S_kB_per_atom"][i300] == pytest.approx(row.S300_kB_per_atom, rel=1e-6)


def test_rerun_skips_everything_and_retry_replaces_failed_rows(local_db, inputs_dir, tmp_path):
    db, first = local_db
    before = row_table(db)
    again = screen([inputs_dir], db, model=MODEL, settings=FAST, workers=1, progress=False)
    assert (again.n_skipped, again.n_done, again.n_failed) == (10, 0, 0)
    retry = screen([inputs_dir], db, model=MODEL, settings=FAST, workers=0, retry_failed=True, progress=False)
    assert (retry.n_skipped, retry.n_done, retry.n_failed) == (7, 0, 3)
    assert row_table(db) == before                                   # replaced, not duplicated
    assert len(list(ase.db.connect(str(db)).select())) == 10


def test_other_settings_are_other_materials_and_limit_stops_early(inputs_dir, tmp_path):
    db = tmp_path / "limited.db"
    part = screen([inputs_dir / "si.cif", inputs_dir / "nacl.cif", inputs_dir / "cu.cif"], db, model=MODEL,
                  settings=FAST, workers=0, limit=2, shuffle=True, progress=False)
    assert (part.n_done, part.n_left) == (2, 1)
    rest = screen([inputs_dir / "si.cif", inputs_dir / "nacl.cif", inputs_dir / "cu.cif"], db, model=MODEL,
                  settings=FAST, workers=0, progress=False)
    assert (rest.n_skipped, rest.n_done) == (2, 1)


def test_from_db_with_selection(local_db, tmp_path):
    db, _ = local_db
    out = tmp_path / "again.db"
    result = screen([], out, model=MODEL, settings=FAST, workers=0, from_db=str(db), selection="status=done,natoms=2",
                    progress=False)
    names = sorted(row.name for row in ase.db.connect(str(out)).select())
    assert result.n_done == 5 and names == ["c", "mgo", "nacl", "si", "sic"]


def test_dask_local_cluster_gives_the_same_rows(local_db, inputs_dir, tmp_path):
    pytest.importorskip("distributed")
    db, _ = local_db
    dask_db = tmp_path / "dask.db"
    result = screen([inputs_dir], dask_db, model=MODEL, settings=FAST, dask_local=2, progress=False)
    assert (result.n_done, result.n_failed) == (7, 3)
    assert row_table(dask_db) == row_table(db)


def test_bad_run_options_fail_before_any_work(inputs_dir, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        screen([inputs_dir], tmp_path / "x.db", model=MODEL, scheduler="tcp://x:1", dask_local=2)
    with pytest.raises(FileNotFoundError, match="input not found"):
        screen([tmp_path / "missing.cif"], tmp_path / "x.db", model=MODEL)
    with pytest.raises(ValueError, match=r"\.db file"):
        screen([inputs_dir], tmp_path / "x.txt", model=MODEL)
    assert not (tmp_path / "x.db").exists()
