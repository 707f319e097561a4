"""LO–TO splitting: our BORN route equals phonopy's own NAC on phonopy's NaCl example; the polar rule."""
from pathlib import Path

import numpy as np
import phonopy
import pytest
from ase.io import read

from ase_fcnet.phonons.adapter import atoms_to_phonopy
from ase_fcnet.phonons.analysis import band_structure
from ase_fcnet.phonons.nac import BornFileError, apply_nac, may_be_polar, read_born

NACL_EX = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dft" / "NaCl_example"
needs_data = pytest.mark.skipif(not NACL_EX.is_dir(), reason=f"phonopy's NaCl example not at {NACL_EX}")
Q_NEAR_GAMMA = [[0.001, 0.0, 0.0], [0.0, 0.001, 0.001], [0.25, 0.0, 0.25]]


def _reference(born: bool):
    return phonopy.load(NACL_EX / "phonopy_disp.yaml", force_sets_filename=NACL_EX / "FORCE_SETS",
                        born_filename=NACL_EX / "BORN" if born else None, produce_fc=True,
                        log_level=0)


def _ours(reference):
    """Our Phonopy from the POSCAR via the adapter's conversion, with phonopy's DFT force constants."""
    atoms = read(NACL_EX / "POSCAR-unitcell", format="vasp")
    ours = phonopy.Phonopy(atoms_to_phonopy(atoms), supercell_matrix=reference.supercell_matrix,
                           primitive_matrix=reference.primitive_matrix)
    ours.force_constants = reference.force_constants
    ours.masses = reference.primitive.masses  # ASE's and phonopy's standard masses differ by 1e-5
    return ours


def _frequencies(phonon, qpoints):
    phonon.run_qpoints(qpoints)
    return np.array(phonon.qpoints.frequencies)


@needs_data
def test_born_file_gives_phonopys_nac_frequencies():
    reference = _reference(born=True)
    ours = _ours(reference)
    plain = _frequencies(ours, Q_NEAR_GAMMA)
    params = apply_nac(ours, NACL_EX / "BORN")
    assert params["born"].shape == (2, 3, 3) and params["dielectric"].shape == (3, 3)
    corrected = _frequencies(ours, Q_NEAR_GAMMA)
    np.testing.assert_allclose(corrected, _frequencies(reference, Q_NEAR_GAMMA), atol=1e-8)
    # the correction matters: LO is lifted near Γ (NaCl: TO ≈ 4.6 THz, LO ≈ 7.4 THz)
    lo_to = corrected[0, -1] - corrected[0, -2]
    assert lo_to > 2.0 and plain[0, -1] - plain[0, -2] < 0.01
    # band structure through our analysis code equals phonopy's with NAC too
    ours_band = band_structure(ours, npoints=11).all_frequencies
    ref_band = band_structure(reference, npoints=11).all_frequencies
    np.testing.assert_allclose(ours_band, ref_band, atol=1e-8)


@needs_data
def test_born_dict_equals_file():
    reference = _reference(born=True)
    ours = _ours(reference)
    apply_nac(ours, {"born": reference.nac_params["born"], "dielectric": reference.nac_params["dielectric"],
                     "factor": reference.nac_params["factor"]})
    np.testing.assert_allclose(_frequencies(ours, Q_NEAR_GAMMA),
                               _frequencies(reference, Q_NEAR_GAMMA), atol=1e-8)


@needs_data
def test_bad_born_input_is_a_clear_error(tmp_path):
    ours = _ours(_reference(born=False))
    with pytest.raises(BornFileError, match="not found"):
        read_born(ours, tmp_path / "BORN")
    garbage = tmp_path / "BORN_garbage"
    garbage.write_text("hello\nworld\n")
    with pytest.raises(BornFileError, match="not a BORN file"):
        read_born(ours, garbage)
    with pytest.raises(BornFileError, match=r"\(2, 3, 3\)"):
        read_born(ours, {"born": np.zeros((3, 3, 3)), "dielectric": np.eye(3)})
    with pytest.raises(BornFileError, match="positive-definite"):
        read_born(ours, {"born": np.zeros((2, 3, 3)), "dielectric": -np.eye(3)})
    with pytest.raises(BornFileError, match="neutrality"):
        read_born(ours, {"born": np.stack([np.eye(3), np.eye(3)]), "dielectric": np.eye(3)})


@pytest.mark.parametrize("symbols, polar", [
    (["Na", "Cl"], ["Cl"]), (["Si", "C"], ["C", "Si"]), (["Ga", "As"], ["As"]),
    (["Mg", "O"], ["O"]), (["Si", "Si"], []), (["Al"], []), (["Cu", "Cu", "Cu", "Au"], []),
])
def test_polar_rule(symbols, polar):
    assert may_be_polar(symbols) == polar


@needs_data
def test_phonopy_from_atoms_born_argument():
    """The library route: born= checked before the model, LO lifted near Γ after."""
    from ase.build import bulk

    from ase_fcnet.calculator import FCNetCalculator
    from ase_fcnet.phonons import phonopy_from_atoms

    class NoModel:
        def hessian_vector_products(self, atoms, vectors):
            raise AssertionError("the model was called")

    nacl = bulk("NaCl", "rocksalt", a=5.69)
    with pytest.raises(BornFileError, match="not found"):
        phonopy_from_atoms(nacl, NoModel(), supercell_matrix=2, born=NACL_EX / "missing")
    calc = FCNetCalculator("fcnet-small", device="cpu", dtype="float64")
    plain = phonopy_from_atoms(nacl, calc, supercell_matrix=2)
    corrected = phonopy_from_atoms(nacl, calc, supercell_matrix=2, born=NACL_EX / "BORN")
    assert plain.nac_params is None and corrected.nac_params["born"].shape == (2, 3, 3)
    np.testing.assert_array_equal(plain.force_constants, corrected.force_constants)
    q = [[0.001, 0.0, 0.0]]
    f_plain, f_nac = _frequencies(plain, q)[0], _frequencies(corrected, q)[0]
    assert np.abs(f_nac[:3]).max() < 0.05 and np.abs(f_plain[:3]).max() < 0.05  # acoustic
    assert f_plain[5] - f_plain[4] < 0.01 < 1.0 < f_nac[5] - f_nac[4]  # LO split from TO
