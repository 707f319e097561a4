"""Readers for phonopy's FORCE_SETS, FORCE_CONSTANTS and force_constants.hdf5.

Both readers return eV/Å units: the values in the file are in the units of
the phonopy ``calculator`` that wrote them (eV/Å for VASP and the default) and
are converted with phonopy's own unit table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from phonopy.file_IO import (
    get_io_module_to_decompress,
    parse_FORCE_CONSTANTS,
    read_force_constants_hdf5,
)
from phonopy.interface.calculator import (
    get_calculator_physical_units,
    get_force_constant_conversion_factor,
)

__all__ = ["calculator_units", "read_force_constants", "read_force_sets"]


def calculator_units(calculator: str | None, source: str | os.PathLike) -> Any:
    """Return phonopy's ``CalculatorPhysicalUnits`` of ``calculator``.

    Fields used here: ``distance_to_A``, ``force_to_eVperA``, ``energy_to_eV``
    and ``force_constants_unit``. Raises ValueError naming ``source`` for an
    unknown calculator.
    """
    try:
        return get_calculator_physical_units(calculator)
    except Exception as exc:
        raise ValueError(f"{source}: unknown phonopy calculator {calculator!r}") from exc


def _n_atoms(supercell: Any) -> int | None:
    if supercell is None:
        return None
    if isinstance(supercell, (int, np.integer)):
        return int(supercell)
    return len(supercell)


def _mismatch(path: Path, what: str, n_file: int, n_cell: int, supercell_source: Any) -> ValueError:
    cell_src = f"the supercell in {supercell_source}" if supercell_source else "the supercell"
    return ValueError(f"{path}: {what} {n_file} atoms, but {cell_src} has {n_cell} atoms")


def _data_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a text file as (line number, tokens), '#' comments removed."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with get_io_module_to_decompress(path).open(path, "rt") as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as text ({exc})") from exc
    lines = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split("#", 1)[0].split()
        if tokens:
            lines.append((lineno, tokens))
    return lines


def _numbers(path: Path, lineno: int, tokens: list[str], count: int, what: str) -> list[float]:
    if len(tokens) != count:
        raise ValueError(
            f"{path}: line {lineno}: expected {count} numbers ({what}), got {' '.join(tokens)!r}"
        )
    try:
        return [float(t) for t in tokens]
    except ValueError as exc:
        raise ValueError(
            f"{path}: line {lineno}: non-numeric {what}: {' '.join(tokens)!r}"
        ) from exc


def _integer(path: Path, lineno: int, tokens: list[str], what: str) -> int:
    if len(tokens) != 1:
        raise ValueError(
            f"{path}: line {lineno}: expected one integer ({what}), got {' '.join(tokens)!r}"
        )
    try:
        return int(tokens[0])
    except ValueError as exc:
        raise ValueError(f"{path}: line {lineno}: {what} is not an integer: {tokens[0]!r}") from exc


def read_force_sets(
    path: str | os.PathLike,
    n_atoms: int | None = None,
    *,
    calculator: str | None = None,
    supercell_source: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Read a phonopy FORCE_SETS file (type 1 or type 2), strictly.

    Parameters
    ----------
    path : str or os.PathLike
        FORCE_SETS file; ``.xz``/``.lzma``/``.gz``/``.bz2`` compression is
        recognised by the suffix.
    n_atoms : int, optional
        Number of atoms N of the supercell. Required for type-2 files (which
        have no header); checked against the header of type-1 files.
    calculator : str, optional
        phonopy calculator whose units the file uses (None: Å and eV/Å).
    supercell_source : str or os.PathLike, optional
        File the supercell came from, named in atom-count errors.

    Returns
    -------
    dict
        phonopy displacement dataset in Å and eV/Å. Type 1:
        ``{"natom": N, "first_atoms": [{"number": int (0-based atom),
        "displacement": (3,) Å, "forces": (N, 3) eV/Å}, ...]}``.
        Type 2: ``{"displacements": (n, N, 3) Å, "forces": (n, N, 3) eV/Å}``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Malformed blocks (line counts, non-numeric values, atom indices out of
        range), non-finite values, or an atom count different from ``n_atoms``.
    """
    path = Path(path)
    lines = _data_lines(path)
    if not lines:
        raise ValueError(f"{path}: FORCE_SETS file is empty")
    units = calculator_units(calculator, path)
    to_A, to_eVA = units.distance_to_A, units.force_to_eVperA
    first_no, first = lines[0]
    if len(first) == 6:
        if n_atoms is None:
            raise ValueError(
                f"{path}: type-2 FORCE_SETS needs the number of atoms of the supercell"
            )
        rows = np.array([_numbers(path, no, tok, 6, "displacement and force") for no, tok in lines])
        if len(rows) % n_atoms != 0:
            raise ValueError(
                f"{path}: {len(rows)} data lines are not a whole number of supercells of "
                f"{n_atoms} atoms"
                + (f" (supercell from {supercell_source})" if supercell_source else "")
            )
        rows = rows.reshape(-1, n_atoms, 6)
        dataset = {"displacements": rows[:, :, :3] * to_A, "forces": rows[:, :, 3:] * to_eVA}
        for name, arr in dataset.items():
            if not np.all(np.isfinite(arr)):
                bad = int(np.argwhere(~np.isfinite(arr))[0][0])
                raise ValueError(f"{path}: non-finite {name} in supercell {bad + 1}")
        return dataset
    if len(first) != 1:
        raise ValueError(
            f"{path}: line {first_no}: not a FORCE_SETS file (first line must hold the number "
            f"of atoms (type 1) or 6 numbers (type 2)), got {' '.join(first)!r}"
        )
    natom = _integer(path, first_no, first, "number of atoms")
    if natom <= 0:
        raise ValueError(f"{path}: line {first_no}: number of atoms must be positive, got {natom}")
    if n_atoms is not None and natom != n_atoms:
        raise _mismatch(path, "has forces on", natom, n_atoms, supercell_source)
    if len(lines) < 2:
        raise ValueError(f"{path}: truncated after the number of atoms")
    n_disp = _integer(path, lines[1][0], lines[1][1], "number of displacements")
    expected = 2 + n_disp * (natom + 2)
    if n_disp < 0 or len(lines) != expected:
        raise ValueError(
            f"{path}: declares {n_disp} displacements of {natom} atoms, which needs {expected} "
            f"non-blank lines, but the file has {len(lines)} (truncated or malformed block)"
        )
    first_atoms = []
    for k in range(n_disp):
        block = lines[2 + k * (natom + 2) : 2 + (k + 1) * (natom + 2)]
        no, tok = block[0]
        atom = _integer(path, no, tok, f"displaced atom of displacement {k + 1}")
        if not 1 <= atom <= natom:
            raise ValueError(f"{path}: line {no}: displaced atom {atom} is not in 1..{natom}")
        disp = np.array(_numbers(path, *block[1], 3, f"displacement {k + 1}")) * to_A
        forces = np.array(
            [_numbers(path, n, t, 3, f"force of displacement {k + 1}") for n, t in block[2:]]
        )
        forces *= to_eVA
        if not (np.all(np.isfinite(disp)) and np.all(np.isfinite(forces))):
            raise ValueError(f"{path}: non-finite displacement or forces in displacement {k + 1}")
        first_atoms.append({"number": atom - 1, "displacement": disp, "forces": forces})
    return {"natom": natom, "first_atoms": first_atoms}


def _fc_text_rows(path: Path) -> np.ndarray:
    """Row-atom indices (0-based, shape (M,)) of a FORCE_CONSTANTS text file,
    checking its header and line count."""
    with open(path) as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: FORCE_CONSTANTS file is empty")
    head = lines[0].split()
    try:
        shape = [int(x) for x in head]
    except ValueError as exc:
        raise ValueError(f"{path}: line 1: non-integer header {lines[0]!r}") from exc
    if len(shape) == 1:
        shape *= 2
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"{path}: line 1: header must be 'M N' (or 'N'), got {lines[0]!r}")
    m, n = shape
    if len(lines) != 1 + 4 * m * n:
        raise ValueError(
            f"{path}: header declares {m} x {n} blocks, which needs {1 + 4 * m * n} lines, "
            f"but the file has {len(lines)} (truncated or malformed)"
        )
    rows = np.empty(m, dtype=np.int64)
    for a in range(m):
        for j in range(n):
            lineno = 2 + 4 * (a * n + j)
            tok = lines[lineno - 1].split()
            try:
                i_atom, j_atom = int(tok[0]), int(tok[1])
            except (ValueError, IndexError) as exc:
                raise ValueError(
                    f"{path}: line {lineno}: expected 'i j' atom indices, got {lines[lineno - 1]!r}"
                ) from exc
            if j == 0:
                rows[a] = i_atom - 1
            elif i_atom - 1 != rows[a] or j_atom != j + 1:
                raise ValueError(
                    f"{path}: line {lineno}: block 'i j' = {i_atom} {j_atom} out of order"
                )
    return rows


def read_force_constants(
    path: str | os.PathLike,
    supercell: Any = None,
    p2s_map: Any = None,
    *,
    calculator: str | None = None,
    supercell_source: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read phonopy force constants (``FORCE_CONSTANTS`` text or ``*.hdf5``).

    Parameters
    ----------
    path : str or os.PathLike
        File; a ``.hdf5``/``.h5`` suffix selects the hdf5 reader.
    supercell : int, ase.Atoms or PhonopyAtoms, optional
        Supercell (or its atom count N) the file must match.
    p2s_map : array_like of int, optional
        ``primitive.p2s_map`` (M,): the rows a compact file must hold. Without
        it, the rows of a compact file are taken from the file (the 'i j'
        block headers of FORCE_CONSTANTS, ``p2s_map`` in hdf5).
    calculator : str, optional
        phonopy calculator whose units the file uses when it does not say
        (None: eV/Å²). A ``physical_unit`` stored in hdf5 takes precedence.
    supercell_source : str or os.PathLike, optional
        File the supercell came from, named in atom-count errors.

    Returns
    -------
    fc_atoms : numpy.ndarray
        (M,) int64 supercell indices of the rows; ``arange(N)`` when full.
    force_constants : numpy.ndarray
        (M, N, 3, 3) float64, eV/Å².

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Malformed file, atom counts that disagree with ``supercell``, rows
        that disagree with ``p2s_map``, or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    n_cell = _n_atoms(supercell)
    units = calculator_units(calculator, path)
    unit = units.force_constants_unit
    rows = None
    is_hdf5 = path.suffix in (".hdf5", ".h5")
    if not is_hdf5:
        try:
            rows = _fc_text_rows(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot be read as FORCE_CONSTANTS text ({exc})") from exc
    try:
        if is_hdf5:
            import h5py

            fc, stored_unit = read_force_constants_hdf5(path, return_physical_unit=True)
            unit = stored_unit or unit
            with h5py.File(path, "r") as f:
                if "p2s_map" in f:
                    rows = np.array(f["p2s_map"][:], dtype=np.int64)
        else:
            fc = parse_FORCE_CONSTANTS(path)
        fc = np.array(fc, dtype=np.float64) * get_force_constant_conversion_factor(unit, None)
    except Exception as exc:
        raise ValueError(
            f"{path}: cannot be read as force constants ({type(exc).__name__}: {exc})"
        ) from exc

    if fc.ndim != 4 or fc.shape[2:] != (3, 3) or fc.shape[0] > fc.shape[1]:
        raise ValueError(
            f"{path}: force constants have shape {fc.shape}, expected (M, N, 3, 3) with M <= N"
        )
    m, n = fc.shape[:2]
    if n_cell is not None and n != n_cell:
        raise _mismatch(path, "holds force constants of", n, n_cell, supercell_source)
    if m == n:
        fc_atoms = np.arange(n, dtype=np.int64)
    else:
        if p2s_map is not None:
            p2s = np.asarray(p2s_map, dtype=np.int64)
            if rows is not None and (len(rows) != len(p2s) or np.any(rows != p2s)):
                raise ValueError(
                    f"{path}: compact force constants are for atoms {rows.tolist()}, but the "
                    f"primitive cell maps to supercell atoms {p2s.tolist()} (different primitive matrix?)"
                )
            rows = p2s
        if rows is None:
            raise ValueError(f"{path}: compact force constants without p2s_map; pass p2s_map")
        if len(rows) != m:
            raise ValueError(
                f"{path}: compact force constants have {m} rows but p2s_map has {len(rows)} atoms"
            )
        fc_atoms = rows
    if not np.all(np.isfinite(fc)):
        raise ValueError(f"{path}: force constants have non-finite (NaN/inf) values")
    return fc_atoms, fc
