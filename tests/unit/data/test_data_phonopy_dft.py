"""Readers on the shared DFT phonopy data (Si, NaCl random displacements, NaCl example)."""

import shutil
from pathlib import Path

import numpy as np
import phonopy
import pytest
from phonopy.file_IO import parse_FORCE_SETS

from ase_fcnet.data import load_dataset, read_phonopy

DFT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dft"
SI = DFT / "Si_phonopy_params.yaml"
NACL_RD = DFT / "NaCl_rd_phonopy_params.yaml.xz"
NACL_EX = DFT / "NaCl_example"

pytestmark = pytest.mark.skipif(
    not (SI.is_file() and NACL_RD.is_file() and (NACL_EX / "FORCE_SETS").is_file()),
    reason=f"shared DFT data not found at {DFT} (expected shared/ beside the repository)",
)


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path, monkeypatch):
    """phonopy.load (the reference here) also reads FORCE_SETS / FORCE_CONSTANTS from the cwd."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _perfect_positions(yaml_path, **kwargs):
    ph = phonopy.load(yaml_path, produce_fc=False, log_level=0, is_nac=False, **kwargs)
    return ph, np.asarray(ph.supercell.positions)


def test_si_one_sample_per_displacement():
    samples = read_phonopy(SI)
    ph, perfect = _perfect_positions(SI)
    first_atoms = ph.dataset["first_atoms"]
    assert len(samples) == len(first_atoms) == 1
    for k, (s, d) in enumerate(zip(samples, first_atoms)):
        assert s.source == f"{SI}#{k}"
        assert s.n_atoms == 16 and s.forces.shape == (16, 3)
        np.testing.assert_array_equal(s.forces, d["forces"])
        assert s.energy == d["supercell_energy"] == -86.71940396
        disp = s.atoms.positions - perfect
        np.testing.assert_allclose(disp[d["number"]], d["displacement"], atol=1e-12)
        assert np.count_nonzero(np.abs(disp).max(axis=1) > 1e-12) == 1
        np.testing.assert_allclose(s.forces.sum(axis=0), 0.0, atol=1e-5)
        u = d["displacement"] / np.linalg.norm(d["displacement"])
        assert s.forces[d["number"]] @ u < -0.1
        assert s.fc_atoms is None and s.stress is None
        np.testing.assert_allclose(s.atoms.get_masses(), 28.0855)


def test_nacl_random_displacements_with_energies():
    samples = read_phonopy(NACL_RD)
    ph, perfect = _perfect_positions(NACL_RD)
    ds = ph.dataset
    assert len(samples) == len(ds["displacements"]) == 10
    energies = np.array([s.energy for s in samples])
    np.testing.assert_array_equal(energies, ds["supercell_energies"])
    for k, s in enumerate(samples):
        assert s.n_atoms == 64 and s.source == f"{NACL_RD}#{k}"
        np.testing.assert_array_equal(s.forces, ds["forces"][k])
        np.testing.assert_allclose(s.atoms.positions - perfect, ds["displacements"][k], atol=1e-12)
        np.testing.assert_allclose(
            np.linalg.norm(s.atoms.positions - perfect, axis=1), 0.03, atol=1e-9
        )
        np.testing.assert_allclose(s.forces.sum(axis=0), 0.0, atol=1e-5)
    assert {s.atoms.get_chemical_symbols().count("Na") for s in samples} == {32}
    u = np.array([s.atoms.positions for s in samples]) - perfect
    work = np.einsum("kia,kia->k", u, np.array([s.forces for s in samples]))
    assert np.all(work < 0)
    harmonic_e0 = energies + 0.5 * work
    assert np.ptp(harmonic_e0) < 0.2 * np.ptp(energies)


def test_nacl_example_force_sets_beside_disp_yaml():
    yaml_path = NACL_EX / "phonopy_disp.yaml"
    samples = read_phonopy(yaml_path)
    reference = parse_FORCE_SETS(NACL_EX / "FORCE_SETS")
    ph, perfect = _perfect_positions(yaml_path)
    assert len(samples) == len(reference["first_atoms"]) == len(ph.dataset["first_atoms"]) == 2
    for k, (s, d) in enumerate(zip(samples, reference["first_atoms"])):
        assert s.source == f"{NACL_EX / 'FORCE_SETS'}#{k}"
        assert s.energy is None and s.n_atoms == 64
        np.testing.assert_array_equal(s.forces, d["forces"])
        disp = s.atoms.positions - perfect
        np.testing.assert_allclose(disp[d["number"]], d["displacement"], atol=1e-12)
        assert s.forces[d["number"]] @ d["displacement"] < 0
        np.testing.assert_allclose(s.forces.sum(axis=0), 0.0, atol=1e-5)
    assert [s.atoms[d["number"]].symbol for s, d in zip(samples, reference["first_atoms"])] == [
        "Na",
        "Cl",
    ]


def test_nacl_example_explicit_force_sets(tmp_path):
    shutil.copy(NACL_EX / "phonopy_disp.yaml", tmp_path / "phonopy_disp.yaml")
    samples = read_phonopy(tmp_path / "phonopy_disp.yaml", force_sets=NACL_EX / "FORCE_SETS")
    beside = read_phonopy(NACL_EX / "phonopy_disp.yaml")
    assert len(samples) == 2
    for a, b in zip(samples, beside):
        np.testing.assert_array_equal(a.forces, b.forces)
        np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)


def test_disp_yaml_alone_has_no_forces(tmp_path):
    shutil.copy(NACL_EX / "phonopy_disp.yaml", tmp_path / "phonopy_disp.yaml")
    with pytest.raises(ValueError) as info:
        read_phonopy(tmp_path / "phonopy_disp.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'phonopy_disp.yaml'}: displacement dataset has no forces (no FORCE_SETS beside it)"
    )


def test_load_dataset_on_shared_folder():
    samples = load_dataset(DFT)
    sources = [s.source.rsplit("#", 1)[0] for s in samples]
    assert len(samples) == 1 + 10 + 2
    assert sources.count(str(NACL_RD)) == 10
    assert sources.count(str(SI)) == 1
    assert sources.count(str(NACL_EX / "FORCE_SETS")) == 2
    assert len(load_dataset([NACL_EX])) == 2
    assert len(load_dataset([SI, NACL_EX / "FORCE_SETS"])) == 3
