"""Which Tersoff SiC structures have atom pairs inside the potential's cutoff switching zone.

The Erhart-Albe Tersoff potential switches each pair off with a cosine between
r1 and r2 (C-C 1.85-2.15 Å, Si-C 2.2-2.6 Å, Si-Si 2.68-2.96 Å, matscipy's
parameters). The switch's second derivative is large, so structures with pairs
in that zone have force constants far above the rest of the data. This prints,
for every structure with force constants in data/tersoff_sic, its pairs in a
switching zone and its largest force-constant entry (eV/Å²), largest first.
With ``--eval``, it also splits the held-out phonon-frequency errors of
``fcnet evaluate … --frequencies --json FILE`` into structures with and
without such pairs.

    python examples/sic_tersoff/switching_zone.py [--data data/tersoff_sic] [--json out.json]
                                                  [--eval EVAL.json ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.neighborlist import neighbor_list
from matscipy.calculators.manybody.explicit_forms.tersoff_brenner import (
    Erhart_PRB_71_035211_SiC as PARAMS,
)

from ase_fcnet.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]


def switching_zones() -> dict[tuple[str, str], tuple[float, float]]:
    """(element, element) → (r1, r2) in Å, from matscipy's parameter table (pair order C-C, C-Si, Si-Si)."""
    a, b = PARAMS["el"]
    pairs = [(a, a), (a, b), (b, b)]
    return {pair: (float(lo), float(hi)) for pair, lo, hi in zip(pairs, PARAMS["r1"], PARAMS["r2"])}


def pairs_in_zone(atoms, zones) -> dict[str, int]:
    """Atom pairs (each counted once) whose distance lies strictly inside a switching zone, per kind."""
    i, j, d = neighbor_list("ijd", atoms, max(hi for _, hi in zones.values()))
    symbols = np.array(atoms.get_chemical_symbols())
    counts = {}
    for (a, b), (lo, hi) in zones.items():
        kind = ((symbols[i] == a) & (symbols[j] == b)) | ((symbols[i] == b) & (symbols[j] == a))
        counts[f"{a}-{b}"] = int((kind & (d > lo) & (d < hi)).sum()) // 2
    return counts


def force_constant_samples(folder: Path) -> dict:
    """Structure (sub-folder name) -> its sample with force constants, for every one in ``folder``."""
    return {Path(s.source.split("#")[0]).parent.name: s
            for s in load_dataset([folder]) if s.force_constants is not None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "tersoff_sic")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--eval", type=Path, nargs="*", default=[],
                   help="JSON files written by fcnet evaluate --frequencies --json")
    args = p.parse_args()
    zones = switching_zones()
    print("switching zones (Å):", {"-".join(k): v for k, v in zones.items()})
    rows = []
    for split in ("train", "held-out"):
        for name, sample in force_constant_samples(args.data / split).items():
            by_kind = pairs_in_zone(sample.atoms, zones)
            rows.append({"split": split, "structure": name,
                         "pairs_in_zone": sum(by_kind.values()), "pairs_by_kind": by_kind,
                         "max_abs_fc": float(np.abs(sample.force_constants).max()),
                         "mean_abs_fc": float(np.abs(sample.force_constants).mean()),
                         "n_fc": int(sample.force_constants.size)})
    rows.sort(key=lambda r: -r["max_abs_fc"])
    for r in rows:
        kinds = ", ".join(f"{k} {n}" for k, n in r["pairs_by_kind"].items() if n)
        print(f"{r['split']:9s} {r['structure']:30s} max |fc| {r['max_abs_fc']:7.1f} eV/Å²   "
              f"pairs in zone {r['pairs_in_zone']:4d} {f'({kinds})' if kinds else ''}")
    held = [r for r in rows if r["split"] == "held-out"]
    mean_abs = sum(r["mean_abs_fc"] * r["n_fc"] for r in held) / max(sum(r["n_fc"] for r in held), 1)
    print(f"held-out mean |fc| over all stored entries (the FC MAE of a model predicting zero): "
          f"{mean_abs:.3f} eV/Å²")
    big = [r for r in rows if r["max_abs_fc"] > 100.0]
    print(f"{len(rows)} structures; {sum(r['pairs_in_zone'] > 0 for r in rows)} with pairs in a "
          f"switching zone; {len(big)} with |fc| > 100 eV/Å², "
          f"{sum(r['pairs_in_zone'] > 0 for r in big)} of them with pairs in a zone")
    index = args.data / "index.json"
    if index.is_file():  # which structures fell back to finite displacements when generated
        method = {s["label"]: s["method"] for s in json.loads(index.read_text())["structures"]}
        fd = {r["structure"] for r in rows if method.get(r["structure"]) != "analytic"}
        zone = {r["structure"] for r in rows if r["pairs_in_zone"] > 0}
        print(f"{len(fd)} structures got finite-displacement force constants (matscipy's Hessian "
              f"failed the generator's checks); {len(fd & zone)} of them have pairs in a zone, "
              f"{len(zone - fd)} structures with zone pairs kept the analytic Hessian")
    if args.json:
        args.json.write_text(json.dumps({"zones": {"-".join(k): v for k, v in zones.items()},
                                         "structures": rows}, indent=1))
    in_zone = {r["structure"]: r["pairs_in_zone"] > 0 for r in rows if r["split"] == "held-out"}
    for path in args.eval:
        split_errors(path, in_zone)


def split_errors(path: Path, in_zone: dict[str, bool]) -> None:
    """Mean mesh frequency MAE (THz) of an evaluation, over all, zone and zone-free structures."""
    freqs = json.loads(path.read_text())["frequencies"]
    mae = {Path(k).parent.name: v["mesh_mae_THz"] for k, v in freqs.items()}
    unknown = sorted(set(mae) - set(in_zone))
    if unknown:
        raise SystemExit(f"{path}: structures not in the held-out data: {unknown}")
    groups = {"all": list(mae), "with zone pairs": [k for k in mae if in_zone[k]],
              "without": [k for k in mae if not in_zone[k]]}
    parts = [f"{name} ({len(keys)}) {np.mean([mae[k] for k in keys]):.2f}"
             for name, keys in groups.items() if keys]
    print(f"{path}: mean mesh frequency MAE, THz: " + "; ".join(parts))


if __name__ == "__main__":
    main()
