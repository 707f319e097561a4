"""``fcnet phonons``: band structure, DOS and thermal properties of a crystal."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ase_fcnet.cli.common import (
    check_occupancy,
    check_structure,
    echo,
    load_calculator,
    model_options,
    parse_mesh,
    read_structure,
)

#: Default of --max-atoms; equal to ase_fcnet.phonons.estimate.DEFAULT_MAX_ATOMS (a test checks),
#: written out so that listing the commands does not import phonopy.
MAX_ATOMS = 3000


#: PhononSettings field -> the option that sets it (for error messages).
OPTION_OF = {"mesh": "--mesh", "t_min": "--tmin", "t_max": "--tmax", "t_step": "--tstep",
             "symprec": "--symprec", "npoints": "--npoints", "min_length": "--min-length",
             "supercell_matrix": "--supercell"}


@click.command()
@click.argument("structure", type=click.Path(dir_okay=False))
@model_options
@click.option("--supercell", nargs=3, type=int, default=None, metavar="A B C",
              help="Supercell multiples of the input cell. Default: automatic from --min-length.")
@click.option("--min-length", type=float, default=10.0, show_default=True,
              help="Minimum spacing of the supercell's lattice planes (Å) for the automatic supercell.")
@click.option("--primitive", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: phonopy finds the primitive cell; none: use the input cell as is.")
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Output folder. Default: phonons_<structure name>.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output folder whole (only an earlier output: it must hold "
                   "summary.json). Without it an existing folder is refused.")
@click.option("--relax/--no-relax", default=False, show_default=True,
              help="Relax positions and cell with the model first (space group kept).")
@click.option("--fmax", type=float, default=0.005, show_default=True, help="Relaxation force criterion, eV/Å.")
@click.option("--relax-steps", type=int, default=300, show_default=True,
              help="Most optimizer steps of --relax.")
@click.option("--allow-unconverged", is_flag=True,
              help="Compute phonons even when --relax does not converge (otherwise: error, exit 1).")
@click.option("--mesh", default="30", show_default=True,
              help="q-mesh for DOS/thermal properties: three integers or a length in Å.")
@click.option("--npoints", type=int, default=51, show_default=True, help="q-points per band-path segment.")
@click.option("--tmin", type=float, default=0.0, show_default=True, help="Lowest temperature, K.")
@click.option("--tmax", type=float, default=1000.0, show_default=True, help="Highest temperature, K.")
@click.option("--tstep", type=float, default=10.0, show_default=True, help="Temperature step, K.")
@click.option("--symprec", type=float, default=1e-5, show_default=True, help="Symmetry tolerance, Å.")
@click.option("--born", type=click.Path(dir_okay=False), default=None,
              help="Phonopy BORN file (Born charges, dielectric tensor) of the primitive cell: "
                   "applies the non-analytic correction (LO–TO splitting) of polar crystals.")
@click.option("--compare-fd", is_flag=True,
              help="Also run phonopy's finite displacements with the same model and report the difference.")
@click.option("--index", default=None,
              help="Which structure of a multi-structure file: an integer (ase.io index); needed "
                   "when the file holds several.")
@click.option("--allow-partial-occupancy", is_flag=True,
              help="Compute a structure with partial, mixed or merged sites as ASE reads it (one "
                   "element per site) instead of refusing it.")
@click.option("--max-atoms", type=int, default=MAX_ATOMS, show_default=True,
              help="Refuse larger supercells (0: no limit).")
@click.option("--max-memory", type=float, default=None,
              help="Refuse force constants estimated to need more memory, GB. Default: 80% of the "
                   "memory available at the start.")
def phonons(structure, model_path, device, dtype, supercell, min_length, primitive, out_dir, overwrite,
            relax, fmax, relax_steps, allow_unconverged, mesh, npoints, tmin, tmax, tstep, symprec, born,
            compare_fd, index, allow_partial_occupancy, max_atoms, max_memory):
    """Phonons of STRUCTURE (CIF, POSCAR, extxyz, ... anything ase.io.read reads).

    Force constants are the model's exact Hessian (automatic differentiation),
    computed only for the directions phonopy's symmetry analysis needs. Writes
    FORCE_CONSTANTS, phonopy.yaml, band.yaml, band_dos.png, thermal properties
    (table, yaml and figure) and summary.json into the output folder, which
    appears complete or not at all. Every option, the structure, the
    supercell size and the output folder are checked before the model is
    evaluated (docs/cli.md lists the checks).
    """
    from ase_fcnet.fileio import OutputFolderError, check_output_folder
    from ase_fcnet.phonons.workflow import PhononSettings, settings_dict, write_outputs

    settings = PhononSettings(
        supercell_matrix=list(supercell) if supercell else None, min_length=min_length,
        primitive_matrix="auto" if primitive == "auto" else "P", mesh=parse_mesh(mesh), npoints=npoints,
        t_min=tmin, t_max=tmax, t_step=tstep, symprec=symprec, compare_fd=compare_fd, born=born,
        max_atoms=max_atoms or None, max_memory_gb=max_memory,
    )
    _check_options(settings, relax, fmax, relax_steps, max_atoms, max_memory)
    out = Path(out_dir) if out_dir else Path(f"phonons_{Path(structure).stem}")
    try:
        check_output_folder(out, overwrite, marker="summary.json")
    except OutputFolderError as err:
        raise click.ClickException(str(err)) from err
    if born is not None and not Path(born).is_file():
        raise click.BadParameter(f"BORN file not found: {born}", param_hint="--born")

    echo(f"[1/4] reading {structure}")
    atoms = read_structure(structure, index)
    warnings = check_occupancy(atoms, structure, allow_partial_occupancy)
    from ase_fcnet.pretrained import DEFAULT_MODEL

    model_name = str(model_path) if model_path else DEFAULT_MODEL
    echo(f"[2/4] loading model {model_name}" + ("" if model_path else " (bundled default)"))
    calc = load_calculator(model_path, device, dtype)
    check_structure(atoms, structure, calc.species, calc.model.cutoff)
    warnings += _plan(atoms, structure, calc.model.cutoff, settings)
    species = calc.species
    known = ", ".join(species) if len(species) <= 8 else \
        f"{len(species)} elements ({species[0]}–{species[-1]}; `fcnet models` lists them)"
    dtype = str(calc.dtype).replace("torch.", "")
    echo(f"      {atoms.get_chemical_formula()} ({len(atoms)} atoms); model elements {known}; "
         f"device {calc.device}, {dtype}")
    from ase_fcnet.progress import StopSignal, stop_on_signals

    try:
        with stop_on_signals():
            atoms, relax_info = _relax(atoms, calc, relax, fmax, relax_steps, symprec,
                                       allow_unconverged)
            result = _compute(atoms, calc, settings, structure)
            result.summary.update({
                "structure_file": str(structure),
                "model": model_name,
                "model_caution": calc.model.metadata.get("caution"),
                "model_elements": calc.species,
                "device": str(calc.device),
                "dtype": dtype,
                "relaxation": relax_info,
                "warnings": warnings + ([] if relax_info is None or relax_info["converged"] else
                                        ["relaxation not converged (--allow-unconverged)"]),
                "settings": settings_dict(settings),
            })
            files = write_outputs(result, out, overwrite=overwrite)
    except StopSignal as stop:
        echo(f"stopped by {stop}: nothing written, {out} left as it was")
        raise SystemExit(stop.exit_code) from None
    except OutputFolderError as err:
        raise click.ClickException(str(err)) from err
    _report(result.summary, out, files)


def _check_options(settings, relax: bool, fmax: float, relax_steps: int, max_atoms: int,
                   max_memory) -> None:
    """Every option's range, as click errors naming the option."""
    from ase_fcnet.phonons.validate import SettingsError, check_settings

    try:
        check_settings(settings)
    except SettingsError as err:
        raise click.BadParameter(err.message, param_hint=OPTION_OF.get(err.key, err.key)) from None
    if relax and not (np.isfinite(fmax) and fmax > 0):
        raise click.BadParameter(f"must be a positive force in eV/Å, got {fmax}", param_hint="--fmax")
    if relax and relax_steps < 1:
        raise click.BadParameter(f"must be >= 1, got {relax_steps}", param_hint="--relax-steps")
    if max_atoms < 0:
        raise click.BadParameter(f"must be >= 0 (0: no limit), got {max_atoms}", param_hint="--max-atoms")
    if max_memory is not None and not (np.isfinite(max_memory) and max_memory > 0):
        raise click.BadParameter(f"must be a positive size in GB, got {max_memory}",
                                 param_hint="--max-memory")


def _plan(atoms, structure: str, cutoff: float, settings) -> list[str]:
    """Supercell size, directions and warnings, before any model evaluation; BORN checked.

    Returns the warnings and notes (also echoed), for summary.json.
    """
    from ase_fcnet.phonons.adapter import prepare_phonopy, resolve_supercell_matrix
    from ase_fcnet.phonons.nac import BornFileError, may_be_polar, read_born
    from ase_fcnet.phonons.validate import supercell_notes
    from ase_fcnet.phonons.workflow import CostLimitError, check_supercell_size

    try:
        matrix = resolve_supercell_matrix(atoms.cell[:], settings.supercell_matrix, settings.min_length)
        n_super, length, notes = supercell_notes(atoms, matrix, cutoff)
        check_supercell_size(n_super, settings.max_atoms)
        phonon = prepare_phonopy(atoms, matrix, settings.primitive_matrix, symprec=settings.symprec)
        if settings.born is not None:
            read_born(phonon, settings.born, settings.symprec)
    except (CostLimitError, BornFileError) as err:
        raise click.ClickException(str(err)) from err
    except ValueError as err:
        raise click.ClickException(f"{structure}: {err}") from err
    n_dir = len(phonon.displacements)
    echo(f"      supercell {np.diag(matrix).tolist() if _diagonal(matrix) else matrix.tolist()}: "
         f"{n_super} atoms, shortest translation {length:.2f} Å; {n_dir} Hessian "
         f"direction{'s' * (n_dir != 1)}")
    for note in notes:
        echo(f"      WARNING: {note}")
    anions = may_be_polar(atoms.get_chemical_symbols())
    if anions and settings.born is None:
        notes.append(f"{atoms.get_chemical_formula()} may be polar ({', '.join(anions)} with "
                     "another element): without --born the optical modes near Γ lack LO–TO splitting")
        echo(f"      NOTE: {notes[-1]}")
    return notes


def _diagonal(matrix) -> bool:
    return bool(np.all(matrix == np.diag(np.diag(matrix))))


def _relax(atoms, calc, relax: bool, fmax: float, steps: int, symprec: float,
           allow_unconverged: bool):
    if not relax:
        echo("[3/4] no relaxation (use --relax to relax first)")
        return atoms, None
    from ase_fcnet.phonons.relax import relax as relax_structure

    echo("[3/4] relaxing (symmetry kept)")
    relaxed, info = relax_structure(atoms, calc, fmax=fmax, max_steps=steps, symprec=symprec,
                                    progress=echo)
    if not info["converged"]:
        if not allow_unconverged:
            raise click.ClickException(
                f"relaxation did not converge in {info['steps']} steps (fmax {info['fmax']:.4f} "
                f"eV/Å > --fmax {fmax:g}); no phonons computed. Loosen --fmax, raise --relax-steps, or add "
                "--allow-unconverged to compute phonons of the unconverged structure")
        echo("      WARNING: relaxation not converged; phonons of the unconverged structure "
             "(--allow-unconverged)")
    return relaxed, info


def _compute(atoms, calc, settings, structure: str):
    import sys

    from ase_fcnet.phonons.nac import BornFileError
    from ase_fcnet.phonons.validate import SettingsError
    from ase_fcnet.phonons.workflow import CostLimitError, run_phonons

    echo("[4/4] phonons")
    try:
        return run_phonons(atoms, calc, settings, progress=lambda line: echo(f"      {line}"),
                           bars=sys.stderr.isatty())
    except (CostLimitError, BornFileError, SettingsError) as err:
        raise click.ClickException(str(err)) from err
    except (ValueError, TypeError) as err:
        raise click.ClickException(f"{structure}: {err}") from err


def _report(summary: dict, out: Path, files) -> None:
    n_dir = summary["n_hessian_directions"]
    click.echo(f"{summary['formula']}  space group {summary['space_group']}  "
               f"supercell {summary['n_atoms_supercell']} atoms "
               f"({n_dir} Hessian direction{'s' * (n_dir != 1)})")
    click.echo(f"frequencies {summary['min_frequency_THz']:.3f} .. {summary['max_frequency_THz']:.3f} THz")
    if summary["has_imaginary_modes"]:
        q = np.round(summary["lowest_frequency_qpoint"], 4).tolist()
        click.echo(f"WARNING: imaginary modes found: lowest {summary['min_frequency_THz']:.3f} THz at q = {q} "
                   "(structure not at a minimum of this model? try --relax)")
    else:
        click.echo("no imaginary modes")
    fd = summary.get("finite_displacement_comparison")
    if fd:
        click.echo(f"finite displacements vs analytic: max |Δf| = {fd['max_abs_diff_THz']:.2e} THz, "
                   f"mean {fd['mean_abs_diff_THz']:.2e} THz")
    click.echo(f"wrote {len(files)} files to {out}/: " + ", ".join(p.name for p in files))
    click.echo("timings (s): " + json.dumps(summary["timings_s"]))
