"""Bad and unusual input: one clear error line before any work, no traceback, --out absent or untouched.

One test (or parameter) per row of issue 21's table, plus the checks added with
them. Valid but unusual input (a short supercell, an opt-in) gets a correct
result with a warning instead. ``fcnet-small`` and cells of a few atoms keep
it fast; subprocesses only where a real signal is sent.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from click.testing import CliRunner
from phonopy import Phonopy

from ase_fcnet.cli import main
from ase_fcnet.pretrained import model_file
from ase_fcnet.phonons.adapter import atoms_to_phonopy, phonopy_to_atoms

SMALL = ["--model", "fcnet-small", "--device", "cpu"]
FAST = ["--mesh", "4 4 4", "--npoints", "5", "--tstep", "250"]


def snapshot(folder: Path):
    """Names, sizes and modification times of everything beside and inside ``folder``."""
    return sorted((str(p.relative_to(folder.parent)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.parent.rglob("*"))


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, out: Path, before, *words, code=None):
    """Non-zero exit, one ``Error:`` line holding ``words``, no traceback, nothing written."""
    text = result.output
    assert result.exit_code != 0, text
    if code is not None:
        assert result.exit_code == code, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, text
    for word in words:
        assert word in errors[0], errors[0]
    assert snapshot(out) == before, "files changed beside --out"
    return errors[0]


@pytest.fixture()
def case(tmp_path, write_rocksalt_cif):
    """Files of the table's rows; ``out`` is an output folder that does not exist yet."""
    work = tmp_path / "work"
    work.mkdir()
    bulk("Al", "fcc", a=4.05).write(work / "Al.cif")
    bulk("NaCl", "rocksalt", a=5.64, cubic=True).write(work / "NaCl_cubic.cif")
    write(work / "three.extxyz", [bulk("Al", "fcc", a=a) for a in (4.0, 4.05, 4.1)])
    write_rocksalt_cif(work / "mixed.cif", "Na1 Na 0 0 0 0.5\nK1 K 0 0 0 0.5")
    write_rocksalt_cif(work / "partial.cif", "Na1 Na 0 0 0 0.8")
    write_rocksalt_cif(work / "merged.cif", "Na1 Na 0 0 0 1.0\nCl2 Cl 0 0 0 1.0")
    (work / "garbage.cif").write_text("hello, I am not a crystal\n")
    return work


def refused(case, args, *words, code=None, out_name="out"):
    out = case / out_name
    before = snapshot(out)
    return assert_refused(invoke(["phonons", *args, *SMALL, "--out", out]), out, before, *words,
                          code=code)


@pytest.mark.parametrize("args, words", [
    (["--mesh", "0"], ["--mesh", "positive"]),
    (["--mesh", "-5"], ["--mesh", "-5"]),
    (["--mesh", "0 0 0"], ["--mesh", "three integers >= 1"]),
    (["--symprec", "-1"], ["--symprec", "positive"]),
    (["--symprec", "0"], ["--symprec"]),
    (["--tstep", "5000"], ["--tstep", "only T = 0.0 K"]),
    (["--tmin", "500", "--tmax", "100"], ["--tmax", "below"]),
    (["--relax", "--fmax", "0"], ["--fmax", "positive"]),
    (["--npoints", "1"], ["--npoints"]),
    (["--max-atoms", "-1"], ["--max-atoms"]),
])
def test_option_out_of_range(case, args, words):
    refused(case, [case / "Al.cif", *args], *words, code=2)


@pytest.mark.parametrize("args, words", [
    ([], ["holds 3 structures", "--index"]),
    (["--index", ":"], ["selects 3 of the 3", "exactly one"]),
    (["--index", "9"], ["--index 9", "holds 3 structures", "0 .. 2"]),
    (["--index", "abc"], ["not an index"]),
])
def test_multi_frame_file_needs_a_valid_index(case, args, words):
    refused(case, [case / "three.extxyz", *args], *words)


@pytest.mark.parametrize("name, words", [
    ("mixed.cif", ["site 0", "mixed occupancy Na 0.5 + K 0.5", "--allow-partial-occupancy"]),
    ("partial.cif", ["site 0", "partial occupancy Na 0.8"]),
    ("merged.cif", ["site 0", "2 atoms on one position"]),
])
def test_disordered_sites_are_refused_with_the_site(case, name, words):
    refused(case, [case / name], *words)


def test_garbage_file_gives_a_reason(case):
    line = refused(case, [case / "garbage.cif"], "garbage.cif")
    reason = line.split("garbage.cif:", 1)[1].strip()
    assert reason and "cif" in reason


@pytest.mark.parametrize("device, words", [
    ("gpu0", ["'gpu0' is not a device name", "cuda:N"]),
    ("mps", ["mps", "not available"]),
    ("xpu", ["only cpu, cuda"]),
])
def test_bad_device_string(case, device, words):
    out = case / "out"
    before = snapshot(out)
    result = invoke(["phonons", case / "Al.cif", "--model", "fcnet-small", "--device", device,
                     "--out", out])
    line = assert_refused(result, out, before, *words)
    assert "model" not in line  # not blamed on the model file


def test_one_atom_supercell(case):
    refused(case, [case / "Al.cif", "--supercell", "1", "1", "1"], "single atom", "--supercell")


def test_supercell_too_large_is_refused_before_work(case):
    from ase_fcnet.cli.phonons import MAX_ATOMS
    from ase_fcnet.phonons.estimate import DEFAULT_MAX_ATOMS

    from ase.io import read

    from ase_fcnet.phonons.adapter import resolve_supercell_matrix

    matrix = resolve_supercell_matrix(read(case / "Al.cif").cell, None, 60.0)
    n_atoms = round(abs(np.linalg.det(matrix)))  # one atom per primitive cell
    assert n_atoms > DEFAULT_MAX_ATOMS
    line = refused(case, [case / "Al.cif", "--min-length", "60"], f"{n_atoms} atoms", "--max-atoms")
    assert MAX_ATOMS == DEFAULT_MAX_ATOMS and f"limit of {DEFAULT_MAX_ATOMS}" in line


def test_memory_estimate_refuses_before_the_force_constants(case):
    out = case / "out"
    before = snapshot(out)
    result = invoke(["phonons", case / "Al.cif", *SMALL, "--supercell", "7", "7", "7",
                     "--max-memory", "0.001", "--out", out])
    assert_refused(result, out, before, "343-atom supercell", "GB", "--max-memory")
    assert "estimate from a 64-atom probe" in result.output
    assert "force constants (analytic) ..." not in result.output


def test_output_folder_not_writable_or_blocked(case):
    out = Path("/proc/fcnet-test-out")  # not writable even for root
    result = invoke(["phonons", case / "Al.cif", *SMALL, "--out", out])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("Error: output folder /proc/fcnet-test-out: "
                                                     "cannot write in /proc")
    assert "[1/4]" not in result.output  # before the structure is even read
    (case / "a_file").write_text("x")
    refused(case, [case / "Al.cif"], "a_file", "in the way", out_name="a_file")


def test_foreign_folder_is_never_replaced(case):
    (case / "mine").mkdir()
    (case / "mine" / "band.yaml").mkdir()  # a folder in the way of one output file
    (case / "mine" / "notes.txt").write_text("precious")
    refused(case, [case / "Al.cif", "--overwrite"], "no summary.json", out_name="mine")
    refused(case, [case / "Al.cif"], "already exists", "--overwrite", out_name="mine")


def test_unconverged_relaxation_is_an_error_unless_allowed(case):
    args = [case / "NaCl_cubic.cif", "--relax", "--fmax", "1e-9", "--relax-steps", "2"]
    refused(case, args, "did not converge in 2 steps", "--allow-unconverged")
    out = case / "allowed"
    result = invoke(["phonons", *args, "--allow-unconverged", *SMALL, *FAST, "--out", out])
    assert result.exit_code == 0, result.output
    assert "relaxation not converged" in result.output
    assert json.loads((out / "summary.json").read_text())["relaxation"]["converged"] is False


def test_valid_unusual_inputs_run_with_warnings(case):
    """Short supercell: warning with the length; opt-in for a disordered site; a chosen frame;
    a polar crystal without BORN: a note; a rerun: refused, then replaced whole with --overwrite."""
    out = case / "nacl"
    result = invoke(["phonons", case / "NaCl_cubic.cif", *SMALL, *FAST, "--supercell", "1", "1", "1",
                     "--out", out])
    assert result.exit_code == 0, result.output
    assert "WARNING: the supercell's shortest lattice translation is 5.64 Å" in result.output
    assert "NOTE: Cl4Na4 may be polar" in result.output and "--born" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["non_analytic_correction"] and summary["may_be_polar"]
    assert any("5.64 Å" in w for w in summary["warnings"])
    (out / "stale.txt").write_text("left by hand")
    before = snapshot(out)
    again = invoke(["phonons", case / "NaCl_cubic.cif", *SMALL, *FAST, "--out", out])
    assert_refused(again, out, before, "already exists", "--overwrite")
    again = invoke(["phonons", case / "NaCl_cubic.cif", *SMALL, *FAST, "--supercell", "1", "1", "1",
                    "--out", out, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert not (out / "stale.txt").exists()  # replaced whole: no file of the first run kept
    assert sorted(p.name for p in case.iterdir() if p.name.startswith(".")) == []

    out = case / "frame"
    result = invoke(["phonons", case / "three.extxyz", "--index", "1", *SMALL, *FAST,
                     "--supercell", "2", "2", "2", "--out", out])
    assert result.exit_code == 0, result.output
    phonopy_yaml = yaml.safe_load((out / "phonopy.yaml").read_text())
    assert np.linalg.norm(phonopy_yaml["unit_cell"]["lattice"][0]) == pytest.approx(4.05 / 2**0.5)

    out = case / "mixed"
    result = invoke(["phonons", case / "mixed.cif", "--allow-partial-occupancy", *SMALL, *FAST,
                     "--supercell", "1", "1", "1", "--out", out])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "mixed occupancy" in result.output


def test_born_file_is_checked_and_applied(case):
    born = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dft" / "NaCl_example" / "BORN"
    if not born.is_file():
        pytest.skip(f"phonopy's NaCl example not at {born}")
    refused(case, [case / "Al.cif", "--born", case / "nothing"], "BORN file not found", code=2)
    (case / "BORN").write_text("14.4\n1 0 0 0 1 0 0 0 1\n")
    refused(case, [case / "NaCl_cubic.cif", "--born", case / "BORN"], "not a BORN file")
    out = case / "nac"
    result = invoke(["phonons", case / "NaCl_cubic.cif", "--born", born, *SMALL, *FAST,
                     "--supercell", "1", "1", "1", "--out", out])
    assert result.exit_code == 0, result.output
    assert "may be polar" not in result.output
    assert json.loads((out / "summary.json").read_text())["non_analytic_correction"] is True
    assert "nac_unit_conversion_factor" in (out / "phonopy.yaml").read_text() or \
        "born_effective_charge" in (out / "phonopy.yaml").read_text()


def bad_model(tmp_path, change):
    data = torch.load(model_file("fcnet-small"), weights_only=True)
    change(data)
    path = tmp_path / "bad.pt"
    torch.save(data, path)
    return path


def _nan(data):
    name = "readout.0.weight" if "readout.0.weight" in data["state_dict"] else next(
        k for k, v in data["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    data["state_dict"][name] = data["state_dict"][name].clone()
    data["state_dict"][name].view(-1)[0] = float("nan")
    data["nan_name"] = name


@pytest.mark.parametrize("change, words", [
    (_nan, ["non-finite", "weight tensor"]),
    (lambda d: d.update(format_version="1"), ["format_version '1' (str)", "not a positive integer"]),
    (lambda d: d.update(package_version=3), ["package_version is a int"]),
])
def test_bad_model_files(case, change, words):
    path = bad_model(case, change)
    out = case / "out"
    before = snapshot(out)
    assert_refused(invoke(["models", path]), out, before, *words)
    assert_refused(invoke(["phonons", case / "Al.cif", "--model", path, "--out", out]), out, before,
                   *words)


# ----------------------------------------------------------------- signals (subprocess)
def _start(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", "from ase_fcnet.cli import entry_point; "
                             "entry_point()", *map(str, args)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_leaves_old_folder_untouched_and_no_leftovers(case, signum, code):
    out = case / "sig"
    out.mkdir()
    (out / "summary.json").write_text("{\"old\": true}")
    p1 = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((2, 2, 2))
    p1.rattle(0.02, seed=1)  # P1: 192 directions, computed in row threads
    write(case / "p1.cif", p1)
    before = snapshot(out)
    proc = _start(["phonons", case / "p1.cif", *SMALL, "--supercell", "1", "1", "1",
                   "--out", out, "--overwrite"], case)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "force constants (analytic) ..." in line:
            break
    time.sleep(0.5)
    start = time.perf_counter()
    proc.send_signal(signum)
    rest = proc.communicate(timeout=60)[1]
    waited = time.perf_counter() - start
    assert proc.returncode == code, "".join(lines) + rest
    assert waited < 10, f"took {waited:.1f} s to stop"
    assert "Traceback" not in rest and "nothing written" in rest
    assert snapshot(out) == before
    assert [p.name for p in case.iterdir() if p.name.startswith(".")] == []


def test_sigterm_while_writing_leaves_the_old_folder(case, monkeypatch):
    """A SIGTERM (as the handler raises it) half-way through writing the files."""
    from ase_fcnet.phonons import workflow
    from ase_fcnet.progress import StopSignal

    out = case / "old"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    before = snapshot(out)
    write_force_constants = workflow.write_force_constants

    def then_terminated(phonon, path):
        write_force_constants(phonon, path)
        raise StopSignal(signal.SIGTERM)

    monkeypatch.setattr(workflow, "write_force_constants", then_terminated)
    result = invoke(["phonons", case / "Al.cif", *SMALL, *FAST, "--supercell", "2", "2", "2",
                     "--out", out, "--overwrite"])
    assert result.exit_code == 143 and "Traceback" not in result.output
    assert "stopped by SIGTERM: nothing written" in result.output
    assert snapshot(out) == before
    assert [p.name for p in case.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------- training
TINY = dict(species=["Cu"], cutoff=4.0, num_layers=1, l_max=1, scalar_channels=8,
            tensor_channels=4, num_radial=4, radial_hidden=8, num_heads=1, readout_hidden=8)


def emt_phonopy(folder: Path, a: float) -> None:
    phonon = Phonopy(atoms_to_phonopy(bulk("Cu", "fcc", a=a, cubic=True)),
                     supercell_matrix=np.eye(3, dtype=int), primitive_matrix="P", log_level=0)
    phonon.generate_displacements(distance=0.03)
    cells = [phonopy_to_atoms(c) for c in phonon.supercells_with_displacements]
    for cell in cells:
        cell.calc = EMT()
    phonon.forces = np.array([c.get_forces() for c in cells])
    phonon.supercell_energies = np.array([c.get_potential_energy() for c in cells])
    folder.mkdir(parents=True)
    phonon.save(str(folder / "phonopy_params.yaml"))


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cu")
    for a in (3.58, 3.64):
        emt_phonopy(root / f"a{a}", a)
    return root


def train_config(path: Path, data, out, validation=0.0, **training) -> Path:
    cfg = {"model": TINY, "data": {"paths": [str(data)], "validation_fraction": validation},
           "loss": {"energy": 0.01},
           "training": {"epochs": 20, "batch_size": 1, "output_dir": str(out), "progress": False,
                        "checkpoint_interval": 1, **training}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_bad_device_and_impossible_split(cu_data, tmp_path):
    out = tmp_path / "run"
    split = train_config(tmp_path / "a.yaml", cu_data / "a3.58", out, validation=0.5, max_steps=1)
    cfg = train_config(tmp_path / "b.yaml", cu_data, out, max_steps=1)
    before = snapshot(out)
    assert_refused(invoke(["train", split]), out, before, "validation_fraction 0.5", "1 dataset")
    assert_refused(invoke(["train", cfg, "--device", "gpu0"]), out, before, "'gpu0'")
    assert_refused(invoke(["evaluate", "fcnet-small", cu_data, "--device", "gpu0"]), out, before,
                   "'gpu0'")


def test_resume_extends_a_finished_run_and_cleans_stale_temporaries(cu_data, tmp_path):
    out = tmp_path / "run"
    cfg = train_config(tmp_path / "c.yaml", cu_data, out, max_steps=2)
    assert invoke(["train", cfg]).exit_code == 0
    first = (out / "model.pt").stat().st_mtime_ns
    same = invoke(["train", cfg, "--resume"])
    assert same.exit_code == 0 and "nothing to train" in same.output
    assert (out / "model.pt").stat().st_mtime_ns == first  # not rewritten
    (out / ".loss_curves.png.k1ll3d.tmp").write_text("left by a SIGKILL")
    cfg = train_config(tmp_path / "c.yaml", cu_data, out, max_steps=5)
    more = invoke(["train", cfg, "--resume"])
    assert more.exit_code == 0, more.output
    assert "done: 5 steps" in more.output
    assert torch.load(out / "model.pt", weights_only=True)["metadata"]["steps"] == 5
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
