"""Readers on phonopy files written by phonopy itself into tmp_path.

Forces, energies and force constants are rounded to 6 decimals so that the
text formats phonopy writes hold them exactly and round trips compare equal.
"""

import gzip
import lzma
import warnings

import numpy as np
import phonopy
import pytest
from ase.build import bulk
from phonopy.file_IO import (
    write_FORCE_CONSTANTS,
    write_force_constants_to_hdf5,
    write_FORCE_SETS,
)
from phonopy.interface.phonopy_yaml import PhonopyYaml
from phonopy.physical_units import get_physical_units
from phonopy.structure.atoms import PhonopyAtoms

from ase_fcnet.data import (
    find_phonopy_yamls,
    load_dataset,
    read_force_constants,
    read_phonopy,
)

BOHR = get_physical_units().Bohr  # Å
RYDBERG = get_physical_units().Rydberg  # eV


def _phonon(length_unit=1.0, calculator=None):
    """Rocksalt NaCl, 2-atom primitive cell x 2: 16 atoms, p2s_map [0, 8]."""
    prim = bulk("NaCl", "rocksalt", a=5.64)
    unit = PhonopyAtoms(
        symbols=prim.get_chemical_symbols(),
        cell=prim.cell[:] / length_unit,
        scaled_positions=prim.get_scaled_positions(),
    )
    return phonopy.Phonopy(
        unit, 2 * np.eye(3, dtype=int), primitive_matrix="P", calculator=calculator
    )


def _values(shape, seed, offset=0.0):
    return np.round(np.random.default_rng(seed).normal(size=shape), 6) + offset


def _type1(ph, energies=True):
    ph.generate_displacements(distance=0.01, is_plusminus=True)
    n_disp, n = len(ph.dataset["first_atoms"]), len(ph.supercell)
    ph.forces = _values((n_disp, n, 3), 1)
    if energies:
        ph.supercell_energies = _values(n_disp, 2, -50.0)
    return ph


def _type2(ph, energies=True):
    ph.generate_displacements(distance=0.03, number_of_snapshots=3, random_seed=11)
    n = len(ph.supercell)
    ph.forces = _values((3, n, 3), 3)
    if energies:
        ph.supercell_energies = _values(3, 4, -50.0)
    return ph


def _fc_full(ph, seed=5):
    n = len(ph.supercell)
    return _values((n, n, 3, 3), seed)


def _assert_displaced_samples(samples, ph, source, energies=True):
    cells = ph.supercells_with_displacements
    assert len(samples) == len(cells)
    forces = np.asarray(ph.forces)
    for k, s in enumerate(samples):
        assert s.source == f"{source}#{k}"
        np.testing.assert_array_equal(s.forces, forces[k])
        np.testing.assert_allclose(s.atoms.positions, cells[k].positions, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(s.atoms.cell[:], ph.supercell.cell)
        assert s.atoms.get_chemical_symbols() == list(ph.supercell.symbols)
        np.testing.assert_allclose(s.atoms.get_masses(), ph.supercell.masses, rtol=0, atol=1e-6)
        assert s.energy == (ph.supercell_energies[k] if energies else None)
        assert s.fc_atoms is None


def test_type1_with_energies(tmp_path):
    ph = _type1(_phonon())
    assert len(ph.dataset["first_atoms"]) == 4
    ph.save(tmp_path / "phonopy_params.yaml")
    samples = read_phonopy(tmp_path / "phonopy_params.yaml")
    _assert_displaced_samples(samples, ph, tmp_path / "phonopy_params.yaml")


@pytest.mark.parametrize(
    "suffix, opener", [(".xz", lzma.open), (".lzma", lzma.open), (".gz", gzip.open)]
)
def test_compressed_yaml(tmp_path, suffix, opener):
    ph = _type1(_phonon())
    ph.save(tmp_path / "plain.yaml")
    packed = tmp_path / f"phonopy_params.yaml{suffix}"
    with opener(packed, "wb") as f:
        f.write((tmp_path / "plain.yaml").read_bytes())
    _assert_displaced_samples(read_phonopy(packed), ph, packed)


@pytest.mark.parametrize("energies", [True, False])
def test_type2_random_displacements(tmp_path, energies):
    ph = _type2(_phonon(), energies)
    ph.save(tmp_path / "phonopy_params.yaml")
    samples = read_phonopy(tmp_path / "phonopy_params.yaml")
    _assert_displaced_samples(samples, ph, tmp_path / "phonopy_params.yaml", energies)


@pytest.mark.parametrize("compact", [True, False])
def test_force_constants_in_yaml(tmp_path, compact):
    ph = _phonon()
    p2s = ph.primitive.p2s_map
    fc = _fc_full(ph)[p2s] if compact else _fc_full(ph)
    ph.force_constants = fc
    ph.save(tmp_path / "phonopy.yaml", settings={"force_constants": True})
    (s,) = read_phonopy(tmp_path / "phonopy.yaml")
    np.testing.assert_array_equal(s.fc_atoms, p2s if compact else np.arange(16))
    assert list(s.fc_atoms) == ([0, 8] if compact else list(range(16)))
    np.testing.assert_array_equal(s.force_constants, fc)
    np.testing.assert_allclose(s.atoms.positions, ph.supercell.positions, atol=1e-12)
    assert s.energy is None and s.forces is None and s.source == str(tmp_path / "phonopy.yaml")


def test_dataset_and_force_constants_in_yaml(tmp_path):
    ph = _type1(_phonon())
    fc = _fc_full(ph)[ph.primitive.p2s_map]
    ph.force_constants = fc
    ph.save(tmp_path / "phonopy_params.yaml", settings={"force_constants": True})
    samples = read_phonopy(tmp_path / "phonopy_params.yaml")
    _assert_displaced_samples(samples[:-1], ph, tmp_path / "phonopy_params.yaml")
    np.testing.assert_array_equal(samples[-1].force_constants, fc)


@pytest.mark.parametrize("compact", [True, False])
def test_force_constants_file_beside_yaml(tmp_path, compact):
    ph = _type1(_phonon())
    ph.save(tmp_path / "phonopy_params.yaml")
    p2s = ph.primitive.p2s_map
    fc = _fc_full(ph)[p2s] if compact else _fc_full(ph)
    write_FORCE_CONSTANTS(fc, filename=tmp_path / "FORCE_CONSTANTS", p2s_map=p2s)
    samples = read_phonopy(tmp_path / "phonopy_params.yaml")
    _assert_displaced_samples(samples[:-1], ph, tmp_path / "phonopy_params.yaml")
    last = samples[-1]
    assert last.source == str(tmp_path / "FORCE_CONSTANTS")
    np.testing.assert_array_equal(last.fc_atoms, p2s if compact else np.arange(16))
    np.testing.assert_array_equal(last.force_constants, fc)
    fc_atoms, direct = read_force_constants(tmp_path / "FORCE_CONSTANTS")
    np.testing.assert_array_equal(fc_atoms, p2s if compact else np.arange(16))
    np.testing.assert_array_equal(direct, fc)


@pytest.mark.parametrize("compact", [True, False])
def test_force_constants_hdf5(tmp_path, compact):
    ph = _phonon()
    ph.save(tmp_path / "phonopy.yaml")
    p2s = ph.primitive.p2s_map
    fc = _fc_full(ph)[p2s] if compact else _fc_full(ph)
    write_force_constants_to_hdf5(fc, str(tmp_path / "force_constants.hdf5"), p2s_map=p2s)
    (s,) = read_phonopy(tmp_path / "phonopy.yaml")
    assert s.source == str(tmp_path / "force_constants.hdf5")
    np.testing.assert_array_equal(s.fc_atoms, p2s if compact else np.arange(16))
    np.testing.assert_array_equal(s.force_constants, fc)


def test_hdf5_physical_unit_is_converted(tmp_path):
    fc = _fc_full(_phonon())
    write_force_constants_to_hdf5(fc, str(tmp_path / "fc.hdf5"), physical_unit="Ry/au^2")
    fc_atoms, read = read_force_constants(tmp_path / "fc.hdf5", supercell=16)
    np.testing.assert_allclose(read, fc * RYDBERG / BOHR**2, rtol=1e-9)
    np.testing.assert_array_equal(fc_atoms, np.arange(16))


def test_compact_hdf5_without_p2s_map(tmp_path):
    fc = _fc_full(_phonon())[[0, 8]]
    write_force_constants_to_hdf5(fc, str(tmp_path / "fc.hdf5"))
    with pytest.raises(ValueError, match="fc.hdf5: compact force constants without p2s_map"):
        read_force_constants(tmp_path / "fc.hdf5")
    fc_atoms, read = read_force_constants(tmp_path / "fc.hdf5", supercell=16, p2s_map=[0, 8])
    np.testing.assert_array_equal(fc_atoms, [0, 8])
    np.testing.assert_array_equal(read, fc)


def test_explicit_force_constants_override_yaml(tmp_path):
    ph = _phonon()
    ph.force_constants = _fc_full(ph, seed=8)
    ph.save(tmp_path / "phonopy.yaml", settings={"force_constants": True})
    other = _fc_full(ph, seed=9)
    write_FORCE_CONSTANTS(other, filename=tmp_path / "FC_other")
    (s,) = read_phonopy(tmp_path / "phonopy.yaml", force_constants=tmp_path / "FC_other")
    np.testing.assert_array_equal(s.force_constants, other)


def test_type2_force_sets_beside_disp_yaml(tmp_path):
    ph = _phonon()
    ph.generate_displacements(distance=0.03, number_of_snapshots=3, random_seed=11)
    ph.save(tmp_path / "phonopy_disp.yaml")
    assert "forces" not in PhonopyYaml().read(tmp_path / "phonopy_disp.yaml").dataset
    ph.forces = _values((3, 16, 3), 3)
    write_FORCE_SETS(ph.dataset, filename=tmp_path / "FORCE_SETS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples = read_phonopy(tmp_path / "phonopy_disp.yaml")
    cells = ph.supercells_with_displacements
    assert len(samples) == 3
    for k, s in enumerate(samples):
        assert s.source == f"{tmp_path / 'FORCE_SETS'}#{k}" and s.energy is None
        np.testing.assert_array_equal(s.forces, ph.forces[k])
        np.testing.assert_allclose(s.atoms.positions, cells[k].positions, atol=1e-8)


def test_calculator_units_converted_to_eV_and_angstrom(tmp_path):
    ph = _phonon(length_unit=BOHR, calculator="qe")
    ph.generate_displacements(distance=0.02)
    n_disp = len(ph.dataset["first_atoms"])
    ph.forces = np.ones((n_disp, 16, 3))
    ph.supercell_energies = np.full(n_disp, -10.0)
    ph.force_constants = np.ones((2, 16, 3, 3))
    ph.save(tmp_path / "phonopy_params.yaml", settings={"force_constants": True})
    samples = read_phonopy(tmp_path / "phonopy_params.yaml")
    assert len(samples) == n_disp + 1
    np.testing.assert_allclose(samples[-1].force_constants, RYDBERG / BOHR**2, rtol=1e-9)
    s = samples[0]
    np.testing.assert_allclose(
        s.atoms.cell[:], 2 * bulk("NaCl", "rocksalt", a=5.64).cell[:], rtol=1e-12
    )
    np.testing.assert_allclose(s.forces, RYDBERG / BOHR, rtol=1e-9)
    assert s.energy == pytest.approx(-10.0 * RYDBERG, rel=1e-9)


def test_load_dataset_folder_tree(tmp_path):
    ph1 = _type1(_phonon())
    ph1.save(tmp_path / "phonopy_params.yaml")
    ph1.save(tmp_path / "phonopy_disp.yaml")
    _type2(_phonon()).save(tmp_path / "NaCl_rd_phonopy_params.yaml")
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    ph_fc = _phonon()
    ph_fc.force_constants = _fc_full(ph_fc)
    ph_fc.save(tmp_path / "a" / "phonopy.yaml", settings={"force_constants": True})
    _type2(_phonon()).save(tmp_path / "b" / "deeper" / "phonopy_params.yaml")

    assert [p.name for p in find_phonopy_yamls(tmp_path)] == [
        "phonopy_params.yaml",
        "NaCl_rd_phonopy_params.yaml",
    ]
    samples = load_dataset(tmp_path)
    files = [s.source.rsplit("#", 1)[0] for s in samples]
    assert files == (
        [str(tmp_path / "phonopy_params.yaml")] * 4
        + [str(tmp_path / "NaCl_rd_phonopy_params.yaml")] * 3
        + [str(tmp_path / "a" / "phonopy.yaml")]
        + [str(tmp_path / "b" / "deeper" / "phonopy_params.yaml")] * 3
    )
    assert len(load_dataset([tmp_path / "a", tmp_path / "b"])) == 4
    assert len(load_dataset(str(tmp_path / "phonopy_disp.yaml"))) == 4
