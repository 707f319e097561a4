"""The ``fcnet`` command-line interface.

Subcommands live in their own modules and are imported only when invoked, so
``fcnet phonons`` does not pay for importing the training stack.
"""
from __future__ import annotations

import importlib

import click

from ase_fcnet._version import __version__

#: command name -> (module under ase_fcnet.cli, attribute)
COMMANDS = {
    "phonons": ("phonons", "phonons"),
    "data": ("data", "data"),
    "models": ("models", "models"),
    "train": ("train", "train"),
    "evaluate": ("train", "evaluate"),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name in self.commands or name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attr = COMMANDS[name]
        command = getattr(importlib.import_module(f"ase_fcnet.cli.{module}"), attr)
        self.add_command(command, name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fcnet")
def main():
    """ase_fcnet: exact phonons from an equivariant graph neural network."""
