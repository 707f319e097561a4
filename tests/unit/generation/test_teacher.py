"""The universal structure set and the teacher-data pipeline (run here with EMT)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list
from phonopy import Phonopy

from ase_fcnet.data import load_dataset
from ase_fcnet.generation import universal as uni
from ase_fcnet.generation.references import reference_calculator
from ase_fcnet.generation.teacher import DONE, YAML_XZ, label_base
from ase_fcnet.phonons import atoms_to_phonopy, phonopy_to_atoms

EMT_FACTORY = functools.partial(reference_calculator, "emt")


def test_elements_cover_h_to_bi_without_noble_gases_and_late_lanthanides():
    assert len(uni.ELEMENTS) == 64
    assert uni.ELEMENTS[0] == "H" and uni.ELEMENTS[-1] == "Bi"
    for absent in ("He", "Ne", "Ar", "Kr", "Xe", "Ce", "Gd", "Lu", "Po"):
        assert absent not in uni.ELEMENTS
    assert "La" in uni.ELEMENTS and "Hf" in uni.ELEMENTS


def test_scale_to_bonds_sets_the_shortest_bond_to_the_covalent_sum():
    atoms = uni.scale_to_bonds(bulk("NaCl", "rocksalt", a=1.0), factor=1.1)
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    ratio = d / (covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[j]])
    assert ratio.min() == pytest.approx(1.1, rel=1e-9)


def test_base_structures_are_reproducible_and_span_every_element():
    pytest.importorskip("pyxtal")
    first = uni.base_structures(seed=0, n_random=4)
    second = uni.base_structures(seed=0, n_random=4)
    assert [lab for lab, _ in first] == [lab for lab, _ in second]
    for (_, a), (_, b) in zip(first, second):
        np.testing.assert_allclose(a.positions, b.positions)
    labels = [lab for lab, _ in first]
    assert len(set(labels)) == len(labels)
    kinds = {lab.split("-")[0] for lab in labels}
    assert {"fcc", "bcc", "hcp", "diamond", "rocksalt", "wurtzite", "fluorite", "rutile",
            "perovskite", "spinel", "cdi2", "mos2", "random"} <= kinds
    present = set()
    for _, atoms in first:
        present.update(atoms.get_chemical_symbols())
        assert all(atoms.pbc) and len(atoms) <= 14
    assert present == set(uni.ELEMENTS)
    held = [lab for lab in labels if uni.teacher_split(lab) == "held-out"]
    assert 0.05 < len(held) / len(labels) < 0.15
    for common in ("rocksalt-ClNa", "rocksalt-MgO", "zincblende-AsGa", "wurtzite-GaN",
                   "perovskite-O3SrTi", "spinel-Al2MgO4", "l12-AlNi3", "diamond-Si"):
        assert common in labels


def test_common_compounds_have_their_own_stoichiometry():
    cells = dict(uni.common_structures())
    listed = [*uni.COMMON.values(), *uni._COMMON_MORE.values()]
    assert len(cells) == sum(len(v) for v in listed)  # no duplicate compounds
    expected = {"rocksalt-ClNa": "ClNa", "fluorite-CaF2": "CaF2", "antifluorite-Li2O": "Li2O",
                "rutile-O2Ti": "O4Ti2", "perovskite-O3SrTi": "O3SrTi", "l12-AlNi3": "AlNi3",
                "spinel-Al2MgO4": "Al4Mg2O8", "mos2-MoS2": "Mo2S4", "cdi2-CdI2": "CdI2",
                "nias-AsNi": "As2Ni2", "halfheusler-NiSnTi": "NiSnTi",
                "heusler-AlCu2Mn": "AlCu2Mn", "chalcopyrite-CuInSe2": "Cu2In2Se4",
                "rocksalt-HLi": "HLi", "spinel-CdCr2S4": "Cd2Cr4S8"}
    for label, formula in expected.items():
        assert cells[label].get_chemical_formula() == formula
    with pytest.raises(ValueError, match="Xe"):
        uni._split_formula("XeF")


def test_label_base_writes_compact_phonopy_data_that_reads_back(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.7)  # EMT relaxes it to ~3.59 Å
    record = label_base("fcc-Cu", atoms, EMT_FACTORY, tmp_path / "fcc-Cu", n_efs=2)
    assert (tmp_path / "fcc-Cu" / DONE).is_file()
    assert record["relaxation"]["converged"]
    names = [v["label"] for v in record["variants"]]
    assert names == ["fcc-Cu/eq", "fcc-Cu/iso", "fcc-Cu/efs-0", "fcc-Cu/efs-1"]
    assert [v["force_constants"] for v in record["variants"]] == [True, True, False, False]

    eq = tmp_path / "fcc-Cu" / "eq"
    samples = load_dataset([eq / YAML_XZ])
    assert len(samples) == 1  # no displacement snapshots are stored, only the labelled supercell
    (sample,) = samples
    calc = EMT()
    sample.atoms.calc = calc
    assert sample.energy == pytest.approx(sample.atoms.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(sample.forces, sample.atoms.get_forces(), atol=2e-6)
    np.testing.assert_allclose(sample.stress, sample.atoms.get_stress(), atol=2e-9)
    smat = np.array(record["variants"][0]["supercell_matrix"])
    n_super = len(sample.atoms)
    assert n_super == round(abs(np.linalg.det(smat))) and n_super >= 27  # planes >= 6 Å apart
    labels = json.loads((eq / "labels.json").read_text())
    assert labels["n_displacements"] == 1 and labels["force_constants"]
    assert sample.force_constants.shape == (1, n_super, 3, 3)
    asr = sample.force_constants.sum(axis=1)
    assert np.abs(asr).max() < 1e-3 * np.abs(sample.force_constants).max()

    efs = load_dataset([tmp_path / "fcc-Cu" / "efs-0"])
    assert len(efs) == 1 and efs[0].force_constants is None
    assert efs[0].stress is not None and np.abs(efs[0].forces).max() > 1e-3  # rattled


def test_label_base_matches_phonopy_finite_displacements(tmp_path):
    atoms = bulk("Ni", "fcc", a=3.52)
    label_base("fcc-Ni", atoms, EMT_FACTORY, tmp_path / "b", n_efs=0)
    (sample,) = load_dataset([tmp_path / "b" / "eq"])
    labels = json.loads((tmp_path / "b" / "eq" / "labels.json").read_text())
    smat = np.array(labels["supercell_matrix"])
    unit = sample.atoms[:1]  # the relaxed one-atom cell, rebuilt from the supercell
    unit.set_cell(np.linalg.inv(smat) @ sample.atoms.cell.array)
    unit.set_scaled_positions([[0, 0, 0]])
    phonon = Phonopy(atoms_to_phonopy(unit), smat, log_level=0)
    phonon.generate_displacements(distance=0.01)
    forces = []
    for cell_ in phonon.supercells_with_displacements:
        a = phonopy_to_atoms(cell_)
        a.calc = EMT()
        forces.append(a.get_forces())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants(calculate_full_force_constants=False)
    np.testing.assert_allclose(sample.force_constants, phonon.force_constants, atol=2e-4)


def test_bad_relaxation_is_skipped_with_a_reason(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.set_cell(atoms.cell * 4.0, scale_atoms=True)  # 740 Å^3/atom: flagged as unusable
    record = label_base("fcc-Cu-huge", atoms, lambda: _NoOp(), tmp_path / "x", n_efs=0)
    assert "volume" in record["skipped"]
    assert (tmp_path / "x" / DONE).is_file() and not (tmp_path / "x" / "eq").exists()


class _NoOp(EMT):
    """EMT that the relaxation cannot move (zero forces and stress)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        self.results["forces"] = np.zeros_like(self.results["forces"])
        self.results["stress"] = np.zeros(6)


def test_sevennet_teacher_runs_offline():
    pytest.importorskip("sevenn")
    from ase_fcnet.generation.teacher import sevennet_calculator

    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.calc = sevennet_calculator()
    assert np.isfinite(atoms.get_potential_energy())
    assert np.abs(atoms.get_forces()).max() < 1e-3  # symmetric site: zero force


def test_generate_teacher_data_resumes_and_indexes(tmp_path):
    pytest.importorskip("pyxtal")
    from ase_fcnet.generation.teacher import generate_teacher_data

    first = generate_teacher_data(tmp_path, EMT_FACTORY, n_random=2, limit=2, progress=False, n_efs=0)
    assert len(first) == 2  # EMT knows few elements: such bases are recorded as skipped
    assert all("variants" in r or "relaxation failed" in r["skipped"] for r in first)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*/done.json")}
    again = generate_teacher_data(tmp_path, EMT_FACTORY, n_random=2, limit=0, progress=False)
    assert [r["base"] for r in again] == [r["base"] for r in first]
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*/done.json")}
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["n_bases"] > 300 and len(index["bases"]) == 2  # 324 prototypes + random


@pytest.mark.parametrize("kind,symbols,number", [
    ("nias", ("Ni", "As"), 194), ("halfheusler", ("Ti", "Ni", "Sn"), 216),
    ("heusler", ("Cu", "Mn", "Al"), 225), ("chalcopyrite", ("Cu", "In", "Se"), 122),
    ("hexdiamond", ("C",), 194), ("spinel", ("Mg", "Al", "O"), 227),
])
def test_prototype_cells_have_their_space_group(kind, symbols, number):
    import spglib

    from ase_fcnet.generation.cells import build_cell

    atoms = uni.scale_to_bonds(build_cell(kind, *symbols))
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_symmetry_dataset(cell, symprec=1e-3).number == number
    assert len(atoms) == spglib.find_primitive(cell, symprec=1e-3)[2].size  # primitive cells


def test_unknown_prototype_is_named():
    from ase_fcnet.generation.cells import build_cell

    with pytest.raises(ValueError, match="perovskit"):
        build_cell("perovskit", "Sr", "Ti", "O")


def _fake_base(tmp_path, stress, max_abs_fc):
    from ase_fcnet.generation import teacher

    folder = tmp_path / "rocksalt-XY"
    variants = []
    for name, s, fc in (("eq", 0.0, max_abs_fc), ("efs-0", stress, None)):
        (folder / name).mkdir(parents=True)
        (folder / name / "labels.json").write_text(json.dumps({"stress": [s, 0, 0, 0, 0, 0]}))
        variants.append({"label": f"rocksalt-XY/{name}", "force_constants": fc is not None,
                         **({"max_abs_fc": fc} if fc is not None else {})})
    return teacher, folder, {"base": "rocksalt-XY", "variants": variants}


def test_plausible_labels_are_kept_and_marked_checked(tmp_path):
    teacher, folder, record = _fake_base(tmp_path, stress=-0.9, max_abs_fc=38.0)
    assert teacher.implausible(folder, record["variants"]) is None
    out = teacher._skip_implausible(folder, record)
    assert out["labels_checked"] and "skipped" not in out and (folder / "eq").is_dir()


@pytest.mark.parametrize("stress,fc,match", [(1.8, 30.0, "efs-0: |stress| 1.80"),
                                             (0.1, 407.0, "eq: |force constant| 407")])
def test_implausible_teacher_labels_skip_the_base(tmp_path, stress, fc, match):
    teacher, folder, record = _fake_base(tmp_path, stress, fc)
    out = teacher._skip_implausible(folder, record)
    assert match in out["skipped"] and "variants" not in out
    assert not (folder / "eq").exists() and not (folder / "efs-0").exists()
