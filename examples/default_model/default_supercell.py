"""Does the model card's accuracy hold at the supercells ``fcnet phonons`` uses?

ship.py compares the model with its teacher on the teacher's own small
supercells (plane spacings ≥ 6 Å, 33 atoms on average). ``fcnet phonons``
builds larger ones (every lattice vector ≥ 10 Å). This script takes the
held-out common compounds, builds the default supercell of each teacher-relaxed
cell, computes the teacher's force constants there by phonopy's finite
displacements and the model's analytically, and reports the frequency MAE on
an 8×8×8 mesh beside the one on the teacher's small supercell, and lists the
bases where the model has imaginary modes (below −0.1 THz) at the default
supercell and the teacher there has none.

    python examples/default_model/default_supercell.py [--model PATH] [--max-cost 3000]

Writes docs/default_model/default_supercell.json (or --out). Needs the teacher
(``pip install ase_fcnet[teacher]``). Bases whose finite-displacement cost
(displacements × supercell atoms) exceeds --max-cost are skipped and listed.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from ase_fcnet import FCNetCalculator
from ase_fcnet.data import unpacked_once
from ase_fcnet.phonons.adapter import phonopy_from_atoms, phonopy_to_atoms, resolve_supercell_matrix
from ase_fcnet.training.evaluate import SPURIOUS_IMAGINARY_THZ, mesh_mae, reference_phonopy

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = unpacked_once(ROOT / "datasets" / "teacher-7net0" / "held-out.tar.xz",
                         ROOT / "runs" / "teacher-7net0" / "held-out")
MESH = (8, 8, 8)


def _mesh(phonon) -> tuple[np.ndarray, np.ndarray]:
    phonon.run_mesh(list(MESH), is_gamma_center=True)
    return np.asarray(phonon.mesh.weights, dtype=float), np.asarray(phonon.mesh.frequencies)


def _mae(ref, other) -> float:
    return mesh_mae(ref[0], ref[1], other[1])


def compare(label: str, calc, teacher, max_cost: int) -> dict:
    """Model vs teacher on the teacher's small supercell and on fcnet's default one."""
    from phonopy import Phonopy

    from ase_fcnet.phonons.adapter import atoms_to_phonopy

    yaml = HELD_OUT / label / "eq" / "phonopy_params.yaml.xz"
    ref, _ = reference_phonopy(yaml)
    unit = phonopy_to_atoms(ref.unitcell)
    matrix = resolve_supercell_matrix(unit.cell[:], None)
    probe = Phonopy(atoms_to_phonopy(unit), supercell_matrix=matrix, primitive_matrix=ref.primitive_matrix)
    probe.generate_displacements()
    cost = len(probe.supercells_with_displacements) * len(probe.supercell)
    out = {"n_small": len(ref.supercell), "n_default": len(probe.supercell), "fd_cost": cost}
    if cost > max_cost:
        return {**out, "skipped": f"finite-displacement cost {cost} > {max_cost}"}
    start = time.perf_counter()
    small = phonopy_from_atoms(unit, calc, supercell_matrix=ref.supercell_matrix,
                               primitive_matrix=ref.primitive_matrix)
    model = phonopy_from_atoms(unit, calc, supercell_matrix=matrix, primitive_matrix=ref.primitive_matrix)
    taught = phonopy_from_atoms(unit, teacher, supercell_matrix=matrix,
                                primitive_matrix=ref.primitive_matrix, method="fd")
    r, s, m, t = _mesh(ref), _mesh(small), _mesh(model), _mesh(taught)
    return {**out,
            "mae_small_THz": _mae(r, s), "mae_default_THz": _mae(t, m),
            "teacher_small_vs_default_THz": _mae(r, t),
            "min_model_small_THz": float(s[1].min()), "min_model_default_THz": float(m[1].min()),
            "min_teacher_default_THz": float(t[1].min()), "seconds": time.perf_counter() - start}


def main(argv=None) -> None:
    from ase_fcnet.generation.teacher import sevennet_calculator
    from ase_fcnet.generation.universal import common_structures

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model file or bundled name")
    parser.add_argument("--max-cost", type=int, default=3000,
                        help="largest displacements × supercell atoms for the teacher")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "default_model" / "default_supercell.json")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    common = {label for label, _ in common_structures()}
    labels = sorted(p.name for p in HELD_OUT.iterdir() if p.name in common
                    and json.loads((p / "eq" / "labels.json").read_text())["force_constants"])
    calc, teacher = FCNetCalculator(model=args.model, device="cpu"), sevennet_calculator()
    rows = {}
    for k, label in enumerate(labels, 1):
        rows[label] = compare(label, calc, teacher, args.max_cost)
        shown = {key: round(v, 2) if isinstance(v, float) else v for key, v in rows[label].items()}
        print(f"[{k}/{len(labels)}] {label}: {shown}", flush=True)
    done = [r for r in rows.values() if "skipped" not in r]
    summary = {key: float(np.mean([r[key] for r in done]))
               for key in ("mae_small_THz", "mae_default_THz", "teacher_small_vs_default_THz")}
    spurious = sorted(label for label, r in rows.items() if "skipped" not in r
                      and r["min_model_default_THz"] < -SPURIOUS_IMAGINARY_THZ
                      and r["min_teacher_default_THz"] >= -SPURIOUS_IMAGINARY_THZ)
    summary.update(n_compared=len(done), n_skipped=len(rows) - len(done),
                   spurious_imaginary_default=spurious,
                   median_mae_small_THz=float(np.median([r["mae_small_THz"] for r in done])),
                   median_mae_default_THz=float(np.median([r["mae_default_THz"] for r in done])))
    result = {"model": str(args.model), "mesh": list(MESH), "max_cost": args.max_cost,
              "command": "python examples/default_model/default_supercell.py", "summary": summary,
              "per_base": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
