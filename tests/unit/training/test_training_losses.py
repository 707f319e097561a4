"""Each loss against a value computed by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_fcnet.training import losses

T = dict(dtype=torch.float64)


def t(x):
    return torch.tensor(x, **T)


def test_energy_loss_per_atom_weighted():
    # structure 0: (1.0 - 0.0)/2 = 0.5 eV/atom -> 0.25; structure 1: (2.0 - 2.6)/3 = -0.2 -> 0.04
    value = losses.energy_loss(t([1.0, 2.0]), t([0.0, 2.6]), t([2, 3]), t([1.0, 0.5]))
    assert value.item() == pytest.approx((0.25 + 0.5 * 0.04) / 1.5)


def test_energy_loss_explicit_normalizer_and_no_labels():
    value = losses.energy_loss(t([1.0]), t([0.0]), t([1]), t([1.0]), normalizer=4.0)
    assert value.item() == pytest.approx(0.25)
    assert losses.energy_loss(t([1.0]), t([0.0]), t([1]), t([0.0])).item() == 0.0


def test_forces_loss_mean_over_components_per_structure():
    pred = t([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    target = torch.zeros(3, 3, **T)
    batch = torch.tensor([0, 0, 1])
    # structure 0: (1 + 4) / 6 ; structure 1: 9 / 3 = 3
    value = losses.forces_loss(pred, target, batch, t([1.0, 1.0]))
    assert value.item() == pytest.approx((5.0 / 6.0 + 3.0) / 2.0)
    value = losses.forces_loss(pred, target, batch, t([1.0, 0.0]))
    assert value.item() == pytest.approx(5.0 / 6.0)


def test_stress_loss():
    pred = t([[0.1, 0.2, 0.0, 0.0, 0.0, 0.3]])
    target = t([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert losses.stress_loss(pred, target, t([2.0])).item() == pytest.approx(0.14 / 6.0)


def _rows_case():
    # 2 structures (atoms 0,1 | atom 2); K = 2 probes; structure 1 has one valid probe
    pred = torch.zeros(2, 3, 3, **T)
    target = torch.zeros(2, 3, 3, **T)
    pred[0, 0, 0] = 1.0          # structure 0, probe 0: error 1
    pred[1, 1, 2] = -2.0         # structure 0, probe 1: error -2
    target[0, 2, 1] = 3.0        # structure 1, probe 0: error -3
    return pred, target, torch.tensor([0, 0, 1]), torch.tensor([2, 1])


def test_fc_rows_loss_mse_and_mae():
    pred, target, batch, counts = _rows_case()
    # structure 0: 2 probes x 2 atoms x 3 = 12 entries; structure 1: 1 x 1 x 3 = 3 entries
    mse = losses.fc_rows_loss(pred, target, batch, counts, t([1.0, 1.0]), "mse")
    assert mse.item() == pytest.approx(((1 + 4) / 12 + 9 / 3) / 2)
    mae = losses.fc_rows_loss(pred, target, batch, counts, t([1.0, 3.0]), "mae")
    assert mae.item() == pytest.approx((1.0 * (1 + 2) / 12 + 3.0 * 3 / 3) / 4.0)
    with pytest.raises(ValueError, match="metric"):
        losses.fc_rows_loss(pred, target, batch, counts, t([1.0, 1.0]), "huber")


def test_fc_frobenius_loss_blocks():
    pred = torch.zeros(1, 2, 3, 3, **T)
    target = torch.zeros(1, 2, 3, 3, **T)
    pred[0, 0] = torch.diag(t([3.0, 4.0, 0.0]))        # ||.||_F = 5
    target[0, 1] = t([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # 1
    value = losses.fc_frobenius_loss(pred, target, torch.tensor([0, 0]), torch.tensor([1]),
                                     t([1.0]))
    assert value.item() == pytest.approx((5.0 + 1.0) / 2)


def test_fc_spectral_loss_sorted_eigenvalues():
    pred = t([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]])[None, None]  # λ = 1, 3, 5
    target = torch.eye(3, **T)[None, None]                                      # λ = 1, 1, 1
    value = losses.fc_spectral_loss(pred, target, torch.tensor([0]), torch.tensor([1]), t([1.0]))
    assert value.item() == pytest.approx((0.0 + 4.0 + 16.0) / 3)


def test_spectral_uses_symmetrised_block():
    antisym = t([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])[None, None]
    value = losses.fc_spectral_loss(antisym, torch.zeros_like(antisym), torch.tensor([0]),
                                    torch.tensor([1]), t([1.0]))
    assert value.item() == pytest.approx(0.0)


def test_block_losses_invariant_under_rotation():
    rng = np.random.default_rng(0)
    pred = t(rng.standard_normal((2, 3, 3, 3)))
    target = t(rng.standard_normal((2, 3, 3, 3)))
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    r = t(q)
    args = (torch.tensor([0, 0, 1]), torch.tensor([2, 2]), t([1.0, 2.0]))
    for fn in (losses.fc_frobenius_loss, losses.fc_spectral_loss):
        rotated = fn(r.T @ pred @ r, r.T @ target @ r, *args)
        assert rotated.item() == pytest.approx(fn(pred, target, *args).item(), rel=1e-12)


def test_shard_losses_sum_to_global_loss():
    """With the global normaliser, the losses of two shards add up to the batch loss."""
    rng = np.random.default_rng(1)
    pred, target = t(rng.standard_normal((4, 3))), t(rng.standard_normal((4, 3)))
    batch, w = torch.tensor([0, 0, 1, 2]), t([1.0, 0.5, 2.0])
    whole = losses.forces_loss(pred, target, batch, w)
    first = losses.forces_loss(pred[:2], target[:2], batch[:2], w[:1], normalizer=3.5)
    rest = losses.forces_loss(pred[2:], target[2:], batch[2:] - 1, w[1:], normalizer=3.5)
    assert (first + rest).item() == pytest.approx(whole.item(), rel=1e-12)


def test_losses_are_differentiable_at_zero_error():
    pred = torch.zeros(1, 2, 3, 3, **T, requires_grad=True)
    for fn in (losses.fc_frobenius_loss, losses.fc_spectral_loss):
        value = fn(pred, torch.zeros(1, 2, 3, 3, **T), torch.tensor([0, 0]), torch.tensor([1]),
                   t([1.0]))
        (grad,) = torch.autograd.grad(value, pred)
        assert torch.isfinite(grad).all()


def test_no_labels_gives_zero_and_finite_gradient_in_float32():
    pred = torch.ones(2, dtype=torch.float32, requires_grad=True)
    value = losses.energy_loss(pred, torch.zeros(2), torch.ones(2), torch.zeros(2))
    (grad,) = torch.autograd.grad(value, pred)
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros(2))


def test_mass_scale_by_hand():
    # structure 0: atoms 0 (m=1), 1 (m=16); structure 1: atom 2 (m=4)
    masses, batch = t([1.0, 16.0, 4.0]), torch.tensor([0, 0, 1])
    vectors = torch.zeros(2, 3, 3, **T)
    vectors[0, 1, 2] = 1.0                                  # probe 0: atom 1 of structure 0
    vectors[0, 2, 0] = 1.0                                  # ... and atom 2 of structure 1
    vectors[1, 0, :] = t([0.6, 0.0, 0.8])                   # probe 1: atom 0; none in structure 1
    scale = losses.mass_scale(vectors, masses, batch, 2, power=1.0, reference=8.0)
    assert scale.shape == (2, 3, 1)
    # (M^2 / (m_i m_j))^(1/2) = M / sqrt(m_i m_j)
    expected = [[8 / 4, 8 / 16, 8 / 4], [8 / 1, 8 / 4, 1.0]]
    np.testing.assert_allclose(scale[..., 0].numpy(), expected, rtol=1e-14)
    half = losses.mass_scale(vectors, masses, batch, 2, power=0.5, reference=8.0)
    assert half[0, 0, 0].item() == pytest.approx(2.0 ** 0.5)
    assert half[1, 2, 0].item() == 1.0
    # a random probe's mass is the |v|^2-weighted mean of its atoms' masses
    mixed = torch.zeros(1, 3, 3, **T)
    mixed[0, 0, 0], mixed[0, 1, 1] = 0.6, 0.8               # 0.36 * 1 + 0.64 * 16 = 10.6
    value = losses.mass_scale(mixed, masses, batch, 2, power=2.0, reference=1.0)
    assert value[0, 1, 0].item() == pytest.approx(1.0 / (10.6 * 16.0))


def test_every_loss_term_has_a_weight_key_and_a_known_label():
    from dataclasses import fields

    from ase_fcnet.training.config import LossConfig
    from ase_fcnet.training.objective import TERMS
    from ase_fcnet.training.terms import LOSS_TERMS, needs_probes

    weight_keys = {f.name for f in fields(LossConfig)}
    assert TERMS == tuple(t.name for t in LOSS_TERMS)
    for term in LOSS_TERMS:
        assert term.name in weight_keys
        assert term.label in ("energy", "forces", "stress", "force_constants")
        assert term.output in ("energy", "forces", "stress", "hvp")
    assert needs_probes(LossConfig())
    assert not needs_probes(LossConfig(force_constants=0.0))
    assert needs_probes(LossConfig(force_constants=0.0, fc_spectral=1.0))
