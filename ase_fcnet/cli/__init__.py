"""The ``fcnet`` command-line interface."""
from __future__ import annotations

import click

from ase_fcnet._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fcnet")
def main():
    """ase_fcnet: exact phonons from an equivariant graph neural network."""


def _register():
    from ase_fcnet.cli import data, models, phonons, train

    main.add_command(phonons.phonons)
    main.add_command(data.data)
    main.add_command(models.models)
    train.register(main)


_register()
