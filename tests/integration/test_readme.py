"""The README stays true: its Python example runs, CI runs its test command."""
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_python_example_runs(monkeypatch):
    (code,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    hessian, bands = scope["hessian"], scope["bands"]
    assert hessian.shape == (6, 6) and np.allclose(hessian, hessian.T, atol=1e-10)
    freqs = bands.all_frequencies
    assert freqs.max() > 10.0 and freqs.min() > -0.05  # physical silicon-like spectrum


def _installs(command: str) -> list[str]:
    """Package specs of every ``pip install`` in a shell command (options dropped)."""
    specs = []
    for step in re.split(r"&&|\n", command):
        words = step.replace('"', "").replace("'", "").split()
        if "install" in words:
            specs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return specs


def test_ci_runs_the_readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    main_cmd = next(b.strip() for b in blocks if "fcnet phonons examples/" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    assert _installs(test_cmd) == _installs(ci) == ["torch==2.13.0", ".[test,teacher,dask]"]
    assert "pytest" in ci
    structure = re.search(r"fcnet phonons (\S+)", main_cmd).group(1)
    assert (ROOT / structure).is_file()
    model = re.search(r"--model (\S+)", main_cmd)
    # without --model the bundled default runs: it must be in the package
    assert (ROOT / model.group(1)).is_file() if model else \
        (ROOT / "ase_fcnet" / "pretrained" / "sevennet-l3i5.pt").is_file()
