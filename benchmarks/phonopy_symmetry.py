"""Benchmark: phonopy's own symmetry work, stock vs ``fast_phonopy_symmetry``.

For each crystal and supercell of ``force_constants.py``, times (minimum over
``--repeats``) the phonopy steps that every force-constant route shares and
that do not depend on the calculator:

- ``Phonopy(...)``: supercell, primitive cell, space group of both and the
  atom permutation of every operation;
- ``generate_displacements`` (phonopy's minimal set, no ± pairs);
- ``produce_force_constants`` from random forces on those displacements
  (symmetrisation and distribution over the supercell).

Each is run with phonopy as installed and inside
:func:`ase_fcnet.phonons.symmetry.fast_phonopy_symmetry`; the script checks
that the permutations and force constants come out identical. Writes
``docs/benchmarks/phonopy_symmetry.json`` and prints a markdown table.

    python benchmarks/phonopy_symmetry.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from force_constants import crystals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "phonopy_symmetry.json"
STEPS = ("Phonopy(...)", "generate_displacements", "produce_force_constants")


def run_once(atoms, matrix, fast: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    """Seconds of each step, the supercell permutations and the force constants."""
    from contextlib import nullcontext

    from phonopy import Phonopy

    from ase_fcnet.phonons.adapter import atoms_to_phonopy
    from ase_fcnet.phonons.symmetry import fast_phonopy_symmetry

    times = {}
    with fast_phonopy_symmetry() if fast else nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        phonon = Phonopy(atoms_to_phonopy(atoms), supercell_matrix=matrix, primitive_matrix="auto")
        times[STEPS[0]] = time.perf_counter() - start
        start = time.perf_counter()
        phonon.generate_displacements(distance=0.01, is_plusminus=False)
        times[STEPS[1]] = time.perf_counter() - start
        n = len(phonon.supercell)
        phonon.forces = np.random.default_rng(0).standard_normal((len(phonon.displacements), n, 3))
        start = time.perf_counter()
        phonon.produce_force_constants(calculate_full_force_constants=False,
                                       fc_calculator="traditional")
        times[STEPS[2]] = time.perf_counter() - start
    return times, phonon.symmetry.atomic_permutations, phonon.force_constants


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    print("| crystal | atoms | operations | stock: Phonopy / displacements / FC (s) "
          "| fast: Phonopy / displacements / FC (s) | speed-up of the three | identical |")
    print("|---|---|---|---|---|---|---|")
    for name, (atoms, sizes) in crystals().items():
        for size in sizes:
            matrix = np.diag(size)
            best = {}
            results = {}
            for _ in range(args.repeats):
                for fast in (False, True):
                    times, perms, fc = run_once(atoms, matrix, fast)
                    results[fast] = (perms, fc)
                    best[fast] = {k: min(v, best.get(fast, {}).get(k, np.inf))
                                  for k, v in times.items()}
            same = bool(np.array_equal(results[False][0], results[True][0])
                        and np.array_equal(results[False][1], results[True][1]))
            row = {"crystal": name, "supercell": list(size), "n_atoms": int(results[True][0].shape[1]),
                   "n_operations": int(results[True][0].shape[0]), "stock_s": best[False],
                   "fast_s": best[True], "identical": same}
            rows.append(row)
            total = {k: sum(best[k].values()) for k in (False, True)}
            fmt = " / ".join
            print(f"| {name} | {row['n_atoms']} | {row['n_operations']} "
                  f"| {fmt(f'{best[False][s]:.3f}' for s in STEPS)} "
                  f"| {fmt(f'{best[True][s]:.3f}' for s in STEPS)} "
                  f"| {total[False] / total[True]:.1f}× | {'yes' if same else 'NO'} |", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": "python benchmarks/phonopy_symmetry.py",
                               "repeats": args.repeats, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
