"""Experiment: the SiC run of config_sic_set.yaml trained on the force-constant samples only.

Tests one suspected cause of the underfit SiC model: in data/tersoff_sic/train
only one sample per structure (59 of 1764 in the training split) carries force
constants; the rest are displaced supercells with forces and energies. Here the
displaced supercells are dropped, so every batch carries force constants. Same
model, loss weights and split rule as config_sic_set.yaml; by default 441 steps, the
length of that run's first epoch (each step costs about 4 s on 2 threads
here, as every batch now holds four 216-atom force-constant samples).

    python examples/sic_tersoff/fc_only.py [--steps 441] [--resume]   # writes runs/sic_tersoff_fc_only/model.pt
    fcnet evaluate runs/sic_tersoff_fc_only/model.pt data/tersoff_sic/held-out --frequencies

``--no-switching-zone`` also drops the training structures with atom pairs in
the reference's cutoff switching zone (see switching_zone.py) and writes
runs/sic_tersoff_fc_only_no_zone/ instead. Any other ``--steps`` than 441 appends
``_<steps>`` to the folder name; ``--resume`` continues an interrupted run of the
same folder from its last.pt.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from switching_zone import pairs_in_zone, switching_zones

from ase_fcnet.data import load_dataset
from ase_fcnet.training import TrainConfig, train

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=441)
    p.add_argument("--no-switching-zone", action="store_true",
                   help="drop structures with pairs in the reference's cutoff switching zone")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last.pt")
    args = p.parse_args()
    name = "sic_tersoff_fc_only_no_zone" if args.no_switching_zone else "sic_tersoff_fc_only"
    if args.steps != 441:
        name += f"_{args.steps}"
    cfg = TrainConfig.from_yaml(HERE / "config_sic_set.yaml")
    cfg = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, force_constants_only=True),
        training=dataclasses.replace(cfg.training, max_steps=args.steps,
                                     output_dir=str(ROOT / "runs" / name)))
    samples = load_dataset(cfg.data.paths)
    if args.no_switching_zone:  # only force-constant samples are trained on: check just those
        zones = switching_zones()
        kept = [s for s in samples if s.force_constants is None
                or sum(pairs_in_zone(s.atoms, zones).values()) == 0]
        print(f"dropped {len(samples) - len(kept)} force-constant samples with pairs in a switching zone")
        samples = kept
    result = train(cfg, samples, resume=args.resume)  # keeps the samples with force constants
    print(f"{result.steps} steps; model written to {cfg.training.output_dir}/model.pt")


if __name__ == "__main__":
    main()
