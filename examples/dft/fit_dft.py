"""Fit models to real DFT phonopy data (Si, NaCl) and compare their phonons with DFT.

Systems (``--system``, repeatable; all of them without it):

* ``si-7net0``, ``nacl-7net0``: the bundled universal potential SevenNet-0
  (``training.init_model: sevennet-0``, the model section taken from it)
  fine-tuned with the force-constant loss alone: only the perfect supercell
  with the DFT force constants is trained on (``data.force_constants_only``),
  one probed atom (three exact Hessian-vector products) per step;
* ``si-l3i5``, ``nacl-l3i5``: the same with SevenNet-l3i5 (the default model);
* ``si-l3i5-species``, ``nacl-l3i5-species``: SevenNet-l3i5 fine-tuned the same
  way with ``training.train_species`` (only the crystal's elements' embedding
  rows, reference energies and per-species adapters train), lr 1e-2: every
  structure without these elements keeps exactly its predictions;
* ``si``: the Stillinger–Weber-trained example model (examples/si_sw/model.pt)
  fine-tuned on the Si DFT displacement dataset;
* ``nacl``: a small fcnet model trained from scratch on the NaCl DFT data;
* ``nacl-fcnet-small``: the distilled fcnet-small model (the bundled default
  until SevenNet-l3i5 replaced it) fine-tuned on the same NaCl data, with the
  lowest frequency of the README's main job (examples/structures/NaCl.cif,
  fcnet's default supercell) before and after.

In every case the DFT force constants that phonopy derives from the
displacement forces are written as FORCE_CONSTANTS beside a copy of the
phonopy yaml, which is how a user hands force constants to the trainer.
Training runs on ``--threads`` torch threads (1 by default); its wall and CPU
time (``time.process_time``, this process) are recorded.

    python examples/dft/fit_dft.py --system si-7net0        # one system
    python examples/dft/fit_dft.py --system si-l3i5 --steps 5   # fewer steps (cost per step)

Writes runs/dft/<system>/ (data, training output) and docs/dft/<system>_bands.png,
docs/dft/results.json; docs/dft.md quotes them. examples/dft/forgetting.py
measures how far the fine-tuned SevenNet models moved on other chemistries.
"""
from __future__ import annotations

import argparse
import json
import lzma
import shutil
import time
from pathlib import Path

import torch

from phonopy.file_IO import write_FORCE_CONSTANTS

from ase_fcnet.model import load_model
from ase_fcnet.pretrained import model_file
from ase_fcnet.phonons.analysis import band_structure
from ase_fcnet.phonons.plotting import plot_band_comparison
from ase_fcnet.training import TrainConfig, train
from ase_fcnet.training.evaluate import frequency_errors, model_phonopy, reference_phonopy

ROOT = Path(__file__).resolve().parents[2]
DFT = ROOT.parent / "shared" / "data" / "dft"
RUNS = ROOT / "runs" / "dft"
DOCS = ROOT / "docs" / "dft"

#: Fine-tuning a universal potential on one crystal's force constants: the perfect
#: supercell only, one probed atom per step, every step on it (fc_repeat fills an epoch).
UNIVERSAL = {"data": {"force_constants_only": True, "fc_repeat": 20},
             "loss": {"fc_probes": 1}, "training": {"batch_size": 1},
             "schedule": {"warmup_steps": 5}}


def species_only(*elements: str) -> dict:
    """:data:`UNIVERSAL` with ``training.train_species``: only these elements' parameters train."""
    return {**UNIVERSAL, "training": {**UNIVERSAL["training"], "train_species": list(elements)}}


SYSTEMS = {
    "si": {"files": ["Si_phonopy_params.yaml"], "init_model": ROOT / "examples/si_sw/model.pt",
           "before": "model before fine-tuning (SW)", "steps": 300, "lr": 1e-3},
    "nacl-fcnet-small": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": "fcnet-small",
                         "before": "fcnet-small", "steps": 300, "lr": 3e-4,
                         "structure": ROOT / "examples/structures/NaCl.cif"},
    "nacl": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": None, "steps": 600,
             "lr": 3e-3,
             "model": {"species": ["Na", "Cl"], "cutoff": 5.0, "num_layers": 2, "l_max": 2,
                       "scalar_channels": 16, "tensor_channels": 8}},
    "si-7net0": {"files": ["Si_phonopy_params.yaml"], "init_model": "sevennet-0",
                 "before": "SevenNet-0", "steps": 80, "lr": 1e-3, "config": UNIVERSAL},
    "nacl-7net0": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": "sevennet-0",
                   "before": "SevenNet-0", "steps": 50, "lr": 1e-3, "config": UNIVERSAL},
    "si-l3i5": {"files": ["Si_phonopy_params.yaml"], "init_model": "sevennet-l3i5",
                "before": "SevenNet-l3i5", "steps": 120, "lr": 1e-3, "config": UNIVERSAL},
    "nacl-l3i5": {"files": ["NaCl_rd_phonopy_params.yaml.xz"], "init_model": "sevennet-l3i5",
                  "before": "SevenNet-l3i5", "steps": 50, "lr": 1e-3, "config": UNIVERSAL},
    "si-l3i5-species": {"files": ["Si_phonopy_params.yaml"], "init_model": "sevennet-l3i5",
                        "before": "SevenNet-l3i5", "steps": 120, "lr": 1e-2,
                        "config": species_only("Si")},
    "nacl-l3i5-species": {"files": ["NaCl_rd_phonopy_params.yaml.xz"],
                          "init_model": "sevennet-l3i5", "before": "SevenNet-l3i5", "steps": 80,
                          "lr": 1e-2, "config": species_only("Na", "Cl")},
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


def config(system: str, yaml: Path, steps: int | None = None) -> TrainConfig:
    """The training config of a system (the model section comes from its init model)."""
    spec = SYSTEMS[system]
    init = spec["init_model"]
    plain = {
        "data": {"paths": [str(yaml.parent)], "validation_fraction": 0.0},
        "loss": {"energy": 0.01, "forces": 1.0, "force_constants": 1.0, "fc_probes": 2},
        "optimizer": {"lr": spec["lr"]},
        "schedule": {"warmup_steps": 20},
        "training": {"epochs": 100000, "max_steps": steps or spec["steps"], "batch_size": 2,
                     "patience": None, "output_dir": str(RUNS / system / "train"),
                     "init_model": str(init) if init else None, "progress": False},
    }
    if init is None:
        plain["model"] = spec["model"]
    for section, values in spec.get("config", {}).items():
        plain[section] = {**plain.get(section, {}), **values}
    return TrainConfig.from_dict(plain)


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


def run(system: str, steps: int | None = None, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    yaml = prepare(system)
    cfg = config(system, yaml, steps)
    before = load_model(model_file(cfg.training.init_model)) if cfg.training.init_model else None
    out_dir = Path(cfg.training.output_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    models = {"after": result.model.double()}
    errors = {"after": frequency_errors(models["after"], yaml)}
    if before is not None:
        models = {"before": before.double(), **models}
        errors = {"before": frequency_errors(models["before"], yaml), **errors}
    band_mae = bands(system, yaml, models)
    for name in errors:
        errors[name]["band_path_mae_THz"] = band_mae[name]
    init = cfg.training.init_model
    if init and Path(init).is_file():
        init = Path(init).resolve().relative_to(ROOT).as_posix()
    out = {"system": system, "steps": result.steps, "init_model": init,
           "training": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "threads": threads,
                        "cpu_s_per_step": round(cpu / max(result.steps, 1), 2),
                        "config": cfg.to_dict(relative_to=ROOT)},
           "errors_vs_dft": errors}
    if "structure" in SYSTEMS[system]:
        out["structure_lowest_THz"] = {name: lowest_frequency(SYSTEMS[system]["structure"], model)
                                       for name, model in models.items()}
    print(json.dumps({k: v for k, v in out.items() if k != "training"} |
                     {"training": {k: v for k, v in out["training"].items() if k != "config"}},
                     indent=1))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=sorted(SYSTEMS), action="append")
    p.add_argument("--steps", type=int, default=None,
                   help="override the system's number of training steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args()
    results = [run(s, args.steps, args.threads)
               for s in (args.system or sorted(SYSTEMS, reverse=True))]
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({r["system"]: r for r in results})
    path.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
