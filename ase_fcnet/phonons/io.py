"""Writers for phonopy-readable results, all atomic.

Every file is first written to a temporary file in the destination folder and
then moved into place with :func:`os.replace`, so an interrupted or failing
write never leaves a half-written file (an existing file stays untouched).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from phonopy import Phonopy
from phonopy.file_IO import write_FORCE_CONSTANTS

from ase_fcnet.fileio import atomic_write

from .analysis import ThermalProperties


def write_force_constants(phonon: Phonopy, path="FORCE_CONSTANTS") -> Path:
    """Write phonopy's ``FORCE_CONSTANTS`` text file (compact or full, eV/Å²).

    Compact force constants, shape (n_prim, n_super, 3, 3), are written with
    the primitive-to-supercell map so ``phonopy.file_IO.parse_FORCE_CONSTANTS``
    and phonopy itself read them back.
    """
    fc = phonon.force_constants
    if fc is None:
        raise ValueError("phonon has no force constants to write")
    p2s_map = phonon.primitive.p2s_map if fc.shape[0] != fc.shape[1] else None
    return atomic_write(path, lambda tmp: write_FORCE_CONSTANTS(fc, filename=tmp, p2s_map=p2s_map))


def write_phonopy_yaml(phonon: Phonopy, path="phonopy.yaml") -> Path:
    """Write ``phonopy.yaml`` with structure, supercell/primitive matrices and force constants.

    ``phonopy.load(path)`` restores the same force constants.
    """
    if phonon.force_constants is None:
        raise ValueError("phonon has no force constants to write")
    return atomic_write(path, lambda tmp: phonon.save(filename=tmp, settings={"force_constants": True}))


def write_band_yaml(phonon: Phonopy, path="band.yaml") -> Path:
    """Write ``band.yaml`` with phonopy's writer (run :func:`band_structure` first)."""
    if phonon.band_structure is None:
        raise ValueError("no band structure on phonon; call band_structure(phonon) first")
    return atomic_write(path, lambda tmp: phonon.write_yaml_band_structure(filename=tmp))


def write_thermal_properties_yaml(phonon: Phonopy, path="thermal_properties.yaml") -> Path:
    """Write ``thermal_properties.yaml`` with phonopy's writer (run :func:`thermal_properties` first)."""
    if phonon.thermal_properties is None:
        raise ValueError("no thermal properties on phonon; call thermal_properties(phonon) first")
    return atomic_write(path, lambda tmp: phonon.write_yaml_thermal_properties(filename=tmp))


def write_thermal_properties_table(thermal: ThermalProperties, path="thermal_properties.dat") -> Path:
    """Write a text table: T (K), F (kJ/mol), S (J/K/mol), Cv (J/K/mol).

    Columns are comma-separated when ``path`` ends in ``.csv`` and separated by
    whitespace otherwise; the header line starts with ``#``.  ``numpy.loadtxt``
    (with ``delimiter=","`` for CSV) reads it back.
    """
    table = np.column_stack([thermal.temperatures, thermal.free_energy, thermal.entropy, thermal.heat_capacity])
    names = ["T_K", "F_kJ_per_mol", "S_J_per_K_mol", "Cv_J_per_K_mol"]
    delimiter = "," if str(path).lower().endswith(".csv") else " "
    header = f"per mole of primitive cells ({thermal.n_atoms} atoms)\n" + delimiter.join(names)
    return atomic_write(path, lambda tmp: np.savetxt(tmp, table, fmt="%.10e", delimiter=delimiter, header=header))
