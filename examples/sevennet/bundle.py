"""Convert the pretrained SevenNet checkpoints and bundle them into the package.

    pip install "ase_fcnet[sevennet]"
    python examples/sevennet/bundle.py

Writes ``ase_fcnet/models/sevennet-l3i5.pt`` and ``sevennet-0.pt``: the
weights of the sevenn wheel's checkpoints (float32 numbers, stored as
float32: nothing is rounded), their provenance, licence and citation, and the
measured numbers of ``docs/sevennet/metrics.json`` when that file exists
(written by ``examples/sevennet/measure.py``): recommended dtype and accuracy
against DFT. ``fcnet models`` shows them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ase_fcnet.model import save_model
from ase_fcnet.model.sevennet import convert_sevennet

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "ase_fcnet" / "models"
METRICS = ROOT / "docs" / "sevennet" / "metrics.json"

SMOOTHNESS = {
    "sevennet-l3i5": "polynomial cutoff envelope (p = 6): energy C2 in positions, force "
                     "constants continuous as neighbours cross the 5 A cutoff",
    "sevennet-0": "XPLOR switch from 4.5 to 5 A: energy only C1 there, force constants jump "
                  "when a neighbour distance crosses 4.5 A or 5 A",
}


def main() -> None:
    measured = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    for name in ("sevennet-l3i5", "sevennet-0"):
        model, metadata = convert_sevennet(name)
        info = measured.get(name, {})
        metadata.update({
            "model_card": "docs/models.md",
            "smoothness": SMOOTHNESS[name],
            "dtype": info.get("dtype", "float64"),
        })
        if "metrics" in info:
            metadata["metrics"] = info["metrics"]
        out = MODELS / f"{name}.pt"
        save_model(model.float(), out, metadata=metadata)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
