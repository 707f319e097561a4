"""One fine-tuning variant of a bundled model on one DFT system: which parameters to train.

The exploration behind the ``*-7net0`` systems of fit_dft.py: trains
``--model`` on the DFT force constants of ``--system`` (the data fit_dft.py
prepares in runs/dft/<system>/data) with the options given, then prints the
8x8x8-mesh and commensurate frequency MAE against DFT and the training's
wall and CPU time, as one JSON line (also written to
runs/dft/sweep/<tag>/result.json; the model is in that folder).

    python examples/dft/finetune_sweep.py --tag full --steps 60 --fconly --repeat 20 --batch 1 --warmup 5
    python examples/dft/finetune_sweep.py --tag late-frozen --steps 60 --fconly --repeat 20 \\
        --batch 1 --warmup 5 --freeze layers.3 layers.4 readout_hidden readout_out

``--anchors N`` adds N rehearsal structures: ``efs-0`` cells (energy, forces,
stress labelled by SevenNet-0) of the teacher data's training split with at
most ``--max-atoms`` atoms and none of the ``--exclude`` elements, every k-th
in name order. ``--anchor-labels original`` relabels them with the model
being fine-tuned, before it is trained (float64; copies in
runs/dft/rehearsal/<model>/, computed once): self-distillation, so the
rehearsal asks the model to keep its own predictions on other chemistries
rather than to move toward SevenNet-0's. ``--eq-anchors N`` adds N relaxed
``eq`` cells the same way (energy, forces, stress only; their force constants
are dropped from the copies), which hold the other chemistries' equilibrium
geometries.

    python examples/dft/finetune_sweep.py --model sevennet-l3i5 --tag l3i5-rehearsal \
        --steps 120 --repeat 100 --batch 2 --warmup 5 --anchors 100 --anchor-labels original \
        --energy 10 --forces 10 --stress 1000
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch

from ase_fcnet.data import unpacked_once
from ase_fcnet.model import load_model
from ase_fcnet.pretrained import model_file
from ase_fcnet.training import TrainConfig, train
from ase_fcnet.training.evaluate import frequency_errors

ROOT = Path(__file__).resolve().parents[2]
TEACHER_TRAIN = unpacked_once(ROOT / "datasets" / "teacher-7net0" / "train.tar.xz",
                              ROOT / "runs" / "teacher-7net0" / "train")


def anchors(n: int, exclude: list[str], max_atoms: int, variant: str = "efs-0") -> list[str]:
    """Folders of n rehearsal structures (see the module docstring)."""
    from ase.formula import Formula

    ok = []
    for base in sorted(q for q in TEACHER_TRAIN.iterdir() if (q / "done.json").is_file()):
        if set(Formula(base.name.split("-")[-1]).count()) & set(exclude):
            continue
        labels = base / variant / "labels.json"
        if labels.is_file() and len(json.loads(labels.read_text())["forces"]) <= max_atoms:
            ok.append(str(base / variant))
    return ok[::max(len(ok) // n, 1)][:n]


def relabelled(folders: list[str], model: str) -> list[str]:
    """Copies of rehearsal folders labelled by ``model`` (energy eV, forces eV/Å, stress eV/Å³)."""
    from ase_fcnet import FCNetCalculator
    from ase_fcnet.data import load_dataset

    calc = FCNetCalculator(model=model, dtype="float64")
    root = ROOT / "runs" / "dft" / "rehearsal" / Path(model).stem
    out = []
    for k, folder in enumerate(folders):
        src = Path(folder)
        dst = root / src.parent.name / src.name
        out.append(str(dst))
        if (dst / "labels.json").is_file():
            continue
        (sample,) = load_dataset(src)
        atoms = sample.atoms.copy()
        atoms.calc = calc
        labels = json.loads((src / "labels.json").read_text())
        labels.update(energy=atoms.get_potential_energy(), forces=atoms.get_forces().tolist(),
                      stress=atoms.get_stress().tolist(), labelled_by=model, force_constants=False)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        if sample.force_constants is not None:   # an eq cell: rehearse its energy, forces, stress only
            without_force_constants(next(tmp.glob("phonopy_params.yaml*")))
        (tmp / "labels.json").write_text(json.dumps(labels))
        tmp.rename(dst)
        print(f"relabelled {k + 1}/{len(folders)}: {src.parent.name}", flush=True)
    return out


def without_force_constants(yaml: Path) -> None:
    """Rewrite a phonopy yaml (``.xz`` too) as its cells only: no displacements, forces or force constants."""
    import phonopy

    phonon = phonopy.load(yaml, produce_fc=False, log_level=0)
    yaml.unlink()
    phonon.save(yaml.parent / "phonopy_params.yaml",
                settings={"force_sets": False, "displacements": False, "force_constants": False})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sevennet-0", help="bundled name or model file")
    p.add_argument("--system", default="si", choices=["si", "nacl"],
                   help="which DFT data (prepared by fit_dft.py's si / nacl systems)")
    p.add_argument("--tag", required=True, help="name of the run (runs/dft/sweep/<tag>)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--factor", type=float, default=1.0, help="optimizer.backbone_lr_factor")
    p.add_argument("--anchor-decay", type=float, default=0.0, help="optimizer.anchor_decay (L2-SP)")
    p.add_argument("--freeze", nargs="*", default=[], help="training.freeze prefixes")
    p.add_argument("--train-species", nargs="*", default=[], help="training.train_species")
    p.add_argument("--probes", type=int, default=1, help="loss.fc_probes")
    p.add_argument("--mode", default="block", help="loss.fc_probe_mode")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--fconly", action="store_true", help="data.force_constants_only")
    p.add_argument("--repeat", type=int, default=1, help="data.fc_repeat")
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--energy", type=float, default=0.01)
    p.add_argument("--forces", type=float, default=1.0)
    p.add_argument("--stress", type=float, default=0.0)
    p.add_argument("--fc", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--anchors", type=int, default=0)
    p.add_argument("--eq-anchors", type=int, default=0,
                   help="also rehearse this many relaxed (eq) cells: energy, forces, stress")
    p.add_argument("--anchor-labels", choices=["teacher", "original"], default="teacher",
                   help="rehearsal labels: the teacher's (SevenNet-0) or the model's own before training")
    p.add_argument("--exclude", nargs="*", default=["Si"])
    p.add_argument("--max-atoms", type=int, default=40)
    p.add_argument("--before", action="store_true", help="also print the model's MAE before")
    a = p.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    folder = ROOT / "runs" / "dft" / {"si": "si-7net0", "nacl": "nacl-7net0"}[a.system] / "data"
    yaml = folder / "phonopy_params.yaml"
    if not yaml.is_file():
        sys.path.insert(0, str(Path(__file__).parent))
        from fit_dft import prepare

        prepare(f"{a.system}-7net0")
    extra = anchors(a.anchors, a.exclude, a.max_atoms) if a.anchors else []
    if a.eq_anchors:
        extra += anchors(a.eq_anchors, a.exclude, a.max_atoms, variant="eq")
    if extra and a.anchor_labels == "original":
        extra = relabelled(extra, a.model)
    if a.before:
        before = frequency_errors(load_model(model_file(a.model)), yaml)["mesh_mae_THz"]
        print("before: mesh MAE", before)
    out = ROOT / "runs" / "dft" / "sweep" / a.tag
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig.from_dict({
        "data": {"paths": [str(folder)] + extra, "validation_fraction": 0.0,
                 "force_constants_only": a.fconly, "fc_repeat": a.repeat},
        "loss": {"energy": a.energy, "stress": a.stress, "forces": a.forces,
                 "force_constants": a.fc, "fc_probes": a.probes, "fc_probe_mode": a.mode},
        "optimizer": {"lr": a.lr, "backbone_lr_factor": a.factor, "ema_decay": a.ema,
                      "anchor_decay": a.anchor_decay},
        "schedule": {"warmup_steps": a.warmup},
        "training": {"init_model": a.model, "max_steps": a.steps, "epochs": 100000,
                     "batch_size": a.batch, "patience": None, "output_dir": str(out),
                     "progress": False, "freeze": a.freeze, "dtype": a.dtype,
                     "train_species": a.train_species}})
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    errors = frequency_errors(result.model.double(), yaml)
    line = {"tag": a.tag, "args": vars(a), "n_anchors": len(extra), "wall_s": round(wall),
            "cpu_s": round(cpu), "mesh_mae": errors["mesh_mae_THz"],
            "comm_mae": errors["commensurate_mae_THz"],
            "last": {k: v for k, v in result.history[-1].items() if "mae" in k}}
    (out / "result.json").write_text(json.dumps(line, indent=1) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
