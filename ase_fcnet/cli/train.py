"""``fcnet train`` (fit a model to phonopy data) and ``fcnet evaluate`` (its errors)."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import click

from ase_fcnet.fileio import atomic_write_text

from ase_fcnet.cli.common import echo
from ase_fcnet.training.config import architecture_of
from ase_fcnet.training.config_help import describe_config


def _epilog() -> str:
    blocks = describe_config().split("\n\n")
    return "Configuration keys (YAML sections and keys):\n\n" + "\n\n".join(
        "\b\n" + block for block in blocks)


@click.command(epilog=_epilog(), context_settings={"max_content_width": 100})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--resume", is_flag=True,
              help="Continue the run in the config's output_dir from its last.pt checkpoint.")
@click.option("--device", default=None,
              help="Override training.device (cpu, cuda, cuda:N, auto).")
@click.option("--progress/--no-progress", default=None,
              help="Override training.progress (the tqdm progress bar).")
def train(config, resume, device, progress):
    """Train a model as described by the YAML file CONFIG.

    Writes last.pt (checkpoint), metrics.csv, metrics.json, loss_curves.png and
    the final model.pt into training.output_dir. For data parallelism launch it
    with torchrun, e.g. `torchrun --nproc_per_node 4 $(which fcnet) train
    CONFIG` (only rank 0 writes files). Every key is described below; relative
    paths are taken from the folder of CONFIG.
    """
    from ase_fcnet.training import TrainConfig
    from ase_fcnet.training import train as run_training
    from ase_fcnet.training.checkpointing import CheckpointError

    try:
        cfg = TrainConfig.from_yaml(config)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if device is not None:
        cfg.training.device = device
    if progress is not None:
        cfg.training.progress = progress
    report = echo if os.environ.get("RANK", "0") == "0" else (lambda line: None)
    species = cfg.model.species
    names = ", ".join(species) if len(species) <= 12 else f"{len(species)} elements"
    init = f"; fine-tuning {cfg.training.init_model}" if cfg.training.init_model else ""
    report(f"training: {architecture_of(cfg.model)} model, species {names}{init}; data "
           f"{', '.join(cfg.data.paths)}; output {cfg.training.output_dir}")
    from ase_fcnet.progress import StopSignal, stop_on_signals

    try:
        with stop_on_signals():
            result = run_training(cfg, resume=resume)
    except (FileNotFoundError, FileExistsError, CheckpointError, ValueError,
            FloatingPointError) as err:
        raise click.ClickException(str(err)) from err
    except StopSignal as stop:
        echo(f"stopped by {stop}; {Path(cfg.training.output_dir) / 'last.pt'} holds the last "
             "checkpoint (fcnet train --resume continues from it)")
        raise SystemExit(stop.exit_code) from None
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), {})
    report(f"done: {result.steps} steps, best epoch {result.best_epoch}; model "
           f"{result.output_dir / 'model.pt'}")
    for key, value in best.items():
        if key.startswith("val_"):
            report(f"  {key} = {value:.6g}")


def _table(rows: dict) -> str:
    width = max((len(k) for k in rows), default=0)
    return "\n".join(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}"
                     for k, v in rows.items())


def _phonopy_yamls(paths, stack) -> list[tuple[Path, str]]:
    """Phonopy yaml files in ``paths`` (files, folders, packed folders), with the names shown.

    A packed folder is unpacked into a temporary folder that ``stack`` (an
    :class:`contextlib.ExitStack`) removes when it closes; its files are shown
    as ``<archive>/<path in it>``.
    """
    from ase_fcnet.data import find_phonopy_yamls, unpacked
    from ase_fcnet.data.archive import is_archive

    found: list[tuple[Path, str]] = []
    for given in map(Path, paths):
        p = stack.enter_context(unpacked(given)) if is_archive(given) and given.is_file() else given
        if p.is_dir():
            yamls = find_phonopy_yamls(p) + [y for sub in sorted(p.rglob("*")) if sub.is_dir()
                                             for y in find_phonopy_yamls(sub)]
            found += [(y, str(given / y.relative_to(p))) for y in yamls]
        elif "yaml" in p.name:
            found.append((p, str(p)))
    return found


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the metrics to this JSON file.")
@click.option("--frequencies", is_flag=True,
              help="Also compare phonon frequencies (THz) with each phonopy yaml in DATA "
                   "(folders and packed folders searched).")
@click.option("--mesh", nargs=3, type=int, default=(8, 8, 8), show_default=True,
              help="q-point mesh for --frequencies.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="Precision of the model.")
def evaluate(model_path, data, json_out, frequencies, mesh, device, dtype):
    """Errors of MODEL on the phonopy files or folders DATA.

    MODEL is a model file or the name of a bundled model (e.g. `default`).

    Prints energy (meV/atom), force (eV/Å), stress (eV/Å³) and force-constant
    (eV/Å²) MAE and RMSE, and with --frequencies the phonon-frequency errors
    (THz) at the supercell's commensurate q-points and on a mesh.
    """
    from ase_fcnet.calculator import resolve_device, resolve_dtype
    from ase_fcnet.data import load_dataset
    from ase_fcnet.model import ModelFileError, load_model
    from ase_fcnet.pretrained import model_file
    from ase_fcnet.training.evaluate import evaluate as evaluate_model
    from ase_fcnet.training.evaluate import frequency_errors, summarize_frequency_errors

    try:
        model = load_model(model_file(model_path), dtype=resolve_dtype(dtype),
                           device=resolve_device(device))
        samples = load_dataset(list(data))
        metrics = evaluate_model(model, samples)
        freqs = {}
        with contextlib.ExitStack() as stack:
            for path, shown in _phonopy_yamls(data, stack) if frequencies else []:
                freqs[shown] = frequency_errors(model, path, mesh)
    except (FileNotFoundError, ModelFileError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(_table(metrics))
    for path, values in freqs.items():
        click.echo(f"\nphonon frequencies vs {path}")
        click.echo(_table({k: v for k, v in values.items() if k != "mesh"}))
    summary = summarize_frequency_errors(freqs)
    if freqs:
        click.echo(f"\nphonon frequencies, all {len(freqs)} datasets")
        click.echo(_table(summary))
    if json_out:
        report = {"model": str(model_path), "data": list(data), "metrics": metrics,
                  "frequencies": freqs, "frequencies_summary": summary}
        atomic_write_text(json_out, json.dumps(report, indent=1))
        echo(f"metrics written to {json_out}")

