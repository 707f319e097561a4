"""Fit models to real DFT phonopy data (Si, NaCl) and compare their phonons with DFT.

Si: fine-tunes the Stillinger–Weber-trained example model (examples/si_sw/model.pt)
on the DFT displacement dataset. NaCl: a small model is trained from scratch on
the DFT data. nacl-default: the bundled default model is fine-tuned on the same
NaCl data (``training.init_model: default``), and the lowest frequency of the
README's main job (examples/structures/NaCl.cif, fcnet's default supercell) is
recorded before and after. In every case the DFT force
constants that phonopy derives from the displacement forces are written as
FORCE_CONSTANTS beside a copy of the phonopy yaml, which is how a user hands
force constants to the trainer.

    python examples/dft/fit_dft.py                          # all three, ~15 min on 2 cores
    python examples/dft/fit_dft.py --system nacl-default    # one of them

Writes runs/dft/<system>/ (data, training output) and docs/dft/<system>_bands.png,
docs/dft/results.json; docs/dft.md quotes them.
"""
from __future__ import annotations

import argparse
import json
import lzma
import shutil
from pathlib import Path

from phonopy.file_IO import write_FORCE_CONSTANTS

from ase_fcnet.model import load_model, read_model_file
from ase_fcnet.models import model_file
from ase_fcnet.phonons.analysis import band_structure
from ase_fcnet.phonons.plotting import plot_band_comparison
from ase_fcnet.training import TrainConfig, train
from ase_fcnet.training.evaluate import frequency_errors, model_phonopy, reference_phonopy

ROOT = Path(__file__).resolve().parents[2]
DFT = ROOT.parent / "shared" / "data" / "dft"
RUNS = ROOT / "runs" / "dft"
DOCS = ROOT / "docs" / "dft"

SYSTEMS = {
    "si": {"files": ["Si_phonopy_params.yaml"], "init_model": ROOT / "examples/si_sw/model.pt",
           "before": "model before fine-tuning (SW)", "steps": 300, "lr": 1e-3},
    "nacl-default": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": "default",
                     "before": "bundled default model", "steps": 300, "lr": 3e-4,
                     "structure": ROOT / "examples/structures/NaCl.cif"},
    "nacl": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": None, "steps": 600,
             "lr": 3e-3,
             "model": {"species": ["Na", "Cl"], "cutoff": 5.0, "num_layers": 2, "l_max": 2,
                       "scalar_channels": 16, "tensor_channels": 8}},
}


def prepare(system: str) -> Path:
    """Copy the DFT yaml into runs/ and write phonopy's DFT force constants beside it."""
    folder = RUNS / system / "data"
    folder.mkdir(parents=True, exist_ok=True)
    src = DFT / SYSTEMS[system]["files"][0]
    dst = folder / "phonopy_params.yaml"
    if src.suffix == ".xz":
        dst.write_bytes(lzma.decompress(src.read_bytes()))
    else:
        shutil.copy(src, dst)
    ref, _ = reference_phonopy(dst)
    write_FORCE_CONSTANTS(ref.force_constants, filename=str(folder / "FORCE_CONSTANTS"),
                          p2s_map=ref.primitive.p2s_map)
    return dst


def config(system: str, yaml: Path) -> TrainConfig:
    spec = SYSTEMS[system]
    if spec["init_model"] is not None:
        model = read_model_file(model_file(spec["init_model"]))["model_config"]
    else:
        model = spec["model"]
    return TrainConfig.from_dict({
        "model": model,
        "data": {"paths": [str(yaml.parent)], "validation_fraction": 0.0},
        "loss": {"energy": 0.01, "forces": 1.0, "force_constants": 1.0, "fc_probes": 2},
        "optimizer": {"lr": spec["lr"]},
        "schedule": {"warmup_steps": 20},
        "training": {"epochs": 100000, "max_steps": spec["steps"], "batch_size": 2,
                     "patience": None, "output_dir": str(RUNS / system / "train"),
                     "init_model": str(spec["init_model"]) if spec["init_model"] else None,
                     "progress": False},
    })


def bands(system: str, yaml: Path, models: dict) -> dict:
    """Band structures of DFT and each model on the DFT supercell; figure; errors."""
    ref, calc = reference_phonopy(yaml)
    names = {"before": SYSTEMS[system].get("before"), "after": "model fitted to DFT"}
    paths = {"DFT": band_structure(ref)}
    for name, model in models.items():
        paths[names[name]] = band_structure(model_phonopy(model, ref, calc, yaml))
    DOCS.mkdir(parents=True, exist_ok=True)
    mae = plot_band_comparison(paths, DOCS / f"{system}_bands.png",
                               title=f"{system}: model vs DFT (same {len(ref.supercell)}-atom supercell)")
    return {name: mae[label] for name, label in names.items() if name in models}


def lowest_frequency(structure: Path, model) -> dict:
    """Lowest and highest frequency (THz; negative: imaginary) of ``fcnet phonons``' defaults."""
    from ase.io import read

    from ase_fcnet import FCNetCalculator
    from ase_fcnet.phonons.workflow import PhononSettings, run_phonons

    result = run_phonons(read(structure), FCNetCalculator(model), PhononSettings())
    f = result.frequencies
    return {"structure": structure.relative_to(ROOT).as_posix(), "min_THz": f.min_frequency,
            "max_THz": f.max_frequency, "supercell_atoms": len(result.phonon.supercell)}


def run(system: str) -> dict:
    yaml = prepare(system)
    cfg = config(system, yaml)
    before = load_model(model_file(cfg.training.init_model)) if cfg.training.init_model else None
    out_dir = Path(cfg.training.output_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    result = train(cfg)
    models = {"after": result.model}
    errors = {"after": frequency_errors(result.model, yaml)}
    if before is not None:
        models = {"before": before, **models}
        errors = {"before": frequency_errors(before, yaml), **errors}
    band_mae = bands(system, yaml, models)
    for name in errors:
        errors[name]["band_path_mae_THz"] = band_mae[name]
    init = cfg.training.init_model
    if init and Path(init).is_file():
        init = Path(init).resolve().relative_to(ROOT).as_posix()
    out = {"system": system, "steps": result.steps, "init_model": init, "errors_vs_dft": errors}
    if "structure" in SYSTEMS[system]:
        out["structure_lowest_THz"] = {name: lowest_frequency(SYSTEMS[system]["structure"], model)
                                       for name, model in models.items()}
    print(json.dumps(out, indent=1))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=sorted(SYSTEMS), action="append")
    args = p.parse_args()
    results = [run(s) for s in (args.system or sorted(SYSTEMS, reverse=True))]
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({r["system"]: r for r in results})
    path.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
