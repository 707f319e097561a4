"""`fcnet data generate` through CliRunner."""
import json

from ase.build import bulk
from click.testing import CliRunner

from ase_fcnet.cli import main
from ase_fcnet.data import load_dataset


def test_generate_from_files_with_emt(tmp_path):
    cu = tmp_path / "cu.cif"
    bulk("Cu", "fcc", a=3.615).write(cu)
    out = tmp_path / "ref"
    args = ["data", "generate", "--structure", str(cu), "--reference", "emt", "--out", str(out),
            "--supercell-min-length", "5", "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    index = json.loads((out / "index.json").read_text())
    (entry,) = index["structures"]
    assert entry["label"] == "cu" and (out / entry["folder"] / "phonopy_params.yaml").is_file()
    samples = load_dataset([out])
    assert any(s.force_constants is not None for s in samples)
    assert any(s.forces is not None for s in samples)
    again = CliRunner().invoke(main, args)  # resumable: nothing left to do
    assert again.exit_code == 0 and "1 structures" in again.output


def test_generate_with_importable_calculator(tmp_path):
    cu = tmp_path / "cu.cif"
    bulk("Cu", "fcc", a=3.615).write(cu)
    res = CliRunner().invoke(main, ["data", "generate", "--structure", str(cu), "--calculator",
                                    "ase.calculators.emt:EMT", "--out", str(tmp_path / "o"),
                                    "--supercell-min-length", "5", "--no-progress"])
    assert res.exit_code == 0, res.output


def test_generate_bad_arguments(tmp_path):
    runner = CliRunner()
    both = runner.invoke(main, ["data", "generate", "--set", "si", "--reference", "emt",
                                "--calculator", "x:y", "--out", str(tmp_path / "o")])
    assert both.exit_code == 2 and "exactly one" in both.output
    unknown = runner.invoke(main, ["data", "generate", "--set", "nope", "--reference", "emt",
                                   "--out", str(tmp_path / "o")])
    assert unknown.exit_code == 2 and "si" in unknown.output
    bad_import = runner.invoke(main, ["data", "generate", "--set", "si", "--calculator",
                                      "no_such_module:Calc", "--out", str(tmp_path / "o")])
    assert bad_import.exit_code == 2 and "cannot import" in bad_import.output
    assert not (tmp_path / "o").exists()


def test_element_the_reference_lacks_fails_before_any_folder(tmp_path):
    yb = tmp_path / "Yb.cif"
    bulk("Yb", "fcc", a=5.49).write(yb)
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["data", "generate", "--structure", str(yb), "--reference", "emt",
                                    "--out", str(out), "--no-progress"])
    assert res.exit_code == 1 and not out.exists()
    assert res.exception is None or isinstance(res.exception, SystemExit)
    (line,) = [ln for ln in res.output.splitlines() if ln.strip()]
    assert "Yb.cif" in line and "Yb" in line and "'emt'" in line and "Cu" in line


def test_max_hessian_cost_reaches_the_generator(tmp_path):
    si = tmp_path / "si.cif"
    bulk("Si", "diamond", a=5.431).write(si)
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["data", "generate", "--structure", str(si), "--reference", "sw-si",
                                    "--out", str(out), "--supercell-min-length", "5",
                                    "--max-hessian-cost", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    (entry,) = json.loads((out / "index.json").read_text())["structures"]
    labels = json.loads((out / entry["folder"] / "labels.json").read_text())
    assert labels["force_constants_method"] == "finite-displacement"
    assert json.loads((out / "index.json").read_text())["metadata"]["max_hessian_cost"] == 0


def test_teacher_and_pack_are_data_subcommands():
    for name in ("generate", "teacher", "pack"):
        res = CliRunner().invoke(main, ["data", name, "--help"])
        assert res.exit_code == 0 and "--out" in res.output
    assert "--max-hessian-cost" in CliRunner().invoke(main, ["data", "generate", "--help"]).output
