"""Shared fixtures: a tiny seeded FCNet and small rattled structures.

The model is untrained, so its energy variation is tiny; ``ENERGY_SCALE``
multiplies the learned per-atom energy (and the reference energies are set
non-zero) so that forces are O(0.1-1) eV/Å and Hessians O(1-10) eV/Å², and
finite-difference / symmetry checks are not passed trivially by zeros.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import ModelConfig, build_model, energy_forces_stress, hessian

SPECIES = ("Si", "C")
CUTOFF = 3.5
ENERGY_SCALE = 1000.0
REFERENCE_ENERGIES = (-4.5, -7.25)
TINY = {
    "species": SPECIES, "cutoff": CUTOFF, "num_layers": 2, "l_max": 2, "scalar_channels": 8,
    "tensor_channels": 4, "num_radial": 6, "radial_hidden": 16, "num_heads": 2,
    "readout_hidden": 16,
}


def pytest_configure(config):
    # The suite runs many tiny autograd graphs: extra intra-op threads only add
    # contention (measured on a busy 2-core machine: 34 s with 1 thread, 7 min
    # with 2). ASE_FCNET_TEST_THREADS overrides.
    torch.set_num_threads(int(os.environ.get("ASE_FCNET_TEST_THREADS", "1")))


def make_model(dtype=torch.float64, device=None, seed=0, **overrides):
    """A tiny seeded model with a non-trivial energy scale."""
    model = build_model(ModelConfig(**{**TINY, **overrides}), dtype=dtype, device=device, seed=seed)
    with torch.no_grad():
        model.energy_scale.fill_(ENERGY_SCALE)
        model.reference_energies.copy_(torch.tensor(REFERENCE_ENERGIES[: len(model.species)]))
    return model


@pytest.fixture(scope="session")
def tiny_config() -> ModelConfig:
    return ModelConfig(**TINY)


@pytest.fixture(scope="session")
def _session_model():
    return make_model()


@pytest.fixture
def model(_session_model):
    """A fresh copy per test (the calculator moves/freezes the model it is given)."""
    return copy.deepcopy(_session_model)


def rattled(atoms: Atoms, stdev: float = 0.05, seed: int = 1) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


@pytest.fixture
def sic_cubic() -> Atoms:
    """8-atom cubic zincblende SiC, rattled."""
    return rattled(bulk("SiC", "zincblende", a=4.36, cubic=True))


@pytest.fixture
def sic_prim() -> Atoms:
    """2-atom primitive (non-orthogonal, |a| = 3.08 Å < cutoff) SiC with a sheared cell."""
    atoms = bulk("SiC", "zincblende", a=4.36)
    atoms.set_cell(atoms.cell.array + [[0.0, 0.1, 0.0], [0.05, 0.0, 0.0], [0.0, 0.0, 0.15]],
                   scale_atoms=True)
    return rattled(atoms, seed=2)


@pytest.fixture
def molecule_sic() -> Atoms:
    """Non-periodic 4-atom cluster (no cell), away from the origin."""
    pos = np.array([[0.0, 0.0, 0.0], [1.85, 0.1, 0.0], [-0.4, 1.8, 0.2], [0.3, -0.5, 1.75]])
    return Atoms("SiC2Si", positions=pos + [12.0, -3.0, 40.0])


def model_graph(model, atoms, dtype=None):
    """Graph of ``atoms`` on the model's device, in the model's (or the given) dtype."""
    param = next(model.parameters())
    return atoms_to_graph(atoms, model.cutoff, model.species, dtype=dtype or param.dtype,
                          device=param.device)


def evaluate(model, atoms, stress=None, dtype=None):
    """Energy (float), forces (N, 3) and, for periodic cells, stress (6,) as numpy."""
    if stress is None:
        stress = bool(atoms.pbc.all())
    out = energy_forces_stress(model, model_graph(model, atoms, dtype), forces=True, stress=stress)
    res = {"energy": float(out["energy"].detach().sum()), "forces": out["forces"].detach().cpu().numpy()}
    if stress:
        res["stress"] = out["stress"][0].detach().cpu().numpy()
    return res


def energy(model, atoms) -> float:
    with torch.no_grad():
        return float(model.energy(model_graph(model, atoms)).sum())


def model_hessian(model, atoms) -> np.ndarray:
    """(3N, 3N) Hessian, eV/Å²."""
    return hessian(model, model_graph(model, atoms)).cpu().numpy()


def displaced(atoms: Atoms, index: int, axis: int, step: float) -> Atoms:
    out = atoms.copy()
    out.positions[index, axis] += step
    return out


def fd_forces(model, atoms, h=1e-4) -> np.ndarray:
    """−(central differences of the energy), (N, 3)."""
    out = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            out[i, a] = -(energy(model, displaced(atoms, i, a, h))
                          - energy(model, displaced(atoms, i, a, -h))) / (2 * h)
    return out


def fd_hessian(model, atoms, h=1e-4) -> np.ndarray:
    """Central differences of the AD forces: H[3i+a, :] = −(F(+h) − F(−h)) / 2h."""
    n = len(atoms)
    out = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for a in range(3):
            fp = evaluate(model, displaced(atoms, i, a, h), stress=False)["forces"]
            fm = evaluate(model, displaced(atoms, i, a, -h), stress=False)["forces"]
            out[3 * i + a] = -(fp - fm).ravel() / (2 * h)
    return out


def rel_err(a, b) -> float:
    """max |a − b| / max |b|."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


class Helpers:
    """Helper functions handed to tests through the ``helpers`` fixture."""

    make_model = staticmethod(make_model)
    rattled = staticmethod(rattled)
    model_graph = staticmethod(model_graph)
    evaluate = staticmethod(evaluate)
    energy = staticmethod(energy)
    model_hessian = staticmethod(model_hessian)
    displaced = staticmethod(displaced)
    fd_forces = staticmethod(fd_forces)
    fd_hessian = staticmethod(fd_hessian)
    rel_err = staticmethod(rel_err)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers


_METRICS: dict[str, float] = {}


@pytest.fixture(scope="session")
def record_max():
    """record_max(name, value): keep the largest value of a measured error for the summary."""

    def record(name: str, value: float) -> float:
        _METRICS[name] = max(float(value), _METRICS.get(name, 0.0))
        return float(value)

    return record


def pytest_terminal_summary(terminalreporter):
    if _METRICS:
        terminalreporter.section("measured maxima (ase_fcnet physics checks)")
        for name in sorted(_METRICS):
            terminalreporter.write_line(f"{name:<60s} {_METRICS[name]:.3e}")


@pytest.fixture
def default_dtype_guard():
    """The library must never change torch's global default dtype."""
    before = torch.get_default_dtype()
    yield
    assert torch.get_default_dtype() == before, "torch's global default dtype was changed"


#: Rock-salt NaCl CIF (a = 5.64 Å) with the Na site(s) left to fill: ``{sites}`` holds
#: CIF atom-site rows (label, type, x, y, z, occupancy) for disordered-site tests.
ROCKSALT_SITES_CIF = """data_x
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
{sites}
Cl1 Cl 0.5 0.5 0.5 1.0
"""


@pytest.fixture()
def write_rocksalt_cif():
    """``write(path, sites)``: a rock-salt CIF with the given Na-site rows; returns ``path``."""
    def write(path, sites: str):
        path.write_text(ROCKSALT_SITES_CIF.format(sites=sites))
        return path
    return write
