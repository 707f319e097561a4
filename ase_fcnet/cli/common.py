"""Shared pieces of the CLI: reading structures, loading models, reporting."""
from __future__ import annotations

import warnings
from pathlib import Path

import click
from ase import Atoms

from ase_fcnet.graph import StructureError, neighbour_pairs, species_indices, validate_structure


def parse_mesh(value: str) -> float | tuple[int, int, int]:
    """``--mesh``: one length in Å (``"30"``) or three integers (``"16 16 16"``, commas allowed).

    Only the form is checked here; the ranges are the settings checks'
    (:func:`ase_fcnet.phonons.validate.check_mesh`).
    """
    parts = value.replace(",", " ").split()
    try:
        if len(parts) == 1:
            return float(parts[0])
        if len(parts) == 3:
            return tuple(int(p) for p in parts)
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r}: give three integers ('16 16 16') or one length in Å ('30')",
                             param_hint="--mesh")


def echo(line: str) -> None:
    """One progress line on stderr (stdout stays for results)."""
    click.echo(line, err=True)


def model_options(func):
    """--model, --device and --dtype, shared by the commands that evaluate a model."""
    func = click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
                        help="Precision of the model and its derivatives. Default: the "
                             "model's measured choice (`fcnet models` shows it), else float64.")(func)
    func = click.option("--device", default="auto", show_default=True,
                        help="cpu, cuda, cuda:N, mps, or auto (CUDA when available).")(func)
    func = click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                        help="Model file (.pt) or a bundled model's name: sevennet-l3i5 "
                             "(default), sevennet-0, fcnet-small (`fcnet models` lists them).")(func)
    return func


def load_calculator(model_path, device, dtype):
    """An FCNetCalculator, or a ClickException that names the problem."""
    from ase_fcnet.calculator import FCNetCalculator
    from ase_fcnet.model import ModelCautionWarning, ModelFileError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelCautionWarning)  # echoed as a line instead
            calc = FCNetCalculator(model=model_path, device=device, dtype=dtype)
    except (FileNotFoundError, ModelFileError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    caution = calc.model.metadata.get("caution")
    if caution:
        echo(f"      CAUTION: {caution}")
    return calc


def read_structure(path: str, index: str | None = None) -> Atoms:
    """Read one structure from any file ase.io.read understands, with a clear error.

    A file of several structures needs ``index`` (an integer, or a slice that
    selects exactly one); without it, or with one that selects none or
    several, the error says how many the file holds.
    """
    from ase.io import read

    if not Path(path).is_file():
        raise click.ClickException(f"structure file not found: {path}")
    try:
        frames = read(path, index=":")
    except Exception as err:  # ase raises many kinds for unreadable files
        raise click.ClickException(f"cannot read structure from {path}: {_reason(path, err)}") from err
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise click.ClickException(f"cannot read structure from {path}: the file holds no structure")
    n = len(frames)
    if index is None:
        if n > 1:
            raise click.ClickException(f"{path} holds {n} structures; choose one with --index "
                                       f"(0 .. {n - 1}, or -1 for the last)")
        return frames[0]
    selected = _select(frames, index, path)
    return selected


def _select(frames: list, index: str, path: str) -> Atoms:
    from ase.io.formats import string2index

    n = len(frames)
    try:
        key = string2index(str(index))
        if not isinstance(key, (int, slice)):
            raise ValueError(index)
    except ValueError:
        raise click.ClickException(f"--index {index!r} is not an index: give an integer "
                                   f"(0 .. {n - 1}, or -1 for the last)") from None
    if isinstance(key, int):
        if not -n <= key < n:
            raise click.ClickException(f"--index {index}: {path} holds {n} structure"
                                       f"{'s' * (n != 1)} (valid 0 .. {n - 1} or -{n} .. -1)")
        return frames[key]
    chosen = frames[key]
    if len(chosen) != 1:
        raise click.ClickException(f"--index {index!r} selects {len(chosen)} of the {n} structures "
                                   f"in {path}; phonons need exactly one (an integer 0 .. {n - 1})")
    return chosen[0]


def _reason(path: str, err: Exception) -> str:
    """A non-empty reason for a failed ase.io.read (some readers raise bare assertions)."""
    text = str(err).strip()
    if text:
        return text
    try:
        from ase.io.formats import filetype

        kind = filetype(path, guess=True)
    except Exception:  # the format itself could not be told
        kind = None
    what = f"not a valid {kind} file" if kind else "format not recognised"
    return f"{what} (ase.io.read raised {err.__class__.__name__} without a message)"


def check_occupancy(atoms: Atoms, source: str, allow: bool) -> list[str]:
    """Refuse partial, mixed or merged sites (ASE keeps one element per site) unless ``allow``.

    Returns the warning given instead with ``allow`` (empty list: nothing to report).
    """
    from ase_fcnet.phonons.validate import occupancy_problems

    problems = occupancy_problems(atoms)
    if not problems:
        return []
    listed = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    if not allow:
        raise click.ClickException(
            f"{source}: {listed}. ASE keeps one element per site ({atoms.get_chemical_formula()}), "
            "which is not this material; give an ordered structure, or add "
            "--allow-partial-occupancy to compute it as read")
    warning = (f"{source}: {listed}; computed as read ({atoms.get_chemical_formula()}) "
               "because of --allow-partial-occupancy")
    echo(f"      WARNING: {warning}")
    return [warning]


def check_structure(atoms: Atoms, source: str, species, cutoff: float, periodic: bool = True) -> None:
    """Reject input the model cannot evaluate, before any output is written."""
    try:
        validate_structure(atoms, source)
        if periodic and not atoms.pbc.all():
            raise StructureError(f"{source}: phonons need a cell periodic in all three directions "
                                 f"(pbc = {atoms.pbc.tolist()})")
        if periodic and atoms.cell.rank < 3:
            raise StructureError(f"{source}: the cell is singular or missing")
        species_indices(atoms.numbers, species)
        neighbour_pairs(atoms, cutoff)
    except StructureError as err:
        msg = str(err)
        raise click.ClickException(msg if msg.startswith(source) else f"{source}: {msg}") from err
