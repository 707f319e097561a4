"""The ASE <-> phonopy bridge: structures with masses, displacements, Hessian <-> force constants."""
import numpy as np
import pytest
import torch
from ase.build import bulk
from phonopy import Phonopy

from ase_fcnet.phonopy_bridge import (
    atoms_to_phonopy,
    compact_force_constants,
    displacement_vectors,
    files_beside,
    force_constants_to_rows,
    phonopy_to_atoms,
    read_phonopy_yaml,
    rows_to_force_constants,
    unit_vectors,
)


def _nacl():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.set_masses([22.5, 37.0])  # not the table's: must survive both ways
    return atoms


def test_structures_keep_cell_positions_and_masses_both_ways():
    atoms = _nacl()
    back = phonopy_to_atoms(atoms_to_phonopy(atoms))
    assert np.allclose(back.cell[:], atoms.cell[:]) and np.allclose(back.positions, atoms.positions)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert np.array_equal(back.get_masses(), atoms.get_masses()) and all(back.pbc)
    bohr = phonopy_to_atoms(atoms_to_phonopy(atoms), length_to_A=0.5)
    assert np.allclose(bohr.positions, 0.5 * atoms.positions)


def test_supercell_of_phonopy_keeps_the_masses():
    ph = Phonopy(atoms_to_phonopy(_nacl()), 2 * np.eye(3, dtype=int), primitive_matrix="P")
    supercell = phonopy_to_atoms(ph.supercell)
    assert sorted(set(supercell.get_masses())) == [22.5, 37.0]


def test_displacement_vectors_of_both_dataset_types():
    ph = Phonopy(atoms_to_phonopy(_nacl()), 2 * np.eye(3, dtype=int), primitive_matrix="P")
    ph.generate_displacements(distance=0.01)
    u = displacement_vectors(ph)
    assert u.shape == (len(ph.dataset["first_atoms"]), 16, 3)
    for k, entry in enumerate(ph.dataset["first_atoms"]):
        assert np.allclose(u[k, entry["number"]], entry["displacement"])
        assert np.count_nonzero(np.abs(u[k]).sum(axis=1)) == 1
    assert np.array_equal(displacement_vectors(ph.dataset, 16), u)
    type2 = {"displacements": u}
    assert np.array_equal(displacement_vectors(type2), u)
    with pytest.raises(ValueError, match="no displacement dataset"):
        displacement_vectors({}, 16)


def test_hessian_rows_and_force_constants_round_trip():
    n = 4
    a = np.random.default_rng(0).normal(size=(3 * n, 3 * n))
    hessian = a + a.T
    fc = rows_to_force_constants(hessian)
    assert fc.shape == (n, n, 3, 3)
    assert fc[1, 2, 0, 1] == hessian[3 * 1 + 0, 3 * 2 + 1]
    assert np.array_equal(force_constants_to_rows(fc), hessian)
    rows = hessian[3:9].reshape(6, n, 3)  # the rows of atoms 1 and 2
    assert np.array_equal(rows_to_force_constants(rows), fc[1:3])
    assert np.array_equal(compact_force_constants(fc, [0, 2]), fc[[0, 2]])
    as_tensor = rows_to_force_constants(torch.as_tensor(rows))
    assert torch.equal(as_tensor, torch.as_tensor(fc[1:3]))


def test_unit_vectors_pick_hessian_rows():
    n = 3
    a = np.random.default_rng(1).normal(size=(3 * n, 3 * n))
    hessian = a + a.T
    vectors = unit_vectors([2, 0], n)
    products = (hessian @ vectors.reshape(len(vectors), -1).T).T.reshape(vectors.shape)
    assert np.allclose(rows_to_force_constants(products), rows_to_force_constants(hessian)[[2, 0]])


def test_yaml_reader_and_the_files_that_belong_to_it(tmp_path):
    ph = Phonopy(atoms_to_phonopy(_nacl()), 2 * np.eye(3, dtype=int), primitive_matrix="P")
    ph.save(tmp_path / "phonopy_disp.yaml")
    ph_yaml = read_phonopy_yaml(tmp_path / "phonopy_disp.yaml")
    assert np.allclose(ph_yaml.unitcell.masses, [22.5, 37.0])
    assert files_beside(tmp_path / "phonopy_disp.yaml", ph_yaml) == {
        "force_constants": None, "force_sets": None}
    (tmp_path / "FORCE_SETS").write_text("")
    (tmp_path / "force_constants.hdf5").write_text("")
    found = files_beside(tmp_path / "phonopy_disp.yaml", ph_yaml)
    assert found == {"force_constants": tmp_path / "force_constants.hdf5",
                     "force_sets": tmp_path / "FORCE_SETS"}
    (tmp_path / "bad.yaml").write_text("phonopy: [unclosed")
    with pytest.raises(ValueError, match="bad.yaml: cannot be read as a phonopy yaml"):
        read_phonopy_yaml(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError, match="nothing.yaml"):
        read_phonopy_yaml(tmp_path / "nothing.yaml")
