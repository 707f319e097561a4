"""Benchmark: training throughput (structures/s) with and without the force-constant loss.

Times :meth:`ase_fcnet.training.Trainer.train_step` (collate, forward, all
derivatives, backward, AdamW, EMA) on EMT copper supercells, after warm-up
steps, for a small model; the cases are timed in interleaved rounds and the
median is reported. Validation, checkpoints and logs are not timed.
Labels: EMT energies and forces, and the Hessian rows of atoms 0 and 1
(central differences), as a compact phonopy force-constant file provides them.

    python benchmarks/training_throughput.py                 # CPU, all threads
    python benchmarks/training_throughput.py --threads 1 --steps 20
    python benchmarks/training_throughput.py --device cuda --json out.json

The process takes the allocator setting of the ``fcnet`` command (``fcnet
train`` included) first; ``FCNET_MALLOC_TUNING=0`` measures glibc's default.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np
import torch

SMALL_MODEL = dict(species=["Cu"], cutoff=4.5, num_layers=2, l_max=1, scalar_channels=16,
                   tensor_channels=4, num_radial=6, radial_hidden=16, num_heads=2,
                   readout_hidden=16)

#: Atoms whose Hessian rows are labelled (as the p2s atoms of a compact phonopy file).
FC_ATOMS = (0, 1)

#: (name, loss section) of the timed cases.
CASES = [
    ("energy+forces", {"force_constants": 0.0}),
    ("energy+forces+FC block x1 (3 HVP/structure)", {"fc_probe_mode": "block", "fc_probes": 1}),
    ("energy+forces+FC row x1 (1 HVP/structure)", {"fc_probe_mode": "row", "fc_probes": 1}),
    ("energy+forces+FC block x2 (6 HVP/structure)", {"fc_probe_mode": "block", "fc_probes": 2}),
]


def make_samples(n: int, repeat: int, seed: int = 0):
    """EMT Cu supercells (cubic cell × repeat³), strained and rattled, with labels."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from ase_fcnet.data.sample import Sample

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + 0.01 * rng.standard_normal()),
                     cubic=True).repeat(repeat)
        atoms.positions += 0.04 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        rows = np.zeros((len(FC_ATOMS), 3, len(atoms), 3))
        for m, i in enumerate(FC_ATOMS):
            for a in range(3):
                f = []
                for sign in (1.0, -1.0):
                    work = atoms.copy()
                    work.positions[i, a] += sign * 1e-3
                    work.calc = EMT()
                    f.append(work.get_forces())
                rows[m, a] = -(f[0] - f[1]) / 2e-3
        out.append(Sample(atoms=atoms.copy(), energy=energy, forces=forces,
                          fc_atoms=np.array(FC_ATOMS), force_constants=rows.transpose(0, 2, 1, 3),
                          source=f"emt-cu#{k}"))
    return out


def time_case(samples, loss: dict, batch_size: int, steps: int, warmup: int, device: str,
              dtype: str) -> dict:
    from ase_fcnet.training import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig.from_dict({
            "model": SMALL_MODEL, "data": {"validation_fraction": 0.0},
            "loss": {"energy": 1.0, "forces": 1.0, **loss},
            "training": {"batch_size": batch_size, "output_dir": out, "progress": False,
                         "device": device, "dtype": dtype},
        })
        trainer = Trainer(cfg, samples)
        order = np.arange(len(samples))
        batches = [np.roll(order, -k * batch_size)[:batch_size] for k in range(warmup + steps)]
        for b in batches[:warmup]:
            trainer.train_step(b)
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for b in batches[warmup:]:
            trainer.train_step(b)
        sync()
        elapsed = time.perf_counter() - start
    n = sum(len(b) for b in batches[warmup:])
    return {"structures_per_s": n / elapsed, "s_per_step": elapsed / steps, "steps": steps}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeat", type=int, default=2, help="cubic Cu cell repeats (4·r³ atoms)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed rounds over all cases (interleaved); the median is reported")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from ase_fcnet.allocator import tune_glibc_malloc

    tuned = tune_glibc_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)
    samples = make_samples(max(args.batch_size, 8), args.repeat)
    info = {"device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
            "atoms_per_structure": len(samples[0].atoms), "batch_size": args.batch_size,
            "model": SMALL_MODEL, "torch": torch.__version__, "cpu": platform.processor()
            or platform.machine(), "allocator": "fcnet's setting" if tuned else "glibc default"}
    print(" ".join(f"{k}={v}" for k, v in info.items() if k != "model"))
    rounds = {name: [] for name, _ in CASES}
    for _ in range(args.repeats):
        for name, loss in CASES:
            rounds[name].append(time_case(samples, loss, args.batch_size, args.steps,
                                          args.warmup, args.device, args.dtype))
    results = []
    for name, runs in rounds.items():
        rates = sorted(r["structures_per_s"] for r in runs)
        median = float(np.median(rates))
        results.append({"case": name, "structures_per_s": median, "s_per_step":
                        args.batch_size / median, "all_rounds": rates})
        print(f"{name:<48s} {median:8.2f} structures/s ({args.batch_size / median:.3f} s/step; "
              f"rounds {', '.join(f'{x:.2f}' for x in rates)})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
