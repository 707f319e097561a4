"""Bad input: every error is ValueError / FileNotFoundError naming the file."""

import re
import shutil
from pathlib import Path

import numpy as np
import phonopy
import pytest
from ase.build import bulk
from phonopy.file_IO import write_FORCE_CONSTANTS, write_FORCE_SETS
from phonopy.structure.atoms import PhonopyAtoms

from ase_fcnet.data import (
    load_dataset,
    read_force_constants,
    read_force_sets,
    read_phonopy,
)

NACL_EX = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dft" / "NaCl_example"
needs_nacl_example = pytest.mark.skipif(
    not (NACL_EX / "FORCE_SETS").is_file(),
    reason=f"shared DFT data not found at {NACL_EX} (expected shared/ beside the repository)",
)


def _phonon():
    """Rocksalt NaCl, conventional 8-atom cell as supercell, 2-atom primitive."""
    conv = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    unit = PhonopyAtoms(
        symbols=conv.get_chemical_symbols(),
        cell=conv.cell[:],
        scaled_positions=conv.get_scaled_positions(),
    )
    return phonopy.Phonopy(unit, np.eye(3, dtype=int), primitive_matrix="F")


def _nacl_example_copy(tmp_path, force_sets_lines=None):
    """phonopy_disp.yaml (64 atoms) in tmp_path, with FORCE_SETS lines if given."""
    shutil.copy(NACL_EX / "phonopy_disp.yaml", tmp_path / "phonopy_disp.yaml")
    if force_sets_lines is not None:
        (tmp_path / "FORCE_SETS").write_text("\n".join(force_sets_lines) + "\n")
    return tmp_path / "phonopy_disp.yaml"


def _force_sets_lines():
    return (NACL_EX / "FORCE_SETS").read_text().splitlines()


@needs_nacl_example
def test_truncated_force_sets(tmp_path):
    yaml_path = _nacl_example_copy(tmp_path, _force_sets_lines()[:-5])
    with pytest.raises(ValueError) as info:
        read_phonopy(yaml_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'FORCE_SETS'}: declares 2 displacements of 64 atoms")
    assert "needs 134 non-blank lines, but the file has 129" in message


@needs_nacl_example
def test_non_numeric_force_sets(tmp_path):
    lines = _force_sets_lines()
    lines[10] = "   0.0003817600   abc    0.0000002400"
    _nacl_example_copy(tmp_path, lines)
    with pytest.raises(
        ValueError, match=r"FORCE_SETS: line 11: non-numeric force of displacement 1"
    ):
        read_phonopy(tmp_path / "phonopy_disp.yaml")


@needs_nacl_example
def test_force_sets_block_with_wrong_column_count(tmp_path):
    lines = _force_sets_lines()
    lines[4] = "  0.0100000000000000   0.0000000000000000"
    _nacl_example_copy(tmp_path, lines)
    with pytest.raises(ValueError, match=r"line 5: expected 3 numbers \(displacement 1\)"):
        read_phonopy(tmp_path / "phonopy_disp.yaml")


@needs_nacl_example
def test_force_sets_atom_count_disagrees_with_yaml(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.01)
    ph.forces = np.zeros((len(ph.dataset["first_atoms"]), 8, 3))
    write_FORCE_SETS(ph.dataset, filename=tmp_path / "FORCE_SETS")
    yaml_path = _nacl_example_copy(tmp_path)
    with pytest.raises(ValueError) as info:
        read_phonopy(yaml_path)
    assert str(info.value) == (
        f"{tmp_path / 'FORCE_SETS'}: has forces on 8 atoms, but the supercell in {yaml_path} has 64 atoms"
    )


@needs_nacl_example
def test_nan_in_force_sets(tmp_path):
    lines = _force_sets_lines()
    lines[7] = "   nan    0.0000000000    0.0000000000"
    _nacl_example_copy(tmp_path, lines)
    with pytest.raises(
        ValueError, match=r"FORCE_SETS: non-finite displacement or forces in displacement 1"
    ):
        read_phonopy(tmp_path / "phonopy_disp.yaml")


def test_type2_force_sets_line_count(tmp_path):
    path = tmp_path / "FORCE_SETS"
    path.write_text("\n".join(["0.01 0 0 -0.1 0 0"] * 12) + "\n")
    assert read_force_sets(path, 4)["forces"].shape == (3, 4, 3)
    with pytest.raises(
        ValueError,
        match=r"FORCE_SETS: 12 data lines are not a whole number of supercells of 8 atoms",
    ):
        read_force_sets(path, 8)


def test_nan_forces_in_yaml(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.01, is_plusminus=True)
    forces = np.zeros((4, 8, 3))
    forces[2, 5, 1] = np.nan
    ph.forces = forces
    ph.save(tmp_path / "phonopy_params.yaml")
    with pytest.raises(ValueError) as info:
        read_phonopy(tmp_path / "phonopy_params.yaml")
    assert (
        str(info.value)
        == f"{tmp_path / 'phonopy_params.yaml'}#2: forces has 1 non-finite (NaN/inf) values"
    )


def test_yaml_without_forces_or_force_constants(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.01)
    ph.save(tmp_path / "phonopy_disp.yaml")
    with pytest.raises(ValueError, match="displacement dataset has no forces") as info:
        read_phonopy(tmp_path / "phonopy_disp.yaml")
    assert str(tmp_path / "phonopy_disp.yaml") in str(info.value)
    _phonon().save(tmp_path / "phonopy.yaml")
    with pytest.raises(
        ValueError, match="holds neither a displacement dataset with forces nor force constants"
    ):
        read_phonopy(tmp_path / "phonopy.yaml")


def test_disp_yaml_with_force_constants_but_no_forces_warns(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.01)
    ph.save(tmp_path / "phonopy_disp.yaml")
    write_FORCE_CONSTANTS(np.zeros((8, 8, 3, 3)), filename=tmp_path / "FORCE_CONSTANTS")
    with pytest.warns(UserWarning, match="only the force constants from"):
        samples = read_phonopy(tmp_path / "phonopy_disp.yaml")
    assert len(samples) == 1 and samples[0].source == str(tmp_path / "FORCE_CONSTANTS")


def test_force_constants_of_wrong_size(tmp_path):
    ph = _phonon()
    ph.force_constants = np.zeros((8, 8, 3, 3))
    ph.save(tmp_path / "phonopy.yaml")
    write_FORCE_CONSTANTS(
        np.zeros((2, 16, 3, 3)), filename=tmp_path / "FORCE_CONSTANTS", p2s_map=[0, 8]
    )
    with pytest.raises(ValueError) as info:
        read_phonopy(tmp_path / "phonopy.yaml", force_constants=tmp_path / "FORCE_CONSTANTS")
    assert str(info.value) == (
        f"{tmp_path / 'FORCE_CONSTANTS'}: holds force constants of 16 atoms, but the supercell in "
        f"{tmp_path / 'phonopy.yaml'} has 8 atoms"
    )


def test_force_constants_rows_not_primitive(tmp_path):
    write_FORCE_CONSTANTS(
        np.zeros((2, 8, 3, 3)), filename=tmp_path / "FORCE_CONSTANTS", p2s_map=[0, 2]
    )
    with pytest.raises(
        ValueError,
        match=r"are for atoms \[0, 2\], but the primitive cell maps to supercell atoms \[0, 1\]",
    ):
        read_force_constants(tmp_path / "FORCE_CONSTANTS", supercell=8, p2s_map=[0, 1])


def test_truncated_and_non_numeric_force_constants(tmp_path):
    path = tmp_path / "FORCE_CONSTANTS"
    write_FORCE_CONSTANTS(np.ones((8, 8, 3, 3)), filename=path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(
        ValueError, match=r"FORCE_CONSTANTS: header declares 8 x 8 blocks, which needs 257 lines"
    ):
        read_force_constants(path)
    lines[3] = "   1.0   x   1.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=r"FORCE_CONSTANTS: cannot be read as force constants \(ValueError"
    ):
        read_force_constants(path)


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "phonopy_params.yaml"
    path.write_text("phonopy: [unclosed\n  - : :\n")
    with pytest.raises(
        ValueError, match="phonopy_params.yaml: cannot be read as a phonopy yaml"
    ) as info:
        read_phonopy(path)
    assert info.value.__cause__ is not None
    path.write_text("just: a mapping\n")
    with pytest.raises(ValueError, match="phonopy_params.yaml: phonopy yaml has no unit_cell"):
        read_phonopy(path)


def test_nonexistent_paths(tmp_path):
    missing = tmp_path / "nope" / "phonopy_params.yaml"
    for call in (
        lambda: read_phonopy(missing),
        lambda: read_force_sets(missing, 8),
        lambda: read_force_constants(missing),
        lambda: load_dataset([missing]),
    ):
        with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
            call()
    _phonon().save(tmp_path / "phonopy.yaml")
    with pytest.raises(FileNotFoundError, match="FORCE_SETS_x: no such file"):
        read_phonopy(tmp_path / "phonopy.yaml", force_sets=tmp_path / "FORCE_SETS_x")


def test_load_dataset_finds_nothing(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty: no phonopy yaml"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "orphan").mkdir()
    (tmp_path / "orphan" / "FORCE_SETS").write_text("8\n0\n")
    with pytest.raises(ValueError, match="orphan: has FORCE_SETS but no phonopy yaml"):
        load_dataset(tmp_path / "orphan")
    with pytest.raises(ValueError, match="no paths given"):
        load_dataset([])


def test_force_sets_without_displacements(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.01)
    ph.save(tmp_path / "phonopy_disp.yaml")
    (tmp_path / "FORCE_SETS").write_text("8\n0\n")
    with pytest.raises(ValueError, match="FORCE_SETS: FORCE_SETS holds no displaced supercells"):
        read_phonopy(tmp_path / "phonopy_disp.yaml")


@needs_nacl_example
def test_force_sets_displacements_differ_from_yaml(tmp_path, monkeypatch):
    lines = _force_sets_lines()
    assert lines[4].split() == ["0.0100000000000000", "0.0000000000000000", "0.0000000000000000"]
    lines[4] = "  0.0200000000000000   0.0000000000000000   0.0000000000000000"
    yaml_path = _nacl_example_copy(tmp_path, lines)
    with pytest.warns(UserWarning, match="Displacements in .*FORCE_SETS differ from those in"):
        samples = read_phonopy(yaml_path)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # phonopy.load also reads FORCE_SETS from the cwd
    ph = phonopy.load(NACL_EX / "phonopy_disp.yaml", produce_fc=False, is_nac=False)
    shift = samples[0].atoms.positions - ph.supercell.positions
    np.testing.assert_allclose(shift[0], [0.02, 0.0, 0.0], atol=1e-12)
