"""Held-out accuracy of the Si/C/SiC example model and its ablation (no force-constant loss).

    python examples/sic_tersoff/report.py [--model runs/sic_tetra/model.pt]
        [--ablation runs/sic_tetra_no_fc/model.pt]
        [--ablation-same-time runs/sic_tetra_no_fc_same_time/model.pt]   # included when it exists

Against Tersoff SiC's own exact force constants on the 23 held-out structures of
data/tersoff_sic_tetra/held-out (``--set sic-tetrahedral``): energy, force and
force-constant MAE, and phonon-frequency MAE (THz) at each supercell's
commensurate q-points and on an 8×8×8 mesh, averaged over structures, also per
prototype. When data/tersoff_sic/held-out exists (``--set sic``: 3 % strains,
rattles up to 0.05 Å, rock salt, 216-atom supercells), the frequency errors on its
structures with and without pairs in the potential's cutoff-switching zones
(see switching_zone.py), which lie outside the training distribution. And a
band-structure figure of diamond Si, diamond C and 3C SiC: Tersoff (matscipy's
analytic Hessian) vs the models. Writes examples/sic_tersoff/metrics.json and
docs/sic_tersoff/bands.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.build import bulk
from matplotlib.figure import Figure
from switching_zone import force_constant_samples, pairs_in_zone, switching_zones

from ase_fcnet import FCNetCalculator
from ase_fcnet.generation.references import reference_calculator
from ase_fcnet.phonons import band_structure, draw_band_comparison, phonopy_from_atoms
from ase_fcnet.training import evaluate_folder
from ase_fcnet.training.evaluate import frequency_errors_per_structure, summarize_frequency_errors

ROOT = Path(__file__).resolve().parents[2]
PROTOTYPES = ("si-diamond", "c-diamond", "sic-3c", "sic-2h", "sic-4h", "sic-6h")
CRYSTALS = {"diamond Si": bulk("Si", "diamond", a=5.431), "diamond C": bulk("C", "diamond", a=3.567),
            "3C SiC": bulk("SiC", "zincblende", a=4.360)}


def by_prototype(per_structure: dict) -> dict:
    """Mean mesh frequency MAE (THz) and structure count per prototype."""
    out = {}
    for proto in PROTOTYPES:
        maes = [v["mesh_mae_THz"] for k, v in per_structure.items() if k.startswith(proto + "-")]
        if maes:
            out[proto] = {"n": len(maes), "mean_mesh_mae_THz": float(np.mean(maes))}
    return out


def earlier_held_out(model_path: Path, folder: Path) -> dict:
    """Frequency errors on the ``--set sic`` held-out structures, split by switching-zone pairs."""
    zones = switching_zones()
    in_zone = {name: sum(pairs_in_zone(s.atoms, zones).values()) > 0
               for name, s in force_constant_samples(folder).items()}
    per = frequency_errors_per_structure(model_path, folder)
    out = {"without_zone_pairs": summarize_frequency_errors({k: v for k, v in per.items() if not in_zone[k]}),
           "with_zone_pairs": summarize_frequency_errors({k: v for k, v in per.items() if in_zone[k]})}
    out["per_structure"] = {k: dict(v, zone_pairs=in_zone[k]) for k, v in per.items()}
    return out


def bands_figure(models: dict[str, Path], path: Path) -> dict:
    """Band structures of the three crystals, reference vs models; band-path MAE (THz) per model."""
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    mae: dict[str, dict[str, float]] = {name: {} for name in models}
    for ax, (crystal, atoms) in zip(fig.subplots(1, len(CRYSTALS)), CRYSTALS.items()):
        bands = {"Tersoff (exact)": band_structure(phonopy_from_atoms(
            atoms, reference_calculator("tersoff-sic"), supercell_matrix=[4, 4, 4]))}
        for name, model in models.items():
            bands[name] = band_structure(phonopy_from_atoms(atoms, FCNetCalculator(model=model),
                                                            supercell_matrix=[4, 4, 4]))
        for name, value in draw_band_comparison(ax, bands, f"{crystal}, 128-atom supercell").items():
            mae[name][crystal] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return mae


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "runs/sic_tetra/model.pt"))
    p.add_argument("--ablation", default=str(ROOT / "runs/sic_tetra_no_fc/model.pt"))
    p.add_argument("--data", default=str(ROOT / "data/tersoff_sic_tetra/held-out"))
    p.add_argument("--earlier", default=str(ROOT / "data/tersoff_sic/held-out"),
                   help="held-out folder of --set sic (skipped when missing)")
    p.add_argument("--ablation-same-time", default=str(ROOT / "runs/sic_tetra_no_fc_same_time/model.pt"),
                   help="ablation trained as long in time as --model (skipped when missing)")
    args = p.parse_args()
    models = {"with force-constant loss": Path(args.model),
              "without force-constant loss, same steps": Path(args.ablation)}
    if Path(args.ablation_same_time).is_file():
        models["without force-constant loss, same time"] = Path(args.ablation_same_time)
    report = {}
    for name, path in models.items():
        report[name] = evaluate_folder(path, Path(args.data))
        report[name]["by_prototype"] = by_prototype(report[name]["per_structure"])
        if Path(args.earlier).is_dir():
            report[name]["earlier_held_out"] = earlier_held_out(path, Path(args.earlier))
    band_mae = bands_figure(models, ROOT / "docs/sic_tersoff/bands.png")
    for name in report:
        report[name]["band_path_mae_THz"] = band_mae[name]
    (ROOT / "examples/sic_tersoff/metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    keys = ("fc_mae_eV_per_A2", "mean_commensurate_mae_THz", "mean_mesh_mae_THz",
            "worst_mesh_max_THz", "energy_mae_meV_per_atom", "forces_mae_eV_per_A")
    print("| model | " + " | ".join(keys) + " | band path MAE Si / C / SiC |")
    for name, r in report.items():
        bands = " / ".join(f"{v:.3f}" for v in r["band_path_mae_THz"].values())
        print(f"| {name} | " + " | ".join(f"{r[k]:.3g}" for k in keys) + f" | {bands} |")
    for name, r in report.items():
        parts = [f"{k} {v['mean_mesh_mae_THz']:.3f} ({v['n']})" for k, v in r["by_prototype"].items()]
        print(f"{name}: mesh MAE by prototype (THz): " + ", ".join(parts))
        if "earlier_held_out" in r:
            earlier = r["earlier_held_out"]
            free, zone = earlier["without_zone_pairs"], earlier["with_zone_pairs"]
            print(f"{name}: --set sic held-out, mesh MAE (THz): {free['n_datasets']} without zone "
                  f"pairs {free['mean_mesh_mae_THz']:.3f}; {zone['n_datasets']} with "
                  f"{zone['mean_mesh_mae_THz']:.3f}")


if __name__ == "__main__":
    main()
