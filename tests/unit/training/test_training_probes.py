"""Force-constant probes: H·v of the probes equals their targets for an exact Hessian."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_fcnet.phonopy_bridge import rows_to_force_constants
from ase_fcnet.training.probes import sample_probes, stack_probes


def _hessian(n: int, seed: int = 0) -> np.ndarray:
    """A random symmetric Hessian as force constants, shape (n, n, 3, 3)."""
    a = np.random.default_rng(seed).standard_normal((3 * n, 3 * n))
    h = a + a.T
    return h.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)


def _hv(fc_full: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    n = fc_full.shape[0]
    h = fc_full.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
    return (vectors.reshape(len(vectors), -1) @ h.T).reshape(vectors.shape)


@pytest.mark.parametrize("mode,n_probes,expected_k,expected_count", [
    ("block", 2, 6, 2), ("block", 5, 9, 3), ("row", 4, 4, 4), ("random", 3, 3, 3),
])
def test_targets_are_exact_hessian_products(mode, n_probes, expected_k, expected_count):
    full = _hessian(5)
    fc_atoms = np.array([4, 0, 2])                    # labelled rows only for 3 of 5 atoms
    vectors, targets, count = sample_probes(fc_atoms, full[fc_atoms], mode, n_probes,
                                            np.random.default_rng(1))
    assert vectors.shape == targets.shape == (expected_k, 5, 3)
    assert count == expected_count
    np.testing.assert_allclose(np.linalg.norm(vectors.reshape(expected_k, -1), axis=1), 1.0)
    assert np.all(vectors[:, [1, 3]] == 0)            # only labelled atoms are probed
    np.testing.assert_allclose(targets, _hv(full, vectors), atol=1e-12)


def test_block_probes_give_whole_blocks():
    full = _hessian(3)
    fc_atoms = np.array([1])
    vectors, targets, _ = sample_probes(fc_atoms, full[fc_atoms], "block", 1,
                                        np.random.default_rng(0))
    np.testing.assert_array_equal(rows_to_force_constants(targets), full[[1]])
    torch_blocks = rows_to_force_constants(torch.from_numpy(targets))
    np.testing.assert_array_equal(torch_blocks.numpy(), full[[1]])


def test_probes_depend_only_on_the_generator():
    full = _hessian(4)
    a = sample_probes(np.arange(4), full, "row", 3, np.random.default_rng([5, 1, 2]))
    b = sample_probes(np.arange(4), full, "row", 3, np.random.default_rng([5, 1, 2]))
    np.testing.assert_array_equal(a[0], b[0])


def test_stack_probes_places_structures_and_pads():
    p0 = (np.ones((3, 2, 3)), 2 * np.ones((3, 2, 3)), 1)
    p2 = (np.ones((1, 1, 3)), 3 * np.ones((1, 1, 3)), 1)
    vectors, targets, counts, rows = stack_probes([p0, None, p2], [2, 2, 1])
    assert vectors.shape == (3, 5, 3)
    np.testing.assert_array_equal(counts, [1, 0, 1])
    np.testing.assert_array_equal(rows, [3, 0, 1])
    assert np.all(vectors[:, 2:4] == 0) and np.all(targets[1:, 4] == 0)
    assert np.all(targets[0, 4] == 3) and np.all(targets[:, :2] == 2)
