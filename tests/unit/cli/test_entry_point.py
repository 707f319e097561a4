"""The console script keeps click's exit codes and output while skipping interpreter teardown."""
import subprocess
import sys

import pytest

from ase_fcnet._version import __version__


def run_script(*args: str) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom ase_fcnet.cli import entry_point\n"
            f"sys.argv = ['fcnet', *{list(args)!r}]\nentry_point()\nprint('not reached')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_success_prints_and_exits_zero():
    done = run_script("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"fcnet, version {__version__}"
    assert "not reached" not in done.stdout


@pytest.mark.parametrize("args,code,message", [
    (("phonons", "--bogus"), 2, "No such option"),
    (("phonons", "missing.cif", "--model", "missing.pt"), 1, "missing.cif"),
])
def test_errors_keep_their_exit_code_and_message(args, code, message):
    done = run_script(*args)
    assert done.returncode == code
    assert message in done.stderr
