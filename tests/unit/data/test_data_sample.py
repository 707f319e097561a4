"""Tests of ase_fcnet.data.Sample: validation and dict round trip."""

import numpy as np
import pytest
from ase.build import bulk

from ase_fcnet.data import Sample


def _atoms():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.01, seed=3)
    return atoms


def _full_sample():
    atoms = _atoms()
    n = len(atoms)
    rng = np.random.default_rng(7)
    return Sample(
        atoms=atoms,
        energy=-27.5,
        forces=rng.normal(size=(n, 3)),
        stress=rng.normal(size=6) * 1e-3,
        fc_atoms=np.array([0, 4]),
        force_constants=rng.normal(size=(2, n, 3, 3)),
        source="test.yaml#3",
        weight=0.5,
    )


def test_n_atoms_and_dtypes():
    s = _full_sample()
    assert s.n_atoms == 8
    assert s.fc_atoms.dtype == np.int64
    assert s.forces.dtype == np.float64
    assert s.force_constants.shape == (2, 8, 3, 3)


def test_dict_round_trip_is_exact():
    s = _full_sample()
    s.atoms.set_masses(np.linspace(20.0, 40.0, 8))
    d = s.to_dict()
    assert isinstance(d["energy"], float) and isinstance(d["source"], str)
    t = Sample.from_dict(d)
    assert t.energy == s.energy and t.source == s.source and t.weight == s.weight
    for key in ("forces", "stress", "fc_atoms", "force_constants"):
        np.testing.assert_array_equal(getattr(t, key), getattr(s, key))
    np.testing.assert_array_equal(t.atoms.positions, s.atoms.positions)
    np.testing.assert_array_equal(t.atoms.cell[:], s.atoms.cell[:])
    np.testing.assert_array_equal(t.atoms.numbers, s.atoms.numbers)
    np.testing.assert_array_equal(t.atoms.get_masses(), np.linspace(20.0, 40.0, 8))
    d["forces"][0, 0] += 1.0
    assert t.forces[0, 0] != d["forces"][0, 0]


def test_dict_round_trip_without_labels():
    s = Sample(atoms=_atoms(), source="bare")
    t = Sample.from_dict(s.to_dict())
    assert t.energy is None and t.forces is None and t.stress is None
    assert t.fc_atoms is None and t.force_constants is None


def test_stress_3x3_is_converted_to_voigt():
    full = np.array([[1.0, 6.0, 5.0], [6.0, 2.0, 4.0], [5.0, 4.0, 3.0]])
    s = Sample(atoms=_atoms(), stress=full, source="s")
    np.testing.assert_array_equal(s.stress, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"forces": np.zeros((7, 3))}, "forces has shape (7, 3), expected (8, 3)"),
        ({"forces": np.full((8, 3), np.nan)}, "forces has 24 non-finite"),
        ({"energy": float("inf")}, "energy is not finite"),
        ({"stress": np.zeros(5)}, "stress has shape (5,)"),
        ({"fc_atoms": np.array([0])}, "must be given together"),
        (
            {"fc_atoms": np.array([0, 8]), "force_constants": np.zeros((2, 8, 3, 3))},
            "fc_atoms must lie in [0, 8)",
        ),
        ({"fc_atoms": np.array([1, 1]), "force_constants": np.zeros((2, 8, 3, 3))}, "repeated"),
        (
            {"fc_atoms": np.array([0.0]), "force_constants": np.zeros((1, 8, 3, 3))},
            "must be integers",
        ),
        (
            {"fc_atoms": np.array([0]), "force_constants": np.zeros((2, 8, 3, 3))},
            "expected (1, 8, 3, 3)",
        ),
        ({"weight": -1.0}, "weight must be finite and >= 0"),
    ],
)
def test_invalid_labels_raise_with_source(kwargs, problem):
    with pytest.raises(ValueError) as info:
        Sample(atoms=_atoms(), source="bad_file.yaml#2", **kwargs)
    message = str(info.value)
    assert message.startswith("bad_file.yaml#2: ")
    assert problem in message


def test_non_periodic_atoms_rejected():
    atoms = _atoms()
    atoms.pbc = (True, True, False)
    with pytest.raises(ValueError, match="where: atoms must be periodic"):
        Sample(atoms=atoms, source="where")


def test_from_dict_missing_structure():
    with pytest.raises(ValueError, match="x.npz: sample dict lacks positions"):
        Sample.from_dict({"numbers": [11], "cell": np.eye(3), "source": "x.npz"})
