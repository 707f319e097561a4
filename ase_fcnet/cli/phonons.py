"""``fcnet phonons``: band structure, DOS and thermal properties of a crystal."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ase_fcnet.cli.common import check_structure, echo, load_calculator, model_options, read_structure


def _mesh(value: str):
    parts = value.replace(",", " ").split()
    try:
        if len(parts) == 1:
            return float(parts[0])
        if len(parts) == 3:
            return [int(p) for p in parts]
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r}: give three integers ('16 16 16') or one length in Å ('30')")


@click.command()
@click.argument("structure", type=click.Path(dir_okay=False))
@model_options
@click.option("--supercell", nargs=3, type=int, default=None, metavar="A B C",
              help="Supercell multiples of the input cell. Default: automatic from --min-length.")
@click.option("--min-length", type=float, default=10.0, show_default=True,
              help="Minimum spacing of the supercell's lattice planes (Å) for the automatic supercell.")
@click.option("--primitive", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: phonopy finds the primitive cell; none: use the input cell as is.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder. Default: phonons_<structure name>.")
@click.option("--relax/--no-relax", default=False, show_default=True,
              help="Relax positions and cell with the model first (space group kept).")
@click.option("--fmax", type=float, default=0.005, show_default=True, help="Relaxation force criterion, eV/Å.")
@click.option("--mesh", default="30", show_default=True,
              help="q-mesh for DOS/thermal properties: three integers or a length in Å.")
@click.option("--npoints", type=int, default=51, show_default=True, help="q-points per band-path segment.")
@click.option("--tmin", type=float, default=0.0, show_default=True, help="Lowest temperature, K.")
@click.option("--tmax", type=float, default=1000.0, show_default=True, help="Highest temperature, K.")
@click.option("--tstep", type=float, default=10.0, show_default=True, help="Temperature step, K.")
@click.option("--symprec", type=float, default=1e-5, show_default=True, help="Symmetry tolerance, Å.")
@click.option("--compare-fd", is_flag=True,
              help="Also run phonopy's finite displacements with the same model and report the difference.")
@click.option("--index", default=None, help="Which structure of a multi-structure file (ase.io index).")
def phonons(structure, model_path, device, dtype, supercell, min_length, primitive, out_dir, relax,
            fmax, mesh, npoints, tmin, tmax, tstep, symprec, compare_fd, index):
    """Phonons of STRUCTURE (CIF, POSCAR, extxyz, ... anything ase.io.read reads).

    Force constants are the model's exact Hessian (automatic differentiation),
    computed only for the directions phonopy's symmetry analysis needs. Writes
    FORCE_CONSTANTS, phonopy.yaml, band.yaml, band_dos.png, thermal properties
    (table, yaml and figure) and summary.json into the output folder.
    """
    from ase_fcnet.phonons.workflow import PhononSettings, run_phonons, settings_dict, write_outputs

    mesh_value = _mesh(mesh)
    if tstep <= 0 or tmin < 0 or tmax < tmin:
        raise click.BadParameter(f"invalid temperature range {tmin}..{tmax} step {tstep}")
    if supercell is not None and min(supercell) < 1:
        raise click.BadParameter(f"--supercell needs positive integers, got {supercell}")
    out = Path(out_dir) if out_dir else Path(f"phonons_{Path(structure).stem}")

    echo(f"[1/4] reading {structure}")
    atoms = read_structure(structure, index)
    from ase_fcnet.pretrained import DEFAULT_MODEL

    model_name = str(model_path) if model_path else DEFAULT_MODEL
    echo(f"[2/4] loading model {model_name}" + ("" if model_path else " (bundled default)"))
    calc = load_calculator(model_path, device, dtype)
    check_structure(atoms, structure, calc.species, calc.model.cutoff)
    species = calc.species
    known = ", ".join(species) if len(species) <= 8 else \
        f"{len(species)} elements ({species[0]}–{species[-1]}; `fcnet models` lists them)"
    dtype = str(calc.dtype).replace("torch.", "")
    echo(f"      {atoms.get_chemical_formula()} ({len(atoms)} atoms); model elements {known}; "
         f"device {calc.device}, {dtype}")
    relax_info = None
    if relax:
        from ase_fcnet.phonons.relax import relax as relax_structure

        echo("[3/4] relaxing (symmetry kept)")
        atoms, relax_info = relax_structure(atoms, calc, fmax=fmax, symprec=symprec, progress=echo)
    else:
        echo("[3/4] no relaxation (use --relax to relax first)")
    settings = PhononSettings(
        supercell_matrix=list(supercell) if supercell else None, min_length=min_length,
        primitive_matrix="auto" if primitive == "auto" else "P", mesh=mesh_value, npoints=npoints,
        t_min=tmin, t_max=tmax, t_step=tstep, symprec=symprec, compare_fd=compare_fd,
    )
    echo("[4/4] phonons")
    try:
        result = run_phonons(atoms, calc, settings, progress=lambda line: echo(f"      {line}"))
    except (ValueError, TypeError) as err:
        raise click.ClickException(f"{structure}: {err}") from err
    result.summary.update({
        "structure_file": str(structure),
        "model": model_name,
        "model_caution": calc.model.metadata.get("caution"),
        "model_elements": calc.species,
        "device": str(calc.device),
        "dtype": dtype,
        "relaxation": relax_info,
        "settings": settings_dict(settings),
    })
    files = write_outputs(result, out)
    _report(result.summary, out, files)


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
