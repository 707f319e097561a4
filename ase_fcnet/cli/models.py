"""``fcnet models``: the bundled models, or one given file; ``fcnet models convert-sevennet``."""
from __future__ import annotations

import json
import numbers

import click

#: Element symbols listed in the text output before "... (+N more)".
MAX_SYMBOLS = 20


def _value(value) -> str:
    """A metric value, numbers to 4 significant digits."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        return f"{value:.4g}"
    if isinstance(value, (str, numbers.Number)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _metrics(metrics, prefix: str = "") -> list[str]:
    """``key: value`` items; nested dicts give dotted keys."""
    if not isinstance(metrics, dict):
        return [_value(metrics)]
    items = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            items += _metrics(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}: {_value(value)}")
    return items


def _elements(species) -> str:
    shown = " ".join(species[:MAX_SYMBOLS])
    more = f" ... (+{len(species) - MAX_SYMBOLS} more)" if len(species) > MAX_SYMBOLS else ""
    return f"{len(species)}: {shown}{more}"


def _one_line(err: Exception) -> str:
    """The error's first line; a wrapped library message in (...) is cut after its first sentence."""
    line = (str(err) or type(err).__name__).splitlines()[0]
    head, paren, inner = line.partition(" (")
    if paren and ". " in inner:
        inner = inner.split(". ", 1)[0] + ")"
    return head + paren + inner


def _text(info: dict) -> list[str]:
    title = info["name"] + ("  (default)" if info.get("default") else "")
    rows = [
        ("architecture", info.get("architecture", "fcnet")),
        ("elements", _elements(info["species"])),
        ("cutoff", f"{info['cutoff']:g} Å"),
        ("parameters", f"{info['parameters']:,}"),
        ("size", f"{info['size_mb']:.3g} MB"),
        ("saved with", f"ase_fcnet {info['package_version'] or '?'} (file format {info['format_version']})"),
    ]
    if "dtype" in info:
        rows.append(("dtype", f"{info['dtype']} by default (measured; --dtype overrides)"))
    if "cost" in info:
        rows.append(("cost", ", ".join(_metrics(info["cost"])) or "-"))
    if "metrics" in info:
        rows.append(("metrics", ", ".join(_metrics(info["metrics"])) or "-"))
    if "smoothness" in info:
        rows.append(("smoothness", str(info["smoothness"])))
    if "license" in info:
        rows.append(("license", str(info["license"])))
    if "citation" in info:
        rows.append(("cite", str(info["citation"])))
    if "model_card" in info:
        rows.append(("model card", str(info["model_card"])))
    if "description" in info:
        rows.append(("description", str(info["description"])))
    if "caution" in info:
        rows.append(("CAUTION", str(info["caution"])))
    rows.append(("path", info["path"]))
    return [title] + [f"  {key:<12} {value}" for key, value in rows]


class _ModelsGroup(click.Group):
    """``fcnet models [PATH]`` describes; ``fcnet models convert-sevennet ...`` converts.

    A first argument that is not a subcommand is the PATH of a model file.
    """

    def parse_args(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.meta["models_path"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)


@click.group(cls=_ModelsGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@click.pass_context
def models(ctx, as_json):
    """List the bundled models, or describe the model file PATH: fcnet models [PATH].

    Shows architecture, elements, cutoff (Å), parameter count, file size, the
    default precision, cost per call and measured accuracy, licence and model
    card of each model, read without building it. Use a bundled model in any
    command with --model NAME.
    """
    if ctx.invoked_subcommand is not None:
        return
    path = ctx.meta.get("models_path")
    from ase_fcnet import pretrained as bundled
    from ase_fcnet.model.checkpoint import ModelFileError

    try:
        infos = [bundled.describe_model(path)] if path else bundled.describe_bundled()
    except (FileNotFoundError, ModelFileError) as err:
        raise click.ClickException(_one_line(err)) from err
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    if not infos:
        click.echo(f"No model is bundled with this ase_fcnet (none in {bundled.MODEL_DIR}). "
                   "Pass a model file to the commands with --model PATH "
                   "(e.g. `fcnet phonons STRUCTURE --model PATH`); `fcnet models PATH` describes one.")
        return
    if not path:
        click.echo(f"{len(infos)} bundled model(s) in {bundled.MODEL_DIR}:\n")
    click.echo("\n\n".join("\n".join(_text(info)) for info in infos))


@models.command("convert-sevennet")
@click.argument("name_or_path")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (refused if it exists, unless --force).")
@click.option("--modality", default=None,
              help="Multi-fidelity checkpoints: the modality to evaluate (e.g. PBE).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True, help="Storage precision (SevenNet's weights are float32 numbers).")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
def convert_sevennet(name_or_path, out, modality, dtype, force):
    """Convert a SevenNet checkpoint into an ase_fcnet model file.

    NAME_OR_PATH is a pretrained model shipped in the sevenn wheel
    (sevennet-0, sevennet-l3i5, sevennet-mf-0, or sevenn's names such as
    7net-0) or a SevenNet checkpoint file (e.g. your own fine-tuned one).
    Needs sevenn (pip install "ase_fcnet[sevennet]") to convert, not to run.
    """
    from pathlib import Path

    import torch

    from ase_fcnet.model import save_model
    from ase_fcnet.model.sevennet import ConversionError, convert_sevennet as convert

    target = Path(out)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise click.ClickException(f"{target.parent}: no such folder for --out")
    try:
        model, metadata = convert(name_or_path, modality=modality)
    except ConversionError as err:
        raise click.ClickException(str(err)) from err
    save_model(model.to(getattr(torch, dtype)), target, metadata=metadata)
    n = sum(p.numel() for p in model.parameters())
    click.echo(f"wrote {target}: {metadata['description']}; {len(model.species)} elements, "
               f"{n:,} parameters, cutoff {model.cutoff:g} Å, stored as {dtype}")
