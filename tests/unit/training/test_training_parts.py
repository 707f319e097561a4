"""Training building blocks: combined forward pass, schedule, EMA, statistics, split, logs."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from ase_fcnet.data.sample import Sample
from ase_fcnet.graph import atoms_to_graph, batch_graphs
from ase_fcnet.model import energy_forces_stress, graph_hessian_vector_products
from ase_fcnet.training import losses
from ase_fcnet.training.config import LossConfig, ScheduleConfig
from ase_fcnet.training.dataset import (
    StructureSet,
    epoch_batches,
    repeat_where,
    shard,
    source_group,
    split_indices,
)
from ase_fcnet.training.metrics_log import MetricsLog
from ase_fcnet.training.objective import batch_loss
from ase_fcnet.training.optim import EMA, WarmupCosine
from ase_fcnet.training.statistics import (
    MIN_AUTO_SCALE,
    choose_energy_scale,
    fit_reference_energies,
    fit_statistics,
)


def test_one_pass_with_probes_matches_separate_derivatives(model, sic_cubic, sic_prim, default_dtype_guard):
    graphs = [atoms_to_graph(a, model.cutoff, model.species) for a in (sic_cubic, sic_prim)]
    graph = batch_graphs(graphs)
    vectors = torch.tensor(np.random.default_rng(0).standard_normal((2, graph.n_atoms, 3)))
    out = energy_forces_stress(model, graph, forces=True, stress=True, vectors=vectors,
                               create_graph=False)
    ref = energy_forces_stress(model, graph, forces=True, stress=True)
    hv = graph_hessian_vector_products(model, graph, vectors)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["hvp"], hv, rtol=1e-10, atol=1e-12)


def test_probed_products_are_differentiable_in_the_weights(model, sic_prim):
    graph = atoms_to_graph(sic_prim, model.cutoff, model.species)
    vectors = torch.zeros(1, graph.n_atoms, 3, dtype=torch.float64)
    vectors[0, 0, 0] = 1.0
    out = energy_forces_stress(model, graph, vectors=vectors, create_graph=True)
    (out["hvp"] ** 2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_warmup_cosine_schedule():
    sched = WarmupCosine(1e-2, ScheduleConfig(warmup_steps=4, min_lr=1e-4), total_steps=14)
    values = [sched.value(s) for s in range(14)]
    assert values[:4] == pytest.approx([2e-3, 4e-3, 6e-3, 8e-3])
    assert values[4] == pytest.approx(1e-2)
    assert values[9] == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4))
    assert sched.value(14) == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(values[4:], values[5:]))


def test_ema_update_and_state():
    lin = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update(lin)                                   # d = min(0.5, 1/10) = 0.1
    assert ema.shadow["weight"].item() == pytest.approx(0.1 * 1.0 + 0.9 * 3.0)
    other = EMA(lin, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])


def test_reference_energy_least_squares():
    comp = np.array([[2, 0], [0, 3], [1, 1], [2, 2]])
    e_ref = np.array([-3.5, -1.25])
    baseline = np.array([0.1, -0.2, 0.05, 0.0])
    fitted = fit_reference_energies(comp, comp @ e_ref + baseline, baseline)
    np.testing.assert_allclose(fitted, e_ref, atol=1e-12)
    np.testing.assert_array_equal(fit_reference_energies(np.zeros((0, 2)), np.zeros(0)), [0, 0])


def _sample(atoms, seed, fc=True):
    rng = np.random.default_rng(seed)
    n = len(atoms)
    h = rng.standard_normal((3 * n, 3 * n))
    fcs = (h + h.T).reshape(n, 3, n, 3).transpose(0, 2, 1, 3)
    return Sample(atoms=atoms, energy=-5.0 * n, forces=rng.standard_normal((n, 3)),
                  fc_atoms=np.arange(n) if fc else None, force_constants=fcs if fc else None)


def test_auto_energy_scale_is_the_rms_force(model, sic_cubic, sic_prim):
    samples = [_sample(sic_cubic, 0), _sample(sic_prim, 1)]
    for sample in samples:
        sample.forces *= 3.0
    data = StructureSet(samples, model.cutoff, model.species, torch.float64, torch.device("cpu"))
    rms = np.sqrt(np.mean(np.concatenate([s.forces.ravel() for s in samples]) ** 2))
    scale, source = choose_energy_scale(data, [0, 1])
    assert scale == pytest.approx(rms, rel=1e-12) and scale > MIN_AUTO_SCALE
    assert source.startswith("RMS force")
    only_first, _ = choose_energy_scale(data, [0])          # training structures only
    assert only_first == pytest.approx(np.sqrt(np.mean(samples[0].forces ** 2)), rel=1e-12)


def test_auto_energy_scale_has_a_floor(model, sic_cubic):
    small = _sample(sic_cubic, 0)
    small.forces *= 1e-3                                     # a phonopy displacement dataset
    bare = Sample(atoms=sic_cubic.copy(), energy=-40.0)      # no forces at all
    data = StructureSet([small, bare], model.cutoff, model.species, torch.float64,
                        torch.device("cpu"))
    for indices in ([0], [1], [0, 1]):
        scale, source = choose_energy_scale(data, indices)
        assert scale == MIN_AUTO_SCALE and source.startswith("minimum")


def test_fit_statistics_ignores_the_untrained_models_flatness(model, sic_cubic, sic_prim):
    """The scale must not depend on the (almost flat) untrained model."""
    data = StructureSet([_sample(sic_cubic, 0), _sample(sic_prim, 1)], model.cutoff,
                        model.species, torch.float64, torch.device("cpu"))
    plain, flat = copy.deepcopy(model), copy.deepcopy(model)
    with torch.no_grad():
        flat.readout[-1].weight.mul_(1e-4)
    for m in (plain, flat):
        fit_statistics(m, data, [0, 1])
    assert float(flat.energy_scale) == float(plain.energy_scale) == pytest.approx(
        choose_energy_scale(data, [0, 1])[0])


def test_split_and_batches_are_seeded_and_disjoint():
    singles = [f"s{k}" for k in range(10)]
    train, val = split_indices(singles, 0.2, seed=1)
    assert len(val) == 2 and set(train) | set(val) == set(range(10)) and not set(train) & set(val)
    assert np.array_equal(split_indices(singles, 0.2, 1)[1], val)
    assert len(split_indices(singles, 0.0, 1)[1]) == 0
    b1, b2 = epoch_batches(train, 3, seed=0, epoch=0), epoch_batches(train, 3, seed=0, epoch=1)
    assert [len(b) for b in b1] == [3, 3, 2]
    assert sorted(np.concatenate(b1)) == sorted(train)
    assert not all(np.array_equal(x, y) for x, y in zip(b1, b2))
    parts = [shard(b1[0], r, 2) for r in range(2)]
    assert sorted(np.concatenate(parts)) == sorted(b1[0]) and len(shard(b1[2], 3, 4)) == 0


def test_repeat_where_lists_the_marked_indices_repeat_times():
    indices = np.array([7, 3, 5, 1])
    mask = [False, True, False, True]
    out = repeat_where(indices, mask, 3)
    assert out.tolist() == [7, 3, 5, 1, 3, 1, 3, 1]
    assert repeat_where(indices, mask, 1).tolist() == indices.tolist()
    assert repeat_where(np.array([], dtype=int), [], 4).tolist() == []
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        repeat_where(indices, mask, 0)
    with pytest.raises(ValueError, match="mask has shape"):
        repeat_where(indices, mask[:2], 2)


def test_unlabelled_structures_carry_zero_weight(model, sic_prim):
    bare = Sample(atoms=sic_prim)
    data = StructureSet([bare, _sample(sic_prim.copy(), 2)], model.cutoff, model.species,
                        torch.float64, torch.device("cpu"))
    batch = data.batch([0, 1], "block", 1, lambda i: np.random.default_rng(i))
    assert batch.weights["forces"].tolist() == [0.0, 1.0]
    assert batch.fc_counts.tolist() == [0, 1] and batch.fc_rows.tolist() == [0, 3]
    assert data.normalizers([0, 1])["force_constants"] == 1.0
    assert torch.isfinite(batch.forces).all()


def test_mass_weighted_fc_loss_weights_the_loss_but_not_the_metric(model, sic_cubic, sic_prim):
    data = StructureSet([_sample(sic_cubic, 0), _sample(sic_prim, 1)], model.cutoff,
                        model.species, torch.float64, torch.device("cpu"))
    batch = data.batch([0, 1], "block", 2, lambda i: np.random.default_rng(i))
    masses = np.concatenate([sic_cubic.get_masses(), sic_prim.get_masses()])
    assert batch.masses.tolist() == pytest.approx(masses.tolist())
    norms = data.normalizers([0, 1])
    plain = LossConfig(energy=0.0, forces=0.0, fc_frobenius=1.0)
    heavy = LossConfig(energy=0.0, forces=0.0, fc_frobenius=1.0, fc_mass_power=1.0,
                       fc_mass_reference=20.0)
    _, terms0, errors0 = batch_loss(model, batch, plain, norms, create_graph=False)
    _, terms1, errors1 = batch_loss(model, batch, heavy, norms, create_graph=False)
    torch.testing.assert_close(errors1["fc_mae"], errors0["fc_mae"])
    # by hand: every probed atom i and atom j of one structure, (H·v - Φ·v) · 20 / sqrt(m_i m_j)
    hvp = energy_forces_stress(model, batch.graph, vectors=batch.vectors, create_graph=False)["hvp"]
    diff = (hvp - batch.fc_targets).detach().numpy()
    probed = (batch.vectors ** 2).sum(-1).numpy()           # (K, N), 1 on the probed atom
    m_i = np.array([[masses[(probed[k] * (batch.graph.batch.numpy() == batch.graph.batch[j].item())
                                        ).argmax()] for j in range(len(masses))]
                    for k in range(diff.shape[0])])
    weighted = diff * (20.0 / np.sqrt(m_i * masses[None, :]))[..., None]
    for name, value in (("force_constants", weighted), ("plain", diff)):
        expected = losses.fc_rows_loss(torch.tensor(value), batch.fc_targets * 0, batch.graph.batch,
                                       batch.fc_rows, batch.weights["force_constants"],
                                       normalizer=norms["force_constants"])
        got = terms1 if name == "force_constants" else terms0
        torch.testing.assert_close(got["force_constants"], expected)
    assert not torch.allclose(terms1["fc_frobenius"], terms0["fc_frobenius"])


def test_metrics_log_writes_csv_json_png_without_pyplot(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    log = MetricsLog(tmp_path)
    log.append({"epoch": 1, "step": 2, "train_loss": 3.0, "train_forces": 1.0})
    log.append({"epoch": 2, "step": 4, "train_loss": 2.0, "train_forces": 0.5, "val_loss": 2.5})
    log.write()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,step,train_loss,train_forces,val_loss"
    assert lines[1] == "1,2,3.0,1.0,"
    assert json.loads((tmp_path / "metrics.json").read_text())[1]["val_loss"] == 2.5
    assert (tmp_path / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert dict(matplotlib.rcParams) == before


def test_structure_errors_name_the_sample(model):
    atoms = bulk("Cu", "fcc", a=3.6)
    data = StructureSet([Sample(atoms=atoms, source="cu.yaml#0")], model.cutoff, model.species,
                        torch.float64, torch.device("cpu"))
    with pytest.raises(ValueError, match="cu.yaml#0: element"):
        data.graph(0)


def test_split_keeps_snapshots_of_one_dataset_together():
    sources = [f"{name}/phonopy_params.yaml#{k}" for name in "abcde" for k in range(4)]
    groups = [source_group(s) for s in sources]
    assert groups[0] == "a/phonopy_params.yaml" and len(set(groups)) == 5
    for seed in range(5):
        train, val = split_indices(groups, 0.2, seed)
        assert len(val) == 4
        assert {groups[i] for i in train}.isdisjoint({groups[i] for i in val})


def test_frequency_summary_over_datasets():
    from ase_fcnet.training.evaluate import summarize_frequency_errors

    per = {"a": {"commensurate_mae_THz": 0.1, "commensurate_max_THz": 0.5,
                 "mesh_mae_THz": 0.2, "mesh_max_THz": 0.7},
           "b": {"commensurate_mae_THz": 0.3, "commensurate_max_THz": 1.5,
                 "mesh_mae_THz": 0.4, "mesh_max_THz": 0.9}}
    out = summarize_frequency_errors(per)
    assert out["n_datasets"] == 2
    assert out["mean_commensurate_mae_THz"] == pytest.approx(0.2)
    assert out["mean_mesh_mae_THz"] == pytest.approx(0.3)
    assert out["worst_commensurate_max_THz"] == 1.5 and out["worst_mesh_max_THz"] == 0.9
    assert summarize_frequency_errors({}) == {"n_datasets": 0}
    assert "n_spurious_imaginary" not in out


def test_spurious_imaginary_modes_are_the_models_own():
    from ase_fcnet.training.evaluate import spurious_imaginary, summarize_frequency_errors

    base = {"commensurate_mae_THz": 0.1, "commensurate_max_THz": 0.5, "mesh_mae_THz": 0.2,
            "mesh_max_THz": 0.7}
    per = {"stable": {**base, "mesh_min_THz": -1e-4, "reference_mesh_min_THz": 0.0},
           "model only": {**base, "mesh_min_THz": -0.95, "reference_mesh_min_THz": -0.02},
           "both": {**base, "mesh_min_THz": -0.5, "reference_mesh_min_THz": -0.4}}
    assert [spurious_imaginary(e) for e in per.values()] == [False, True, False]
    assert spurious_imaginary(per["both"], tolerance=0.45)
    assert summarize_frequency_errors(per)["n_spurious_imaginary"] == 1


def test_reference_phonopy_never_reads_the_current_directory(tmp_path, monkeypatch):
    """phonopy.load would take a FORCE_CONSTANTS in the working directory over the yaml's forces."""
    import phonopy
    from ase.build import bulk
    from phonopy.file_IO import write_FORCE_CONSTANTS

    from ase_fcnet.phonopy_bridge import atoms_to_phonopy
    from ase_fcnet.training.evaluate import reference_phonopy

    ph = phonopy.Phonopy(atoms_to_phonopy(bulk("Si", "diamond", a=5.43)), 2 * np.eye(3, dtype=int))
    ph.generate_displacements()
    n = len(ph.supercell)
    ph.forces = np.random.default_rng(0).normal(scale=0.01, size=(len(ph.displacements), n, 3))
    (tmp_path / "data").mkdir()
    yaml = tmp_path / "data" / "phonopy_params.yaml"
    ph.save(yaml, settings={"force_sets": True})
    clean, _ = reference_phonopy(yaml)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    write_FORCE_CONSTANTS(np.ones((n, n, 3, 3)), "FORCE_CONSTANTS")
    write_FORCE_CONSTANTS(np.ones((n, n, 3, 3)), "FORCE_SETS")
    beside_junk, _ = reference_phonopy(yaml)
    assert np.array_equal(clean.force_constants, beside_junk.force_constants)
    assert np.abs(clean.force_constants).max() < 1.0
