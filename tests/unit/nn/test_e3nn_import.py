"""e3nn is imported without torch._dynamo, and its deferred decorator keeps e3nn's behaviour."""
import subprocess
import sys

import torch

from ase_fcnet.nn import _e3nn


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_package_and_building_a_model_skips_dynamo():
    code = ("import ase_fcnet\nfrom ase_fcnet.model import ModelConfig, build_model\n"
            "build_model(ModelConfig(species=('Si',), cutoff=3.0, num_layers=1, scalar_channels=4,"
            " tensor_channels=2), seed=0)")
    assert "torch._dynamo" not in _modules_after(code)


def test_the_phonons_command_does_not_import_the_training_stack():
    loaded = _modules_after("from ase_fcnet.cli import main\nimport ase_fcnet.cli.phonons")
    assert "ase_fcnet.training" not in loaded
    assert "torch._dynamo" not in loaded


def test_deferred_disable_calls_the_plain_function_without_dynamo(monkeypatch):
    calls = []

    def original(fn, recursive=True, **kwargs):
        calls.append((fn, recursive, kwargs))
        return lambda *a, **k: ("disabled", fn(*a, **k))

    disable = _e3nn._deferred_disable(original)

    @disable
    def double(x):
        return 2 * x

    @disable(recursive=False)
    def triple(x):
        return 3 * x

    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    assert double(2) == 4 and triple(2) == 6 and calls == []
    monkeypatch.setitem(sys.modules, "torch._dynamo", object())
    assert double(2) == ("disabled", 4)
    assert triple(3) == ("disabled", 9)
    assert double(5) == ("disabled", 10)
    assert [c[1] for c in calls] == [True, False]  # wrapped once per function, flags kept
    assert double.__name__ == "double"


def test_e3nn_basis_change_is_unchanged():
    from e3nn.o3._wigner import change_basis_real_to_complex

    q = change_basis_real_to_complex(2, dtype=torch.float64)
    assert q.dtype == torch.complex128 and q.shape == (5, 5)
    assert torch.allclose(q @ q.conj().T, torch.eye(5, dtype=q.dtype))
