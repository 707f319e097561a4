"""Training data: phonopy files read as :class:`Sample` objects (eV, Å)."""

from .archive import pack_folder, unpack_archive, unpacked, unpacked_once
from .loading import find_phonopy_yamls, load_dataset
from .phonopy_files import read_force_constants, read_force_sets
from .phonopy_io import read_phonopy
from .sample import Sample

__all__ = [
    "Sample",
    "find_phonopy_yamls",
    "load_dataset",
    "pack_folder",
    "read_force_constants",
    "read_force_sets",
    "read_phonopy",
    "unpack_archive",
    "unpacked",
    "unpacked_once",
]
