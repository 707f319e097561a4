"""Forgetting check: how far fine-tuning moved a model on held-out crystals of other chemistries.

The structures are the held-out split of the teacher data
(``datasets/teacher-7net0/held-out``, labelled by SevenNet-0 with finite
displacements; see docs/teacher_data.md): a deterministic subset of its bases
(every ``--every``-th in sorted order), the relaxed cell ``eq`` (energy,
forces, stress, compact force constants) and one rattled, strained cell
``efs-0`` (energy, forces, stress) of each. Structures that contain an element
of the fine-tuning data (``--elements``) are reported apart from the others.

For every model the script computes energy per atom, forces, stress and the
exact Hessian rows of the labelled atoms (``fc_atoms``) and, from those
compact force constants, the phonon frequencies on an 8x8x8 mesh. It reports

* the error of each model against the teacher's labels (``errors``);
* the drift of each model from the original (``drift``): the same
  statistics with the original model's predictions as the labels. For a
  model fine-tuned from SevenNet-0 the teacher labels *are* the original's
  (up to the 0.01 Å finite differences of the force constants), so the drift
  is the forgetting, and ``--scale`` names the model whose disagreement with
  the original gives its error scale (``sevennet-l3i5``: another universal
  potential trained on overlapping DFT data).

    python examples/dft/forgetting.py --original sevennet-0 --scale sevennet-l3i5 \\
        --model si-7net0=runs/dft/si-7net0/train/model.pt --elements si-7net0=Si
    python examples/dft/forgetting.py --original sevennet-l3i5 --scale sevennet-0 \\
        --model si-l3i5=runs/dft/si-l3i5/train/model.pt --elements si-l3i5=Si

For a model fine-tuned from SevenNet-l3i5 the teacher labels are another
model's, so ``errors`` before and after are the direct check (the target:
within 10 % of before).

Predictions are cached in runs/dft/forgetting/<name>.npz (keyed by the model
file's size and modification time), so the original and scale models are
computed once. Results go to docs/dft/forgetting.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ase_fcnet.data import load_dataset, unpacked_once
from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import load_model
from ase_fcnet.model.derivatives import energy_forces_stress
from ase_fcnet.phonopy_bridge import phonopy_from_yaml, read_phonopy_yaml
from ase_fcnet.pretrained import model_file
from ase_fcnet.training.evaluate import force_constant_rows, mesh_mae

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = unpacked_once(ROOT / "datasets" / "teacher-7net0" / "held-out.tar.xz",
                         ROOT / "runs" / "teacher-7net0" / "held-out")
CACHE = ROOT / "runs" / "dft" / "forgetting"
OUT = ROOT / "docs" / "dft" / "forgetting.json"
MESH = (8, 8, 8)
QUANTITIES = ("energy", "forces", "stress", "fc", "freq")
UNITS = {"energy": "meV/atom", "forces": "eV/Å", "stress": "eV/Å³", "fc": "eV/Å²",
         "freq": "THz (8x8x8 mesh)"}


def formula_elements(base: str) -> set[str]:
    """Elements of a teacher base from its name (``rocksalt-ClNa`` -> {Cl, Na})."""
    from ase.formula import Formula

    return set(Formula(base.rsplit("-", 1)[-1]).count())


def structures(every: int, variants: list[str], include: set[str]
               ) -> list[tuple[str, object, Path]]:
    """(id, Sample, yaml) of the chosen held-out structures, in a fixed order.

    Every ``every``-th base (sorted by name), and every base whose formula
    contains an element of ``include``.
    """
    bases = sorted(p for p in HELD_OUT.iterdir() if (p / "done.json").is_file())
    chosen = [b for k, b in enumerate(bases)
              if k % every == 0 or formula_elements(b.name) & include]
    out = []
    for base in chosen:
        for variant in variants:
            folder = base / variant
            if not folder.is_dir():
                continue
            (sample,) = load_dataset([folder])
            out.append((f"{base.name}/{variant}", sample, next(folder.glob("phonopy_params.yaml*"))))
    return out


def predict(model: torch.nn.Module, sample) -> dict[str, np.ndarray]:
    """Energy per atom (eV), forces, stress and the Hessian rows of ``fc_atoms``."""
    p = next(model.parameters())
    graph = atoms_to_graph(sample.atoms, model.cutoff, model.species, dtype=p.dtype,
                           device=p.device)
    out = energy_forces_stress(model, graph, forces=True, stress=True)
    pred = {"energy": np.array([float(out["energy"][0].detach()) / len(sample.atoms)]),
            "forces": out["forces"].detach().cpu().numpy(),
            "stress": out["stress"][0].detach().cpu().numpy()}
    if sample.force_constants is not None:
        pred["fc"] = force_constant_rows(model, graph, sample.fc_atoms, len(sample.atoms))
    return pred


def labels(sample) -> dict[str, np.ndarray]:
    out = {"energy": np.array([sample.energy / len(sample.atoms)]), "forces": sample.forces,
           "stress": sample.stress}
    if sample.force_constants is not None:
        out["fc"] = sample.force_constants
    return {k: np.asarray(v) for k, v in out.items() if v is not None}


def mesh_frequencies(yaml: Path, fc: np.ndarray):
    """Mesh weights and frequencies (THz) of compact force constants on the yaml's cells."""
    phonon = phonopy_from_yaml(read_phonopy_yaml(yaml), yaml, is_symmetry=True)
    phonon.force_constants = fc
    phonon.run_mesh(list(MESH), is_gamma_center=True)
    return np.asarray(phonon.mesh.weights, dtype=float), np.asarray(phonon.mesh.frequencies)


def all_predictions(name: str, path: Path, items, threads: int) -> dict[str, dict]:
    """Predictions of one model on every structure (cached on disk, computed where missing)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = CACHE / f"{name}.npz"
    out: dict[str, dict] = {}
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if str(data["__key__"]) == key:
            for full in data.files:
                if full != "__key__":
                    sid, q = full.rsplit("|", 1)
                    out.setdefault(sid, {})[q] = data[full]
    todo = [(sid, sample, yaml) for sid, sample, yaml in items if sid not in out]
    if not todo:
        print(f"{name}: predictions from {cache.relative_to(ROOT)}", flush=True)
        return out
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(path)
    start, cpu = time.perf_counter(), time.process_time()
    for sid, sample, yaml in todo:
        pred = predict(model, sample)
        if "fc" in pred:
            pred["freq"] = mesh_frequencies(yaml, pred["fc"])[1]
        out[sid] = pred
    print(f"{name}: {len(todo)} structures in {time.perf_counter() - start:.0f} s "
          f"({time.process_time() - cpu:.0f} s CPU)", flush=True)
    flat = {f"{sid}|{q}": v for sid, pred in out.items() for q, v in pred.items()}
    np.savez(cache, __key__=np.array(key), **flat)
    return out


def statistics(pairs) -> dict[str, float]:
    """MAE per quantity over (prediction, reference, weights) tuples of all structures."""
    out = {}
    for q in QUANTITIES:
        rows = [(a[q], b[q], w) for a, b, w in pairs if q in a and q in b]
        if not rows:
            continue
        if q == "freq":
            out[q] = float(np.mean([mesh_mae(w, ref, pred) for pred, ref, w in rows]))
        else:
            flat = np.concatenate([np.ravel(pred - ref) for pred, ref, _ in rows])
            out[q] = float(np.mean(np.abs(flat)) * (1000.0 if q == "energy" else 1.0))
        out[f"n_{q}"] = len(rows)
    return out


def largest_changes(pairs_new, pairs_old, ids, top: int = 3) -> dict[str, list]:
    """The ``top`` structures that raised each quantity's error most.

    For each quantity, ``[id, share]`` pairs: how much of the change of the
    error (``statistics``' MAE, same units) each structure accounts for, largest first.
    """
    out = {}
    for q in QUANTITIES:
        rows = [(i, new, old) for i, new, old in zip(ids, pairs_new, pairs_old) if q in new[0] and q in new[1]]
        if not rows:
            continue
        if q == "freq":
            each = [(mesh_mae(n[2], n[1][q], n[0][q]) - mesh_mae(o[2], o[1][q], o[0][q])) / len(rows)
                    for _, n, o in rows]
        else:
            count = sum(np.size(n[1][q]) for _, n, _ in rows)
            scale = 1000.0 if q == "energy" else 1.0
            each = [scale * (np.abs(n[0][q] - n[1][q]).sum() - np.abs(o[0][q] - o[1][q]).sum()) / count
                    for _, n, o in rows]
        order = np.argsort(each)[::-1][:top]
        out[q] = [[rows[k][0], float(each[k])] for k in order]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--original", default="sevennet-0", help="model the fine-tuning started from")
    p.add_argument("--scale", default="sevennet-l3i5",
                   help="model whose disagreement with the original sets the error scale")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="fine-tuned model (repeatable)")
    p.add_argument("--elements", action="append", default=[], metavar="NAME=El,El",
                   help="elements of a fine-tuned model's training data (repeatable); every "
                        "held-out base with one of them is added and reported apart")
    p.add_argument("--every", type=int, default=4, help="every n-th held-out base (sorted)")
    p.add_argument("--variants", nargs="+", default=["eq", "efs-0"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    elements = {name: set(els.split(",")) - {""} for name, els in
                (spec.split("=", 1) for spec in args.elements)}
    items = structures(args.every, args.variants, set().union(*elements.values()))
    weights = {}
    for sid, sample, yaml in items:
        if sample.force_constants is not None:
            weights[sid] = mesh_frequencies(yaml, sample.force_constants)
    truth = {sid: {**labels(sample), **({"freq": weights[sid][1]} if sid in weights else {})}
             for sid, sample, _ in items}
    mesh_w = {sid: w for sid, (w, _) in weights.items()}
    symbols = {sid: set(sample.atoms.get_chemical_symbols()) for sid, sample, _ in items}

    models = {args.original: model_file(args.original), args.scale: model_file(args.scale)}
    for spec in args.model:
        name, path = spec.split("=", 1)
        models[name] = Path(path)
    preds = {name: all_predictions(name, Path(path), items, args.threads)
             for name, path in models.items()}

    def pairs(a, b, ids):
        return [(a[i], b[i], mesh_w.get(i)) for i in ids]

    result = {"units": UNITS, "models": {}}
    for name in models:
        if name in (args.original, args.scale):
            continue
        own = elements.get(name, set())
        groups = {"other_chemistries": [i for i, _, _ in items if not symbols[i] & own]}
        if own:
            groups["with_" + "_".join(sorted(own))] = [i for i, _, _ in items if symbols[i] & own]
        entry = {"elements": sorted(own), "original": args.original, "scale_model": args.scale,
                 "held_out": str(HELD_OUT.relative_to(ROOT)), "every": args.every,
                 "variants": args.variants, "command": "python examples/dft/forgetting.py "
                 + " ".join(sys.argv[1:])}
        for group, ids in groups.items():
            entry[group] = {
                "n_structures": len(ids),
                "errors_vs_teacher": statistics(pairs(preds[name], truth, ids)),
                "original_errors_vs_teacher": statistics(pairs(preds[args.original], truth, ids)),
                "drift_from_original": statistics(pairs(preds[name], preds[args.original], ids)),
                "scale_model_vs_original": statistics(pairs(preds[args.scale],
                                                            preds[args.original], ids)),
                "largest_error_increases": largest_changes(pairs(preds[name], truth, ids),
                                                           pairs(preds[args.original], truth, ids), ids),
            }
            if group != "other_chemistries":
                entry[group]["structures"] = ids
        result["models"][name] = entry
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    old.update({k: v for k, v in result.items() if k != "models"})
    old.setdefault("models", {}).update(result["models"])
    OUT.write_text(json.dumps(old, indent=1) + "\n")
    for name, entry in result["models"].items():
        for group, values in entry.items():
            if not isinstance(values, dict):
                continue
            drift, scale = values["drift_from_original"], values["scale_model_vs_original"]
            err, err0 = values["errors_vs_teacher"], values["original_errors_vs_teacher"]
            print(f"{name} [{group}, {values['n_structures']} structures]")
            for q in QUANTITIES:
                if q in drift:
                    print(f"  {q:7s} error {err0[q]:.4g} -> {err[q]:.4g}; drift {drift[q]:.4g} "
                          f"= {drift[q] / scale[q] if scale[q] else float('nan'):.1%} of "
                          f"{args.scale}'s {scale[q]:.4g} {UNITS[q]}")
            worst = values["largest_error_increases"].get("forces", [])
            print("  forces error raised most by: " + ", ".join(f"{i} {d:+.4g}" for i, d in worst))
    print(f"written {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
