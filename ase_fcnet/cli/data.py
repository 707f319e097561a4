"""``fcnet data``: reference phonopy data from any ASE calculator."""
from __future__ import annotations

import functools
import importlib
import time
from pathlib import Path

import click

from ase_fcnet.cli.common import echo, read_structure


def _calculator_factory(reference: str | None, calculator: str | None):
    from ase_fcnet.generation.references import REFERENCES, reference_calculator

    if (reference is None) == (calculator is None):
        raise click.UsageError("give exactly one of --reference NAME or --calculator MODULE:FACTORY")
    if reference is not None:
        if reference not in REFERENCES:
            raise click.BadParameter(f"{reference!r}; known: {', '.join(sorted(REFERENCES))}",
                                     param_hint="--reference")
        return functools.partial(reference_calculator, reference)
    module, _, name = calculator.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise click.BadParameter(f"cannot import {calculator!r}: {err}", param_hint="--calculator")
    if not callable(factory):
        raise click.BadParameter(f"{calculator!r} is not callable", param_hint="--calculator")
    return factory


@click.group()
def data():
    """Reference data for training."""


@data.command()
@click.option("--set", "set_name", default=None, help="Named structure set built from prototypes "
              "with strained, rattled and vacancy variants (si, si-tetrahedral, sic, sic-tetrahedral, cu).")
@click.option("--structure", "structures", multiple=True, type=click.Path(dir_okay=False),
              help="Structure file(s) to use as they are (repeatable); label = file name.")
@click.option("--reference", default=None, help="Named reference calculator (sw-si, tersoff-sic, emt).")
@click.option("--calculator", default=None, metavar="MODULE:FACTORY",
              help="Any ASE calculator: a zero-argument callable returning a fresh calculator.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the variants.")
@click.option("--supercell-min-length", type=float, default=10.0, show_default=True,
              help="Minimum supercell plane spacing, Å.")
@click.option("--method", type=click.Choice(["auto", "analytic", "finite-displacement"]),
              default="auto", show_default=True,
              help="Force constants from the calculator's Hessian (analytic) or phonopy's "
                   "finite displacements; auto uses the Hessian when it is available and cheap.")
@click.option("--relax", is_flag=True, help="Relax positions with the calculator first.")
@click.option("--max-hessian-cost", type=click.IntRange(min=0), default=None,
              help="With --method auto, use finite displacements when the estimated matscipy "
                   "Hessian loop count of a supercell exceeds this (about 0.25 ms each). "
                   "Default: 20000.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel processes.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def generate(set_name, structures, reference, calculator, out, seed, supercell_min_length, method,
             relax, max_hessian_cost, workers, progress):
    """Write phonopy data (phonopy_params.yaml + FORCE_CONSTANTS) for each structure.

    Exactly as a DFT phonon workflow would: phonopy's displacements with the
    calculator's forces and energies, and force constants. Resumable: finished
    structures (a complete phonopy_params.yaml) are skipped. Output layout:
    OUT/train/<label>/, OUT/held-out/<label>/ and OUT/index.json.
    """
    from ase_fcnet.generation.generate import MAX_HESSIAN_COST, generate_reference_data
    from ase_fcnet.generation.prototypes import STRUCTURE_SETS, structure_set
    from ase_fcnet.generation.references import check_reference_elements

    if (set_name is None) == (not structures):
        raise click.UsageError("give either --set NAME or one or more --structure FILE")
    if set_name is not None and set_name not in STRUCTURE_SETS:
        raise click.BadParameter(f"{set_name!r}; known: {', '.join(STRUCTURE_SETS)}", param_hint="--set")
    factory = _calculator_factory(reference, calculator)
    if set_name:
        items = structure_set(set_name, seed)
    else:
        items = [(Path(p).stem, read_structure(p)) for p in structures]
    if reference is not None:  # before any folder exists
        named = [(p, atoms) for p, (_, atoms) in zip(structures, items)] if structures else items
        try:
            check_reference_elements(reference, named)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
    if max_hessian_cost is None:
        max_hessian_cost = MAX_HESSIAN_COST
    echo(f"generating {len(items)} structures into {out}")
    start = time.perf_counter()
    metadata = {"set": set_name, "structures": list(structures), "reference": reference,
                "calculator": calculator, "seed": seed, "method": method, "relax": relax,
                "supercell_min_length": supercell_min_length, "max_hessian_cost": max_hessian_cost}
    try:
        entries = generate_reference_data(items, factory, out, supercell_min_length=supercell_min_length,
                                          method=method, relax=relax, progress=progress,
                                          metadata=metadata, workers=workers,
                                          max_hessian_cost=max_hessian_cost)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    held = sum(e["split"] == "held-out" for e in entries)
    click.echo(f"{len(entries)} structures ({held} held-out) in {out}, "
               f"{time.perf_counter() - start:.1f} s")


@data.command()
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Dataset folder: OUT/<split>/<base>/<variant>/ and OUT/index.json.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the structure set.")
@click.option("--n-random", type=click.IntRange(min=0), default=350, show_default=True,
              help="Random (pyxtal) compositions tried.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes labelling bases at once (one torch thread each).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Label at most this many new bases (0: only print the statistics).")
@click.option("--supercell-min-length", type=float, default=6.0, show_default=True,
              help="Minimum supercell plane spacing of the force-constant variants, Å.")
@click.option("--fc-budget", type=click.IntRange(min=1), default=2500, show_default=True,
              help="Largest displacements × supercell atoms of a force-constant variant.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def teacher(out, seed, n_random, workers, limit, supercell_min_length, fc_budget, progress):
    """Label the universal structure set with the SevenNet-0 teacher (resumable).

    Needs the optional extra: pip install 'ase_fcnet[teacher]'. See
    docs/teacher_data.md; `fcnet data pack OUT --out DEST` then packs the result.
    """
    import importlib.util
    import logging

    from ase_fcnet.generation.teacher import generate_teacher_data, sevennet_calculator, summary
    from ase_fcnet.generation.universal import teacher_split

    if limit != 0 and importlib.util.find_spec("sevenn") is None:
        raise click.ClickException("the SevenNet teacher needs the optional extra: "
                                   "pip install 'ase_fcnet[teacher]'")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    records = generate_teacher_data(out, sevennet_calculator, seed=seed, n_random=n_random,
                                    workers=workers, limit=limit, progress=progress,
                                    supercell_min_length=supercell_min_length, fc_budget=fc_budget)
    done = [r for r in records if "skipped" not in r]
    n_var = sum(len(r["variants"]) for r in done)
    click.echo(f"{len(records)} bases done ({len(records) - len(done)} skipped), {n_var} labelled "
               f"structures in {out}, {time.perf_counter() - start:.0f} s this run")
    click.echo(summary(done))
    held = [r for r in records if teacher_split(r["base"]) == "held-out"]
    held_ok = [r for r in held if "skipped" not in r]
    click.echo(f"train / held-out bases {len(records) - len(held)} / {len(held)}; held-out usable "
               f"{len(held_ok)} with {sum(len(r['variants']) for r in held_ok)} structures")


@data.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder for <split>.tar.xz and copies of FOLDER's top-level files.")
def pack(folder, out):
    """Pack a generated data set into a few files.

    Each sub-folder of FOLDER (train/, held-out/, ...) becomes OUT/<name>.tar.xz
    holding its files unchanged; top-level files (index.json, README) are
    copied. `fcnet train` (data.paths) and `fcnet evaluate` read the .tar.xz
    files as they read the folders.
    """
    import shutil

    from ase_fcnet.data.archive import pack_folder

    src, dst = Path(folder), Path(out)
    subs = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise click.ClickException(f"{src}: has no sub-folders (splits) to pack")
    if dst.resolve() == src.resolve():
        raise click.BadParameter("must differ from FOLDER", param_hint="--out")
    dst.mkdir(parents=True, exist_ok=True)
    for sub in subs:
        try:
            n = pack_folder(sub, dst / f"{sub.name}.tar.xz")
        except ValueError as err:
            raise click.ClickException(str(err)) from err
        echo(f"{sub.name}: {n} files -> {dst / (sub.name + '.tar.xz')}")
    for file in sorted(p for p in src.iterdir() if p.is_file()):
        shutil.copy2(file, dst / file.name)
