"""``fcnet models``: the model files bundled with the package, or one given file."""
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
        ("elements", _elements(info["species"])),
        ("cutoff", f"{info['cutoff']:g} Å"),
        ("parameters", f"{info['parameters']:,}"),
        ("size", f"{info['size_mb']:.3g} MB"),
        ("saved with", f"ase_fcnet {info['package_version'] or '?'} (file format {info['format_version']})"),
    ]
    if "metrics" in info:
        rows.append(("metrics", ", ".join(_metrics(info["metrics"])) or "-"))
    if "model_card" in info:
        rows.append(("model card", str(info["model_card"])))
    if "description" in info:
        rows.append(("description", str(info["description"])))
    if "caution" in info:
        rows.append(("CAUTION", str(info["caution"])))
    rows.append(("path", info["path"]))
    return [title] + [f"  {key:<12} {value}" for key, value in rows]


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
def models(path, as_json):
    """List the models bundled with the package, or describe the model file PATH.

    Shows elements, cutoff (Å), parameter count, file size, the stored
    metrics and the model card of each model, read without building it.
    """
    from ase_fcnet import models as bundled
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
