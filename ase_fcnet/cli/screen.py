"""``fcnet screen``: phonons of many materials, one row each in an ASE database, resumable."""
from __future__ import annotations

import signal
from pathlib import Path

import click

from ase_fcnet.cli.common import echo, model_options, parse_mesh


def _figure_path(db: str, figure: str | None) -> Path:
    if figure:
        return Path(figure)
    if "://" in db:
        return Path("screen.png")
    return Path(db).with_name(Path(db).stem + "_screen.png")


def _terminate(signum, frame):
    raise KeyboardInterrupt


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--db", "db", default="screen.db", show_default=True,
              help="Results: an ASE database file (.db, SQLite) or a postgresql:// URL.")
@model_options
@click.option("--relax/--no-relax", default=False, show_default=True,
              help="Relax positions and cell with the model first (space group kept).")
@click.option("--fmax", type=float, default=0.005, show_default=True, help="Relaxation force criterion, eV/Å.")
@click.option("--steps", type=int, default=300, show_default=True, help="Maximum relaxation steps.")
@click.option("--supercell", nargs=3, type=int, default=None, metavar="A B C",
              help="Supercell multiples of every input cell. Default: automatic from --min-length.")
@click.option("--min-length", type=float, default=10.0, show_default=True,
              help="Minimum lattice-plane spacing (Å) of the automatic supercell.")
@click.option("--primitive", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: phonopy finds the primitive cell; none: use the input cell as is.")
@click.option("--mesh", default="30", show_default=True,
              help="q-mesh for DOS/thermal properties: three integers or a length in Å.")
@click.option("--npoints", type=int, default=51, show_default=True, help="q-points per band-path segment.")
@click.option("--tmin", type=float, default=0.0, show_default=True, help="Lowest temperature of the table, K.")
@click.option("--tmax", type=float, default=1000.0, show_default=True, help="Highest temperature, K.")
@click.option("--tstep", type=float, default=10.0, show_default=True, help="Temperature step, K.")
@click.option("--symprec", type=float, default=1e-5, show_default=True, help="Symmetry tolerance, Å.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes. Default: one per core (one per GPU where there are GPUs); "
                   "0 computes in this process.")
@click.option("--threads", type=int, default=None,
              help="torch threads per worker. Default: cores // workers (1 on --scheduler).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on an existing Dask scheduler (tcp://host:8786); needs ase_fcnet[dask].")
@click.option("--dask-local", type=int, default=None, metavar="N",
              help="Run on a Dask LocalCluster of N worker processes; needs ase_fcnet[dask].")
@click.option("--retry-failed", is_flag=True, help="Compute again the materials whose rows say failed.")
@click.option("--limit", type=int, default=None, help="Compute at most this many materials in this run.")
@click.option("--shuffle", is_flag=True, help="Compute pending materials in random order (--seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --shuffle.")
@click.option("--from-db", default=None, metavar="DB",
              help="Also screen the structures of this ASE database (file or URL).")
@click.option("--select", "selection", default=None, metavar="QUERY",
              help="`ase db` selection for --from-db, e.g. 'natoms<20,Si'.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write this screen's rows as a CSV file.")
@click.option("--figure", type=click.Path(dir_okay=False), default=None,
              help="Figure of lowest frequencies and S(300 K). Default: <db>_screen.png beside the database.")
@click.option("--no-figure", is_flag=True, help="Write no figure.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def screen(inputs, db, model_path, device, dtype, relax, fmax, steps, supercell, min_length, primitive,
           mesh, npoints, tmin, tmax, tstep, symprec, workers, threads, scheduler, dask_local, retry_failed,
           limit, shuffle, seed, from_db, selection, csv_path, figure, no_figure, quiet):
    """Phonons of many materials: one row per material in an ASE database.

    INPUTS are structure files, folders (every file ase.io recognises) or glob
    patterns; --from-db adds an ASE database's structures. A rerun skips the
    materials already done (same structure, settings and model), so an
    interrupted screen resumes where it stopped. Query the results with
    `ase db RESULTS.db` (see docs/screening.md).
    """
    from ase_fcnet.screening import ScreenSettings
    from ase_fcnet.screening import screen as run_screen
    from ase_fcnet.screening.report import format_summary, plot, summarize, write_csv

    if not inputs and from_db is None:
        raise click.UsageError("give structure files, folders or globs, or --from-db DB")
    if selection is not None and from_db is None:
        raise click.UsageError("--select needs --from-db")
    try:
        settings = ScreenSettings(relax=relax, fmax=fmax, steps=steps, supercell=supercell or None,
                                  min_length=min_length, primitive=primitive, mesh=parse_mesh(mesh),
                                  npoints=npoints, t_min=tmin, t_max=tmax, t_step=tstep, symprec=symprec,
                                  dtype=dtype)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_screen(inputs, db, model=model_path, settings=settings, workers=workers,
                            scheduler=scheduler, dask_local=dask_local, threads=threads, device=device,
                            retry_failed=retry_failed, limit=limit, shuffle=shuffle, seed=seed,
                            from_db=from_db, selection=selection, progress=not quiet, log=echo)
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; every finished material is in {db}: "
                                   "run the same command again to resume") from None
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from err
    finally:
        signal.signal(signal.SIGTERM, previous)
    rows = result.rows()
    click.echo(format_summary(summarize(rows)))
    click.echo(f"this run: {result.n_done} done, {result.n_failed} failed, {result.n_skipped} skipped "
               f"in {result.elapsed_s:.1f} s" + (f"; {result.n_left} left (--limit)" if result.n_left else ""))
    if csv_path:
        click.echo(f"wrote {write_csv(rows, csv_path)}")
    if not no_figure and any(r.get("status") == "done" for r in rows):
        click.echo(f"wrote {plot(rows, _figure_path(db, figure))}")
