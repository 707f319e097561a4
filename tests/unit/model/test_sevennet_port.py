"""The converted SevenNet models against sevenn's own implementation on the same weights.

Energies, forces and stress agree to ≤ 1e-8 relative in float64 on triclinic
cells, cells small enough to see several periodic images of each atom, many
elements at once, and pairs just inside and just outside the cutoff (and at
the XPLOR switch's inner radius); in float32 (sevenn's shipped precision) to
≤ 1e-5 on the dense cells. Where forces or stress are small (the near-cutoff
and one-atom cells) float32 rounding alone moves sevenn's own result up to
4e-5 from the exact (float64) one, so there the test asks that ours in
float32 is as close to the exact result as sevenn's (within 2× + 1e-5).
Relative errors of forces and stress are taken against the largest component.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

pytest.importorskip("sevenn")
from sevenn_reference import evaluate_float64, float32_calculator, float64_model  # noqa: E402

from ase_fcnet import FCNetCalculator  # noqa: E402
from ase_fcnet.model.sevennet import convert_sevennet  # noqa: E402

#: (our name, sevenn's name, modality)
MODELS = [("sevennet-0", "7net-0", None), ("sevennet-l3i5", "7net-l3i5", None),
          ("sevennet-mf-0", "7net-mf-0", "PBE"), ("sevennet-mf-0", "7net-mf-0", "R2SCAN")]


def _triclinic():
    rng = np.random.default_rng(1)
    cell = np.array([[4.1, 0.3, -0.2], [0.9, 4.4, 0.4], [-0.6, 1.1, 4.7]])
    frac = rng.random((6, 3))
    atoms = Atoms("NaClMgOSiFe", scaled_positions=frac, cell=cell, pbc=True)
    _spread(atoms, 1.9)
    return atoms


def _spread(atoms, d_min):
    """Move random positions apart until no pair (with images) is closer than d_min."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        d = atoms.get_all_distances(mic=True) + np.eye(len(atoms)) * 99
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] >= d_min:
            return
        atoms.positions[j] += rng.normal(0, 0.4, 3)


def _small_images():
    atoms = bulk("Cu", "fcc", a=3.62)  # one atom: 78 neighbours, all images of itself
    atoms.cell = atoms.cell @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, -0.03], [0.01, 0.0, 1.0]])
    return atoms


def _many_elements():
    symbols = ["H", "Li", "B", "C", "N", "O", "F", "Al", "S", "K", "Ti", "Zn", "Ag", "Ba", "W", "Bi"]
    rng = np.random.default_rng(3)
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(2)])[:16]
    cell = np.diag([7.2, 7.0, 5.0]) + rng.normal(0, 0.2, (3, 3))
    frac = (grid + 0.5 + rng.normal(0, 0.08, grid.shape)) / np.array([3, 3, 2])
    return Atoms(symbols, scaled_positions=frac, cell=cell, pbc=True)


def _near_cutoff():
    # 5.0 Å cutoff, 4.5 Å XPLOR inner radius: pairs at 4.9999, 5.0001 and 4.5001 Å
    positions = [[0, 0, 0], [4.9999, 0, 0], [0, 5.0001, 0], [0, 0, 4.5001], [2.5, 2.5, 2.5]]
    return Atoms("SiOCNaMg", positions=positions, cell=[11.0, 11.5, 12.0], pbc=True)


STRUCTURES = {"triclinic": _triclinic, "small_cell_images": _small_images,
              "many_elements": _many_elements, "near_cutoff": _near_cutoff}


@pytest.fixture(scope="module")
def converted():
    cache = {}

    def get(name, modality):
        key = (name, modality)
        if key not in cache:
            cache[key] = convert_sevennet(name, modality=modality)[0]
        return cache[key]

    return get


@pytest.fixture(scope="module")
def reference32():
    cache = {}

    def get(sevenn_name, modality):
        if (sevenn_name, modality) not in cache:
            cache[sevenn_name, modality] = float32_calculator(sevenn_name, modality)
        return cache[sevenn_name, modality]

    return get


@pytest.fixture(scope="module")
def reference64():
    cache = {}

    def get(sevenn_name):
        if sevenn_name not in cache:
            cache[sevenn_name] = float64_model(sevenn_name)
        return cache[sevenn_name]

    return get


def _ours(model, atoms, dtype):
    atoms = atoms.copy()
    atoms.calc = FCNetCalculator(model, dtype=dtype, device="cpu")
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()


def _relative(ours, ref):
    e, f, s = ours
    e0, f0, s0 = ref
    return (abs(e - e0) / abs(e0), np.abs(f - f0).max() / max(np.abs(f0).max(), 1e-3),
            np.abs(s - s0).max() / max(np.abs(s0).max(), 1e-4))


@pytest.mark.parametrize("name,sevenn_name,modality", MODELS)
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_float64_equals_sevenn(converted, reference64, name, sevenn_name, modality, structure):
    atoms = STRUCTURES[structure]()
    model, cutoff = reference64(sevenn_name)
    ref = evaluate_float64(model, cutoff, atoms, modality)
    errors = _relative(_ours(converted(name, modality), atoms, "float64"), ref)
    assert max(errors) <= 1e-8, errors


def _sevenn32(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()


@pytest.mark.parametrize("name,sevenn_name,modality", MODELS)
@pytest.mark.parametrize("structure", ["triclinic", "many_elements"])
def test_float32_equals_sevenn_calculator(converted, reference32, name, sevenn_name, modality,
                                         structure):
    atoms = STRUCTURES[structure]()
    ref = _sevenn32(reference32(sevenn_name, modality), atoms)
    errors = _relative(_ours(converted(name, modality), atoms, "float32"), ref)
    assert max(errors) <= 1e-5, errors


@pytest.mark.parametrize("name,sevenn_name,modality", MODELS[:2])
@pytest.mark.parametrize("structure", ["near_cutoff", "small_cell_images"])
def test_float32_as_exact_as_sevenn(converted, reference32, reference64, name, sevenn_name,
                                    modality, structure):
    atoms = STRUCTURES[structure]()
    model, cutoff = reference64(sevenn_name)
    exact = evaluate_float64(model, cutoff, atoms, modality)
    theirs = _relative(_sevenn32(reference32(sevenn_name, modality), atoms), exact)
    ours = _relative(_ours(converted(name, modality), atoms, "float32"), exact)
    for o, t in zip(ours, theirs):
        assert o <= 2 * t + 1e-5, (ours, theirs)


def test_converted_model_refuses_unknown_element(converted):
    from ase_fcnet.graph import StructureError

    atoms = Atoms("Og", positions=[[0, 0, 0]], cell=[6, 6, 6], pbc=True)
    atoms.calc = FCNetCalculator(converted("sevennet-0", None), device="cpu")
    with pytest.raises(StructureError, match="Og"):
        atoms.get_potential_energy()


def test_conversion_is_float32_exact(converted):
    """The stored weights are sevenn's float32 numbers: nothing lost when saved as float32."""
    model = converted("sevennet-0", None)
    for name, p in model.named_parameters():
        assert torch.equal(p, p.float().double()), name
