"""Benchmark: building the model with and without e3nn's einsum-path optimisation.

``ase_fcnet.model.build_model`` builds e3nn modules inside
``ase_fcnet.nn._e3nn.plain_einsums`` (no ``opt_einsum_fx`` contraction-order
search). This script measures what that changes for the bundled default model,
each variant in fresh processes (min over ``--repeats``):

* ``load_s``: ``load_model`` of the bundled default model;
* ``hvp_s``: two exact Hessian-vector products on 216-atom NaCl (after a warm-up);
* ``train_step_s``: energy + forces + 3 Hessian-vector probes with
  ``create_graph`` on four rattled 64-atom NaCl cells, then the weight gradient.

    python benchmarks/einsum_paths.py [--repeats 3] [--threads 2] [--json PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path


def _best(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def child(mode: str, threads: int) -> dict:
    """Measurements of one variant in this process."""
    warnings.simplefilter("ignore")
    import numpy as np
    import torch
    from ase.build import bulk

    import ase_fcnet.model.config as model_config
    from ase_fcnet import FCNetCalculator
    from ase_fcnet.graph import atoms_to_graph, batch_graphs
    from ase_fcnet.model import load_model
    from ase_fcnet.pretrained import default_model_path
    from ase_fcnet.model.derivatives import energy_forces_stress

    torch.set_num_threads(threads)
    if mode == "optimized":
        model_config.plain_einsums = contextlib.nullcontext
    start = time.perf_counter()
    model = load_model(default_model_path())
    load_s = time.perf_counter() - start

    rng = np.random.default_rng(0)
    big = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)
    calc = FCNetCalculator(model=model)
    vectors = rng.standard_normal((2, len(big), 3))
    calc.hessian_vector_products(big, vectors)
    hvp_s = _best(lambda: calc.hessian_vector_products(big, vectors), 3)

    cells = []
    for _ in range(4):
        atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        cells.append(atoms_to_graph(atoms, model.cutoff, model.species))
    graph = batch_graphs(cells)
    probes = torch.tensor(rng.standard_normal((3, graph.n_atoms, 3)))

    def step():
        out = energy_forces_stress(model, graph, forces=True, vectors=probes, create_graph=True)
        (out["energy"].sum() + out["forces"].pow(2).sum() + out["hvp"].pow(2).sum()).backward()

    step()
    return {"mode": mode, "load_s": load_s, "hvp_s": hvp_s, "train_step_s": _best(step, 3)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per variant (min is kept)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", choices=("plain", "optimized"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.threads)))
        return
    runs: dict[str, list[dict]] = {"plain": [], "optimized": []}
    for k in range(args.repeats):
        for mode in runs:  # interleaved, so that machine load hits both alike
            cmd = [sys.executable, __file__, "--child", mode, "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {k + 1}: {runs[mode][-1]}", flush=True)
    keys = ("load_s", "hvp_s", "train_step_s")
    best = {mode: {key: min(r[key] for r in rows) for key in keys} for mode, rows in runs.items()}
    print("| einsums | load default model (s) | 2 HVPs, NaCl 216 (s) | training step, 4 × NaCl 64 (s) |")
    print("|---|---|---|---|")
    for mode, row in best.items():
        print(f"| {mode} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "repeats": args.repeats,
                                         "best": best, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
