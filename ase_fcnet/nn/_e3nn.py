"""The one place ase_fcnet imports e3nn, without paying for ``torch._dynamo``.

e3nn 0.6 decorates ``o3._wigner.change_basis_real_to_complex`` with
``torch.compiler.disable``, whose first use imports ``torch._dynamo``: about
1.2 s of a 3 s command-line start on the project's 2-core CPU, for a compiler that
``fcnet phonons`` never runs. While e3nn is imported here, that decorator is
replaced by one that defers the real ``torch.compiler.disable`` until the
decorated function is called with ``torch._dynamo`` already loaded. Outside
compilation (``torch._dynamo`` not imported) nothing can be traced, so
calling the plain function is exactly what the disabled one does. The original
decorator is restored straight after the import.
"""
from __future__ import annotations

import contextlib
import functools
import sys

import torch
import torch.compiler


def _deferred_disable(original):
    def disable(fn=None, recursive=True, **kwargs):
        if fn is None:
            return functools.partial(disable, recursive=recursive, **kwargs)
        compiled = []

        @functools.wraps(fn)
        def call(*args, **kw):
            if "torch._dynamo" not in sys.modules:
                return fn(*args, **kw)
            if not compiled:
                compiled.append(original(fn, recursive, **kwargs))
            return compiled[0](*args, **kw)

        return call

    return disable


def _import_e3nn():
    if "e3nn.o3" in sys.modules:
        return
    original = torch.compiler.disable
    torch.compiler.disable = _deferred_disable(original)
    try:
        import e3nn.o3  # noqa: F401
    finally:
        torch.compiler.disable = original


_import_e3nn()

import e3nn  # noqa: E402
from e3nn import o3  # noqa: E402
from e3nn import nn as e3nn_nn  # noqa: E402
from e3nn.nn import Gate  # noqa: E402


@contextlib.contextmanager
def plain_einsums():
    """Build e3nn modules without searching for the best einsum contraction order.

    By default e3nn passes each generated tensor-product graph through
    ``opt_einsum_fx``. That search took about 40 % of the time it takes to load the
    default model. ``python benchmarks/einsum_paths.py`` measures load time,
    Hessian-vector products and a training step with and without it (numbers in
    docs/benchmarks.md). e3nn's own defaults are restored on exit.
    """
    saved = e3nn.get_optimization_defaults()
    e3nn.set_optimization_defaults(optimize_einsums=False)
    try:
        yield
    finally:
        e3nn.set_optimization_defaults(**saved)


__all__ = ["Gate", "e3nn_nn", "o3", "plain_einsums"]
