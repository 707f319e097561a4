"""Phonopy adapter: exact force constants from Hessian-vector products, analysis, I/O and plots."""

from .adapter import (
    atoms_to_phonopy,
    displacement_vectors,
    force_constants_full_hessian,
    calculator_hessian_vector_products,
    phonopy_from_atoms,
    phonopy_to_atoms,
    prepare_phonopy,
    resolve_supercell_matrix,
    set_force_constants,
)
from .analysis import (
    DOS,
    BandStructure,
    FrequencySummary,
    ThermalProperties,
    band_structure,
    dos,
    frequency_summary,
    thermal_properties,
)
from .io import (
    atomic_write,
    write_band_yaml,
    write_force_constants,
    write_phonopy_yaml,
    write_thermal_properties_table,
    write_thermal_properties_yaml,
)
from .nac import BornFileError, apply_nac, may_be_polar, read_born
from .plotting import draw_band_comparison, plot_band_comparison, plot_band_dos, plot_thermal

__all__ = [
    "DOS",
    "BandStructure",
    "BornFileError",
    "FrequencySummary",
    "ThermalProperties",
    "apply_nac",
    "atomic_write",
    "atoms_to_phonopy",
    "band_structure",
    "displacement_vectors",
    "dos",
    "force_constants_full_hessian",
    "frequency_summary",
    "calculator_hessian_vector_products",
    "may_be_polar",
    "phonopy_from_atoms",
    "draw_band_comparison",
    "plot_band_comparison",
    "phonopy_to_atoms",
    "plot_band_dos",
    "plot_thermal",
    "prepare_phonopy",
    "read_born",
    "resolve_supercell_matrix",
    "set_force_constants",
    "thermal_properties",
    "write_band_yaml",
    "write_force_constants",
    "write_phonopy_yaml",
    "write_thermal_properties_table",
    "write_thermal_properties_yaml",
]
