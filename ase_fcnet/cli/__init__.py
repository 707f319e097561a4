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
    "screen": ("screen", "screen"),
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


def entry_point() -> None:
    """The ``fcnet`` console script: :func:`main`, then exit without interpreter teardown.

    Tearing down an interpreter that has loaded torch, scipy and matplotlib
    took 0.4–0.7 s here, a fifth of a whole ``fcnet phonons`` run, and does
    nothing a finished command needs: every output file is written and closed
    (atomically) before this point. So the exit status of click's standalone
    mode is kept, the standard streams and logging are flushed, and the
    process leaves through ``os._exit``. Before ``main``, glibc's allocator is
    set to reuse freed memory (:func:`ase_fcnet.allocator.tune_glibc_malloc`;
    ``FCNET_MALLOC_TUNING=0`` opts out), which made Hessian-vector products
    16–18 % faster (``benchmarks/hvp_scaling.py``). ``main`` itself (tests, ``python -m``, other
    programs) is untouched.
    """
    import logging
    import os
    import sys

    from ase_fcnet.allocator import tune_glibc_malloc

    tune_glibc_malloc()
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: nothing left to save
            pass
    os._exit(code)
