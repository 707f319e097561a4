"""Packed data sets (one tar file per split) read exactly as the folder they came from."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from click.testing import CliRunner

from ase_fcnet.cli import main
from ase_fcnet.data import load_dataset, pack_folder, unpack_archive
from ase_fcnet.generation.generate import generate_reference_data

ARRAYS = ("energy", "forces", "stress", "fc_atoms", "force_constants")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Two EMT copper structures written by the data generator (yaml + labels.json each)."""
    out = tmp_path_factory.mktemp("cu")
    ideal = bulk("Cu", "fcc", a=3.615)
    rattled = ideal.repeat((1, 1, 2))
    rattled.rattle(0.02, seed=1)
    generate_reference_data([("cu", ideal), ("cu-rattled", rattled)], EMT, out,
                            supercell_min_length=5.0, progress=False,
                            split=lambda label: "train" if label == "cu" else "held-out")
    return out


def _same_samples(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert np.array_equal(x.atoms.numbers, y.atoms.numbers)
        assert np.array_equal(x.atoms.positions, y.atoms.positions)
        assert np.array_equal(x.atoms.cell[:], y.atoms.cell[:])
        assert np.array_equal(x.atoms.get_masses(), y.atoms.get_masses())
        for name in ARRAYS:
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:
                assert np.array_equal(u, v), name


def test_packed_split_reads_as_the_folder(generated, tmp_path):
    for split in ("train", "held-out"):
        if not (generated / split).is_dir():
            continue
        archive = tmp_path / f"{split}.tar.xz"
        assert pack_folder(generated / split, archive) >= 2
        folder_samples = load_dataset(generated / split)
        packed_samples = load_dataset(archive)
        _same_samples(folder_samples, packed_samples)
        # sources name the archive, in the folder's order (so splits by source are unchanged)
        assert [s.source.replace(str(archive), str(generated / split)) for s in packed_samples] \
            == [s.source for s in folder_samples]


def test_packing_is_byte_exact_and_deterministic(generated, tmp_path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    n = pack_folder(generated, first)
    pack_folder(generated, second)
    assert first.read_bytes() == second.read_bytes()
    assert unpack_archive(first, tmp_path / "back") == n
    for path in generated.rglob("*"):
        if path.is_file():
            back = tmp_path / "back" / path.relative_to(generated)
            assert back.read_bytes() == path.read_bytes()


def test_member_outside_the_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="outside the archive"):
        load_dataset(archive)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_not_a_tar_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.tar.xz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="broken.tar.xz: cannot be read"):
        load_dataset(bad)


def test_cli_pack_then_evaluate_reads_the_archive(generated, tmp_path):
    out = tmp_path / "packed"
    res = CliRunner().invoke(main, ["data", "pack", str(generated), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "index.json").read_bytes() == (generated / "index.json").read_bytes()
    archives = sorted(out.glob("*.tar.xz"))
    assert archives
    res = CliRunner().invoke(main, ["evaluate", "fcnet-small", *map(str, archives)])
    assert res.exit_code == 0, res.output
    assert "forces" in res.output


def test_unpacked_once_unpacks_only_when_the_folder_is_missing(generated, tmp_path):
    from ase_fcnet.data import unpacked_once

    archive = tmp_path / "train.tar"
    pack_folder(generated / "train", archive)
    folder = unpacked_once(archive, tmp_path / "cache" / "train")
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(generated / "train")
                           for p in (generated / "train").rglob("*") if p.is_file())
    (folder / "marker").write_text("kept")
    assert unpacked_once(archive, folder) == folder and (folder / "marker").is_file()
    assert not (tmp_path / "cache" / "train.part").exists()
