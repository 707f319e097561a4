"""Measure the trained default model and bundle it into the package.

    python examples/default_model/ship.py [--model examples/default_model/run-products/model.pt]
    python examples/default_model/ship.py --model examples/default_model/run-products/last.pt \
        --no-install --out runs/interim   # a run still going: its best weights so far

1. Against the teacher (SevenNet-0) on the held-out bases of
   datasets/teacher-7net0/held-out.tar.xz (unpacked once into runs/teacher-7net0/): energy (meV/atom), force (eV/Å) and
   force-constant (eV/Å²) MAE over all held-out structures, and phonon
   frequency MAE (THz) at the commensurate q-points and on an 8×8×8 mesh of
   every held-out ``eq`` structure (the teacher's force constants vs the
   model's exact Hessian on the same supercell).
2. Against real DFT (../shared/data/dft: Si, NaCl): frequency MAE at the
   commensurate q-points, on the mesh and along the band path, with figures
   docs/default_model/<system>_bands.png (DFT vs model vs teacher).
   Also the lowest frequency of ``fcnet phonons`` on examples/structures/*.cif
   (the README's main job is NaCl.cif), and the held-out bases where the model
   has imaginary modes the teacher does not.
3. Writes docs/default_model/metrics.json, the tables docs/default_model/metrics.md
   and ase_fcnet/pretrained/NAME.pt (the model with these metrics, the element
   list and the model card path in its metadata). NAME ``default`` is what
   ``FCNetCalculator()`` loads. When the held-out frequency MAE against the
   teacher is above TARGET_THZ, the metadata gets a ``caution`` with the
   measured numbers: loading the model then warns (ModelCautionWarning) and the
   CLI prints it, so no one uses the model unaware of how far to trust it.
"""
from __future__ import annotations

import argparse
import functools
import json
import lzma
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ase_fcnet.data import load_dataset, unpacked_once
from ase_fcnet.model import load_model, model_from_dict, read_model_file, save_model
from ase_fcnet.phonons import band_structure, phonopy_to_atoms, plot_band_comparison
from ase_fcnet.training import evaluate
from ase_fcnet.training.checkpointing import CheckpointError, best_model_dict, read_checkpoint
from ase_fcnet.training.evaluate import (
    frequency_errors,
    model_phonopy,
    reference_phonopy,
    SPURIOUS_IMAGINARY_THZ,
    spurious_imaginary,
    summarize_frequency_errors,
)

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = unpacked_once(ROOT / "datasets" / "teacher-7net0" / "held-out.tar.xz",
                         ROOT / "runs" / "teacher-7net0" / "held-out")
DFT = ROOT.parent / "shared" / "data" / "dft"
DOCS = ROOT / "docs" / "default_model"
MODELS = ROOT / "ase_fcnet" / "pretrained"
#: Accuracy target: mean phonon-frequency MAE against the teacher on the held-out bases,
#: THz (the default-model issue's "within 0.3 THz of the teacher"). A model above it is
#: bundled with a ``caution`` in its metadata (see the module docstring).
TARGET_THZ = 0.3
DFT_FILES = {"Si": "Si_phonopy_params.yaml", "NaCl": "NaCl_rd_phonopy_params.yaml.xz"}


def held_out(model) -> dict:
    """Errors against the teacher on the held-out bases."""
    samples = load_dataset([HELD_OUT])
    out = {k: v for k, v in evaluate(model, samples).items() if not isinstance(v, dict)}
    per = {}
    for yaml in sorted(HELD_OUT.glob("*/eq/phonopy_params.yaml.xz")):
        if json.loads((yaml.parent / "labels.json").read_text())["force_constants"]:
            per[yaml.parent.parent.name] = frequency_errors(model, yaml)
    out.update(summarize_frequency_errors(per))
    out["n_structures"] = len(samples)
    out["by_group"] = by_group(per)
    out["per_structure"] = per
    return out


@functools.cache
def _common_labels() -> frozenset[str]:
    from ase_fcnet.generation.universal import common_structures

    return frozenset(label for label, _ in common_structures())


def group_of(label: str) -> str:
    """Which kind of base a held-out label is (for the per-group frequency errors)."""
    from ase_fcnet.generation.universal import COMMON

    if label in _common_labels():
        return "common compounds (universal.COMMON)"
    kind = label.split("-", 1)[0]
    if kind in ("fcc", "bcc", "hcp", "diamond", "hexdiamond"):
        return "elements (fcc, bcc, hcp, diamond, hexdiamond)"
    if kind == "random":
        return "random crystals (pyxtal)"
    assert kind in COMMON, label
    return "drawn compounds (prototype, random pair)"


def by_group(per: dict, key=group_of) -> dict:
    """Mean and median frequency MAE (THz) over the held-out bases of each group (``key(label)``)."""
    groups: dict[str, list[dict]] = {}
    for label, errors in per.items():
        groups.setdefault(key(label), []).append(errors)
    out = {}
    for name, rows in sorted(groups.items()):
        mesh = [r["mesh_mae_THz"] for r in rows]
        comm = [r["commensurate_mae_THz"] for r in rows]
        out[name] = {"n": len(rows), "mean_mesh_mae_THz": float(np.mean(mesh)),
                     "median_mesh_mae_THz": float(np.median(mesh)),
                     "mean_commensurate_mae_THz": float(np.mean(comm)),
                     "median_commensurate_mae_THz": float(np.median(comm))}
    return out


#: groups by the lightest element of a base: (label, highest atomic number of that element)
LIGHTEST = (("H–B", 5), ("C–F", 9), ("Na–Ca", 20), ("Sc–Br", 35), ("Rb–Bi", 83))


def lightest_group(label: str) -> str:
    """Which LIGHTEST group a held-out base belongs to; its formula ends the label ("rocksalt-BeTe")."""
    from ase.data import atomic_numbers
    from ase.formula import Formula

    z = min(atomic_numbers[symbol] for symbol in Formula(label.rsplit("-", 1)[-1]).count())
    return next(name for name, z_max in LIGHTEST if z <= z_max)


def _mesh_maes(held: dict) -> np.ndarray:
    """Mesh frequency MAE (THz) of every held-out base, shape (n_bases,)."""
    return np.array([e["mesh_mae_THz"] for e in held["per_structure"].values()])


def markdown(metrics: dict) -> str:
    """The measured tables of the model card (docs/default_model/metrics.md)."""
    held, dft = metrics["held_out_vs_teacher"], metrics["vs_dft"]
    lines = ["<!-- written by examples/default_model/ship.py; do not edit -->", "",
             f"Model: `{metrics['model']}`", "",
             f"## Against the teacher: {held['n_structures']} held-out structures "
             f"({held['n_datasets']} with force constants)", "",
             "| energy, meV/atom | force, eV/Å | stress, eV/Å³ | force constants, eV/Å² "
             "| frequency MAE, commensurate q (THz) | frequency MAE, 8×8×8 mesh (THz) |",
             "|---|---|---|---|---|---|",
             f"| {held['energy_mae_meV_per_atom']:.1f} | {held['forces_mae_eV_per_A']:.3f} "
             f"| {held.get('stress_mae_eV_per_A3', float('nan')):.4f} "
             f"| {held['fc_mae_eV_per_A2']:.3f} | {held['mean_commensurate_mae_THz']:.2f} "
             f"| {held['mean_mesh_mae_THz']:.2f} |", "",
             "| held-out group | bases | mesh MAE mean (THz) | mesh MAE median (THz) |",
             "|---|---|---|---|"]
    mesh = _mesh_maes(held)
    lines.insert(-3, f"\nPer held-out base (teacher's `eq` supercell), mesh MAE: median "
                     f"{np.median(mesh):.2f} THz; below 0.5 THz for {(mesh < 0.5).sum()} and below "
                     f"1 THz for {(mesh < 1).sum()} of {len(mesh)} bases; largest single error "
                     f"{held['worst_mesh_max_THz']:.1f} THz.")
    for name, g in held["by_group"].items():
        lines.append(f"| {name} | {g['n']} | {g['mean_mesh_mae_THz']:.2f} "
                     f"| {g['median_mesh_mae_THz']:.2f} |")
    if "n_spurious_imaginary" in held:
        bad = sorted((label, e["mesh_min_THz"]) for label, e in held["per_structure"].items()
                     if spurious_imaginary(e))
        listed = ", ".join(f"{label} ({low:.2f})" for label, low in bad) or "none"
        lines += ["", f"Imaginary modes the teacher does not have (lowest 8×8×8 mesh frequency "
                      f"below −{SPURIOUS_IMAGINARY_THZ} THz where the teacher's is not): "
                      f"{held['n_spurious_imaginary']} of {len(mesh)} bases: {listed}."]
    lines += ["", "By the lightest element of the base (light atoms vibrate fastest, so the same "
              "force-constant error costs them more THz):", "",
              "| lightest element | bases | mesh MAE mean (THz) | mesh MAE median (THz) |",
              "|---|---|---|---|"]
    lightest = by_group(held["per_structure"], key=lightest_group)
    for name in (name for name, _ in LIGHTEST if name in lightest):
        g = lightest[name]
        lines.append(f"| {name} | {g['n']} | {g['mean_mesh_mae_THz']:.2f} | {g['median_mesh_mae_THz']:.2f} |")
    common = [(label, e) for label, e in held["per_structure"].items()
              if group_of(label).startswith("common")]
    if common:
        lines += ["", "Held-out common compounds, one by one (teacher's `eq` supercell):", "",
                  "| base | commensurate MAE (THz) | mesh MAE (THz) | mesh max abs (THz) |",
                  "|---|---|---|---|"]
        lines += [f"| {label} | {e['commensurate_mae_THz']:.2f} | {e['mesh_mae_THz']:.2f} "
                  f"| {e['mesh_max_THz']:.2f} |" for label, e in sorted(common)]
    lines += ["", "## Against DFT (../shared/data/dft)", "",
              "| system | commensurate q MAE (THz) | mesh MAE (THz) | band path MAE (THz) "
              "| teacher band path MAE (THz) |", "|---|---|---|---|---|"]
    for system, e in dft.items():
        lines.append(f"| {system} | {e['commensurate_mae_THz']:.2f} | {e['mesh_mae_THz']:.2f} "
                     f"| {e['band_path_mae_THz']:.2f} | {e['teacher_band_path_mae_THz']:.2f} |")
    if metrics.get("examples"):
        lines += ["", "## The example structures (`fcnet phonons examples/structures/FILE`, "
                      "default settings, no relaxation)", "",
                  "| file | supercell atoms | lowest frequency (THz) | at q | highest (THz) "
                  "| imaginary modes |", "|---|---|---|---|---|---|"]
        for name, e in metrics["examples"].items():
            q = ", ".join(f"{x:.3g}" for x in e["lowest_qpoint"])
            lines.append(f"| {name} | {e['supercell_atoms']} | {e['min_THz']:.2f} | ({q}) "
                         f"| {e['max_THz']:.2f} | {'yes' if e['has_imaginary'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _plain_yaml(name: str, folder: Path) -> Path:
    src = DFT / name
    dst = folder / "phonopy_params.yaml"
    dst.write_bytes(lzma.decompress(src.read_bytes()) if src.suffix == ".xz" else src.read_bytes())
    return dst


def versus_dft(model, label: str, folder: Path = DOCS) -> dict:
    """Model (and teacher) phonons vs the shared DFT data, with band figures in ``folder``."""
    from ase_fcnet.generation.teacher import sevennet_calculator

    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    key = f"ase_fcnet {label}"
    for system, filename in DFT_FILES.items():
        with tempfile.TemporaryDirectory() as tmp:
            yaml = _plain_yaml(filename, Path(tmp))
            ref, calc = reference_phonopy(yaml)
            errors = frequency_errors(model, yaml)
            bands = {"DFT (PBE/PBEsol, phonopy examples)": band_structure(ref),
                     key: band_structure(model_phonopy(model, ref, calc, yaml))}
            teacher = _teacher_phonopy(ref, sevennet_calculator())
            bands["SevenNet-0 teacher (finite displacements)"] = band_structure(teacher)
        mae = plot_band_comparison(bands, folder / f"{system}_bands.png",
                                   title=f"{system}: {key} model vs DFT "
                                         f"({len(ref.supercell)}-atom supercell)")
        errors["band_path_mae_THz"] = mae[key]
        errors["teacher_band_path_mae_THz"] = mae["SevenNet-0 teacher (finite displacements)"]
        out[system] = errors
    return out


def example_structures(model) -> dict:
    """Lowest and highest frequency of ``fcnet phonons`` (default settings) on examples/structures/*.cif."""
    from ase.io import read

    from ase_fcnet import FCNetCalculator
    from ase_fcnet.phonons.workflow import PhononSettings, run_phonons

    out = {}
    for cif in sorted((ROOT / "examples" / "structures").glob("*.cif")):
        result = run_phonons(read(cif), FCNetCalculator(model), PhononSettings())
        f = result.frequencies
        out[cif.name] = {"min_THz": f.min_frequency, "max_THz": f.max_frequency,
                         "has_imaginary": bool(f.has_imaginary),
                         "lowest_qpoint": [float(x) for x in f.lowest_qpoint],
                         "supercell_atoms": len(result.phonon.supercell)}
    return out


def _teacher_phonopy(ref, calc):
    """The teacher's finite-displacement force constants on the DFT supercell."""
    from phonopy import Phonopy

    phonon = Phonopy(ref.unitcell, supercell_matrix=ref.supercell_matrix,
                     primitive_matrix=ref.primitive_matrix, log_level=0)
    phonon.generate_displacements(distance=0.01)
    forces = []
    for cell in phonon.supercells_with_displacements:
        atoms = phonopy_to_atoms(cell)
        atoms.calc = calc
        forces.append(atoms.get_forces())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    return phonon


def _headline(metrics: dict) -> dict:
    held, dft = metrics["held_out_vs_teacher"], metrics["vs_dft"]
    out = {k: held[k] for k in ("energy_mae_meV_per_atom", "forces_mae_eV_per_A",
                                "stress_mae_eV_per_A3", "fc_mae_eV_per_A2", "mean_commensurate_mae_THz",
                                "mean_mesh_mae_THz") if k in held}
    for system, errors in dft.items():
        out[f"{system}_dft_band_path_mae_THz"] = errors["band_path_mae_THz"]
    return out


def caution(metrics: dict) -> str | None:
    """The ``caution`` metadata of a model above TARGET_THZ, with its measured numbers, or None."""
    held = metrics["held_out_vs_teacher"]
    mae = held["mean_mesh_mae_THz"]
    if mae <= TARGET_THZ:
        return None
    median = float(np.median(_mesh_maes(held)))
    dft = ", ".join(f"{s} {e['band_path_mae_THz']:.2f} THz" for s, e in metrics["vs_dft"].items())
    return (f"accuracy below target: phonon frequency MAE {mae:.2f} THz (median per crystal "
            f"{median:.2f} THz) against its teacher SevenNet-0 on held-out "
            f"crystals, target {TARGET_THZ} THz; against DFT along the band path {dft}. Use it "
            "for trends and quick looks, not for quantitative phonons; see docs/default_model.md.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples/default_model/run-products/model.pt")
    parser.add_argument("--no-install", action="store_true",
                        help="measure only; do not write into ase_fcnet/pretrained/")
    parser.add_argument("--name", default="default",
                        help="bundle as ase_fcnet/pretrained/NAME.pt ('default': used when no model "
                             "is given)")
    parser.add_argument("--out", type=Path, default=DOCS,
                        help="folder for metrics.json, metrics.md and the DFT band figures "
                             "(default: the model card's, docs/default_model)")
    parser.add_argument("--tables-only", action="store_true",
                        help="only rewrite metrics.md from the stored metrics.json (no measuring)")
    args = parser.parse_args()
    if args.tables_only:
        (args.out / "metrics.md").write_text(markdown(json.loads((args.out / "metrics.json").read_text())))
        return
    try:                                   # a run still going: its best weights so far (--no-install only)
        checkpoint = read_checkpoint(args.model)
    except CheckpointError:
        model = load_model(args.model)
    else:
        if not args.no_install:
            parser.error(f"{args.model} is a training checkpoint: measure it with --no-install, "
                         "bundle only a finished model.pt")
        model = model_from_dict(best_model_dict(checkpoint), source=str(args.model))
    metrics = {"model": str(args.model.relative_to(ROOT)) if args.model.is_relative_to(ROOT)
               else str(args.model),
               "held_out_vs_teacher": held_out(model), "vs_dft": versus_dft(model, args.name, args.out),
               "examples": example_structures(model)}
    metrics["headline"] = _headline(metrics)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (args.out / "metrics.md").write_text(markdown(metrics))
    print(json.dumps(metrics["headline"], indent=1))
    if args.no_install:
        return
    kind = "Default" if args.name == "default" else f"{args.name!r} (not the default)"
    source = read_model_file(args.model).get("metadata") or {}
    metadata = {
        "description": f"{kind} ase_fcnet model: distilled from SevenNet-0 on the universal "
                       "structure set (energies, forces, stress, force constants).",
        "teacher": "SevenNet-0 (sevenn, 7net-0 11Jul2024)",
        "model_card": "docs/default_model.md",
        "metrics": metrics["headline"],
        "training": {k: source[k] for k in ("steps", "epochs", "wall_time_s") if k in source},
        "caution": caution(metrics),
    }
    target = MODELS / f"{args.name}.pt"
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / target.name
        save_model(model, staged, metadata=metadata)
        shutil.move(staged, target)
    print(f"bundled {target} ({target.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
