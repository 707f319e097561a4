"""Shared pieces of the CLI: reading structures, loading models, reporting."""
from __future__ import annotations

import warnings
from pathlib import Path

import click
from ase import Atoms

from ase_fcnet.graph import StructureError, neighbour_pairs, species_indices, validate_structure


def echo(line: str) -> None:
    """One progress line on stderr (stdout stays for results)."""
    click.echo(line, err=True)


def model_options(func):
    """--model, --device and --dtype, shared by the commands that evaluate a model."""
    func = click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
                        help="Precision of the model and its derivatives. Default: the "
                             "model's measured choice (`fcnet models` shows it), else float64.")(func)
    func = click.option("--device", default="auto", show_default=True,
                        help="cpu, cuda, cuda:N, or auto (CUDA when available).")(func)
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
    """Read any file ase.io.read understands, with a clear error."""
    from ase.io import read

    if not Path(path).is_file():
        raise click.ClickException(f"structure file not found: {path}")
    try:
        atoms = read(path, index=index) if index is not None else read(path)
    except Exception as err:  # ase raises many kinds for unreadable files
        raise click.ClickException(f"cannot read structure from {path}: {err}") from err
    if isinstance(atoms, list):
        raise click.ClickException(f"{path} holds {len(atoms)} structures; give --index")
    return atoms


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
