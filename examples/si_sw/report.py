"""Held-out accuracy of the Si example model and its ablation (no force-constant loss).

    python examples/si_sw/report.py [--model runs/si_sw/model.pt] [--ablation runs/si_sw_no_fc/model.pt]
        [--ablation-same-time runs/si_sw_no_fc_same_time/model.pt]   # included when it exists

Against the reference potential's own exact force constants on the held-out
structures of data/sw_si_tetra/held-out: energy, force and force-constant MAE,
and phonon-frequency MAE (THz) at each supercell's commensurate q-points and on
an 8×8×8 mesh, averaged over structures. Also, when data/sw_si/held-out exists
(``fcnet data generate --set si``), the frequency errors on its 13 tetrahedral
cells (the held-out set of the earlier models) and on its β-tin cell, a phase
outside the training data. And a band-structure figure of diamond Si:
Stillinger–Weber (matscipy's analytic Hessian) vs the models. Writes
examples/si_sw/metrics.json and docs/si_sw/bands.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase.build import bulk

from ase_fcnet import FCNetCalculator
from ase_fcnet.generation.references import reference_calculator
from ase_fcnet.phonons import band_structure, phonopy_from_atoms, plot_band_comparison
from ase_fcnet.training import evaluate_folder
from ase_fcnet.training.evaluate import frequency_errors_per_structure, summarize_frequency_errors

ROOT = Path(__file__).resolve().parents[2]


def earlier_held_out(model_path: Path, folder: Path) -> dict:
    """Frequency errors on the ``--set si`` held-out cells: tetrahedral ones and β-tin apart."""
    per = frequency_errors_per_structure(model_path, folder)
    groups = {"tetrahedral": {k: v for k, v in per.items() if not k.startswith("si-betatin-")},
              "betatin": {k: v for k, v in per.items() if k.startswith("si-betatin-")}}
    out = {name: summarize_frequency_errors(group) for name, group in groups.items()}
    out["per_structure"] = per
    return out


def bands_figure(models: dict[str, Path], path: Path) -> dict:
    """Diamond Si bands, Stillinger–Weber vs the models; band-path MAE (THz) per model."""
    atoms = bulk("Si", "diamond", a=5.431)
    bands = {"Stillinger–Weber (exact)": band_structure(phonopy_from_atoms(
        atoms, reference_calculator("sw-si"), supercell_matrix=[4, 4, 4]))}
    for name, model in models.items():
        bands[name] = band_structure(phonopy_from_atoms(atoms, FCNetCalculator(model=model),
                                                        supercell_matrix=[4, 4, 4]))
    return plot_band_comparison(bands, path, "Diamond Si, 128-atom supercell")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "runs/si_sw/model.pt"))
    p.add_argument("--ablation", default=str(ROOT / "runs/si_sw_no_fc/model.pt"))
    p.add_argument("--data", default=str(ROOT / "data/sw_si_tetra/held-out"))
    p.add_argument("--earlier", default=str(ROOT / "data/sw_si/held-out"),
                   help="held-out folder of --set si (skipped when missing)")
    p.add_argument("--ablation-same-time", default=str(ROOT / "runs/si_sw_no_fc_same_time/model.pt"),
                   help="ablation trained as long in time as --model (skipped when missing)")
    args = p.parse_args()
    models = {"with force-constant loss": Path(args.model),
              "without force-constant loss, same steps": Path(args.ablation)}
    if Path(args.ablation_same_time).is_file():
        models["without force-constant loss, same time"] = Path(args.ablation_same_time)
    report = {name: evaluate_folder(path, Path(args.data)) for name, path in models.items()}
    if Path(args.earlier).is_dir():
        for name, path in models.items():
            report[name]["earlier_held_out"] = earlier_held_out(path, Path(args.earlier))
    band_mae = bands_figure(models, ROOT / "docs/si_sw/bands.png")
    for name in report:
        report[name]["diamond_band_path_mae_THz"] = band_mae[name]
    (ROOT / "examples/si_sw/metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    keys = ("fc_mae_eV_per_A2", "mean_commensurate_mae_THz", "mean_mesh_mae_THz",
            "worst_mesh_max_THz", "energy_mae_meV_per_atom", "forces_mae_eV_per_A",
            "diamond_band_path_mae_THz")
    print("| model | " + " | ".join(keys) + " |")
    for name, r in report.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3g}" for k in keys) + " |")
    for name, r in report.items():
        if "earlier_held_out" in r:
            e = r["earlier_held_out"]
            print(f"{name}: --set si held-out, 13 tetrahedral cells {e['tetrahedral']['mean_mesh_mae_THz']:.3f} "
                  f"THz mesh MAE; beta-tin {e['betatin']['mean_mesh_mae_THz']:.3f} THz")


if __name__ == "__main__":
    main()
