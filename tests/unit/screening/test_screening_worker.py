"""The worker's structure checks: what fcnet phonons refuses, a screen fails with the same reason."""
import pytest
from ase.build import bulk
from ase.io import read

from ase_fcnet.graph import StructureError
from ase_fcnet.screening.worker import check_material


@pytest.mark.parametrize("sites, words", [
    ("Na1 Na 0 0 0 0.8", "partial occupancy Na 0.8"),
    ("Na1 Na 0 0 0 0.5\nK1 K 0 0 0 0.5", "mixed occupancy Na 0.5 + K 0.5"),
])
def test_disordered_sites_fail_with_the_site(tmp_path, write_rocksalt_cif, sites, words):
    atoms = read(write_rocksalt_cif(tmp_path / "x.cif", sites))
    with pytest.raises(StructureError, match="site 0") as err:
        check_material(atoms, ["Na", "K", "Cl"], 5.0)
    assert words in str(err.value)


def test_ordered_crystal_passes_and_unknown_element_is_named():
    check_material(bulk("NaCl", "rocksalt", a=5.64), ["Na", "Cl"], 5.0)
    with pytest.raises(StructureError, match="element.s. K not supported"):
        check_material(bulk("KCl", "rocksalt", a=6.3), ["Na", "Cl"], 5.0)
