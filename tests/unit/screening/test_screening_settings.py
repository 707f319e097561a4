"""Keys of materials: same structure, settings and model give the same key; any change, another."""
import pytest
from ase.build import bulk

from ase_fcnet.screening.settings import (
    ScreenSettings,
    material_key,
    model_identity,
    settings_hash,
    structure_hash,
)


def test_structure_hash_ignores_wrapping_but_not_a_displacement():
    atoms = bulk("Si", "diamond", a=5.43)
    shifted = atoms.copy()
    shifted.positions[1] += atoms.cell[0]           # the same crystal, atom outside the cell
    moved = atoms.copy()
    moved.positions[1, 0] += 0.01
    assert structure_hash(shifted) == structure_hash(atoms)
    assert structure_hash(moved) != structure_hash(atoms)


def test_settings_hash_same_for_equal_values_and_ignores_unused_relax_options():
    assert settings_hash(ScreenSettings(min_length=8)) == settings_hash(ScreenSettings(min_length=8.0))
    assert settings_hash(ScreenSettings(fmax=0.01)) == settings_hash(ScreenSettings())
    assert settings_hash(ScreenSettings(relax=True, fmax=0.01)) != settings_hash(ScreenSettings(relax=True))
    assert settings_hash(ScreenSettings(mesh=(4, 4, 4))) != settings_hash(ScreenSettings(mesh=20.0))


def test_material_key_depends_on_all_three():
    base = material_key("s", "a", "m")
    assert len({base, material_key("t", "a", "m"), material_key("s", "b", "m"), material_key("s", "a", "n")}) == 4


@pytest.mark.parametrize("kwargs, word", [
    ({"fmax": -1.0}, "fmax"), ({"supercell": (2, 0, 2)}, "supercell"), ({"mesh": "fine"}, "mesh"),
    ({"t_min": 500.0, "t_max": 100.0}, "t_max"), ({"primitive": "maybe"}, "primitive"),
    ({"dtype": "float16"}, "dtype"), ({"mesh": 0}, "mesh"), ({"mesh": (0, 0, 0)}, "mesh"),
    ({"t_step": 5000.0}, "t_step"), ({"symprec": -1.0}, "symprec"), ({"npoints": 1}, "npoints"),
])
def test_bad_settings_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ScreenSettings(**kwargs)


def test_model_identity_of_bundled_name_and_missing_file(tmp_path):
    name, path, sha = model_identity("fcnet-small")
    assert name == "fcnet-small" and path.is_file() and len(sha) == 16
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        model_identity(tmp_path / "nothere.pt")


def test_top_level_screen_is_the_screening_function():
    import ase_fcnet
    from ase_fcnet.screening import screen

    assert ase_fcnet.screen is screen and "screen" in ase_fcnet.__all__


def test_store_never_writes_a_material_twice(tmp_path):
    """Two runs on one database (a rerun while the first still finishes): one row per key."""
    from ase.build import bulk

    from ase_fcnet.screening import store

    db = store.connect(str(tmp_path / "two.db"))
    done = {"key": "k1", "status": "done", "atoms": bulk("Si"), "kvp": {"fmin_THz": 0.0}, "data": {}}
    failed = {"key": "k2", "status": "failed", "atoms": bulk("Si"), "kvp": {"error": "x"}, "data": {}}
    first = store.write(db, done, {"name": "si"})
    assert store.write(db, done, {"name": "si"}) == first           # second driver's copy dropped
    assert store.write(db, {**done, "status": "failed"}, {"name": "si"}) == first
    bad = store.write(db, failed, {"name": "x"})
    assert store.write(db, failed, {"name": "x"}) == bad            # failed again, not retried
    assert store.write(db, {**failed, "status": "done", "kvp": {}}, {"name": "x"}) != bad
    rows = {row.key: row.status for row in db.select("key")}
    assert rows == {"k1": "done", "k2": "done"} and db.count() == 2
    retried = {"key": "k3", "status": "failed", "atoms": bulk("Si"), "kvp": {"error": "y"}, "data": {}}
    old = store.write(db, retried, {"name": "z"})
    new = store.write(db, {**retried, "kvp": {"error": "z"}}, {"name": "z"}, replace=old)
    assert new != old and db.get(id=new).error == "z" and db.count() == 3    # --retry-failed replaces
