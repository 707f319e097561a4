"""Writers produce files that phonopy (and numpy/yaml) read back; writes are atomic."""

import os

import numpy as np
import phonopy
import pytest
import yaml
from phonopy.file_IO import parse_FORCE_CONSTANTS

from ase_fcnet.phonons import (
    atomic_write,
    band_structure,
    thermal_properties,
    write_band_yaml,
    write_force_constants,
    write_phonopy_yaml,
    write_thermal_properties_table,
    write_thermal_properties_yaml,
)


def test_force_constants_roundtrip(sic_phonon, tmp_path):
    path = write_force_constants(sic_phonon, tmp_path / "FORCE_CONSTANTS")
    fc = parse_FORCE_CONSTANTS(path, p2s_map=sic_phonon.primitive.p2s_map)
    assert fc.shape == sic_phonon.force_constants.shape
    # the text format has 15 decimals
    np.testing.assert_allclose(fc, sic_phonon.force_constants, rtol=0, atol=1e-13)


def test_phonopy_yaml_roundtrip(sic_phonon, tmp_path):
    path = write_phonopy_yaml(sic_phonon, tmp_path / "phonopy.yaml")
    loaded = phonopy.load(path, log_level=0)
    assert len(loaded.primitive) == len(sic_phonon.primitive)
    np.testing.assert_array_equal(loaded.supercell_matrix, sic_phonon.supercell_matrix)
    np.testing.assert_allclose(loaded.primitive.masses, sic_phonon.primitive.masses)
    np.testing.assert_allclose(loaded.force_constants, sic_phonon.force_constants, rtol=0, atol=1e-12)
    q = [[0.5, 0.0, 0.5], [0.25, 0.1, 0.0]]
    np.testing.assert_allclose(loaded.run_qpoints(q).frequencies, sic_phonon.run_qpoints(q).frequencies, atol=1e-8)


def test_band_yaml_matches_band_structure(si_phonon, tmp_path):
    band = band_structure(si_phonon, npoints=11)
    path = write_band_yaml(si_phonon, tmp_path / "band.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["nqpoint"] == 11 * len(band.frequencies)
    assert data["labels"][0] == ["Γ", "X"]
    freqs = np.array([[mode["frequency"] for mode in point["band"]] for point in data["phonon"]])
    np.testing.assert_allclose(freqs, band.all_frequencies, atol=1e-6)


def test_thermal_table_and_yaml(si_phonon, tmp_path):
    thermal = thermal_properties(si_phonon, t_max=500, t_step=50, mesh=(6, 6, 6))
    table = np.loadtxt(write_thermal_properties_table(thermal, tmp_path / "thermal.dat"))
    csv = np.loadtxt(write_thermal_properties_table(thermal, tmp_path / "thermal.csv"), delimiter=",")
    expected = np.column_stack([thermal.temperatures, thermal.free_energy, thermal.entropy, thermal.heat_capacity])
    np.testing.assert_allclose(table, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(csv, expected, rtol=1e-9, atol=1e-12)
    data = yaml.safe_load(write_thermal_properties_yaml(si_phonon, tmp_path / "thermal_properties.yaml").read_text())
    temps = [row["temperature"] for row in data["thermal_properties"]]
    cv = [row["heat_capacity"] for row in data["thermal_properties"]]
    np.testing.assert_allclose(temps, thermal.temperatures)
    np.testing.assert_allclose(cv, thermal.heat_capacity, rtol=1e-6, atol=1e-8)


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "FORCE_CONSTANTS"
    target.write_text("previous content")

    def failing_writer(tmp):
        with open(tmp, "w") as handle:
            handle.write("half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing_writer)
    assert target.read_text() == "previous content"
    assert sorted(os.listdir(tmp_path)) == ["FORCE_CONSTANTS"]
    with pytest.raises(RuntimeError, match="no data"):
        atomic_write(tmp_path / "empty.txt", lambda tmp: None)
    assert sorted(os.listdir(tmp_path)) == ["FORCE_CONSTANTS"]


def test_writers_require_results(si_phonon, tmp_path):
    fresh = si_phonon.replicate()
    with pytest.raises(ValueError, match="no force constants"):
        write_force_constants(fresh, tmp_path / "FORCE_CONSTANTS")
    with pytest.raises(ValueError, match="band structure"):
        write_band_yaml(fresh, tmp_path / "band.yaml")
    with pytest.raises(ValueError, match="thermal properties"):
        write_thermal_properties_yaml(fresh, tmp_path / "thermal_properties.yaml")
    assert os.listdir(tmp_path) == []
    write_phonopy_yaml(si_phonon, tmp_path / "new" / "phonopy.yaml")  # folders are created
    assert os.listdir(tmp_path / "new") == ["phonopy.yaml"]
