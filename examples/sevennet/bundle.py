"""Convert the pretrained SevenNet checkpoints and bundle them into the package.

    pip install "ase_fcnet[sevennet]"
    python examples/sevennet/bundle.py

Writes ``ase_fcnet/pretrained/sevennet-l3i5.pt`` and ``sevennet-0.pt``: the
weights of the sevenn wheel's checkpoints (float32 numbers, stored as
float32: nothing is rounded), their provenance, licence and citation, and the
measured numbers of ``docs/sevennet/metrics.json`` when that file exists
(written by ``examples/sevennet/measure.py``): recommended dtype and accuracy
against DFT; and the cost per call of ``docs/benchmarks/sevennet_speed.json``
(``benchmarks/sevennet_speed.py``). ``fcnet models`` shows them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ase_fcnet.model import save_model
from ase_fcnet.model.sevennet import convert_sevennet

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "ase_fcnet" / "pretrained"
METRICS = ROOT / "docs" / "sevennet" / "metrics.json"
SPEED = ROOT / "docs" / "benchmarks" / "sevennet_speed.json"


def cost(name: str) -> dict | None:
    """Seconds per call on 64-atom NaCl, float32, 1 thread (benchmarks/sevennet_speed.py)."""
    if not SPEED.exists():
        return None
    for run in json.loads(SPEED.read_text())["timing"]:
        if run["model"] == name and run["threads"] == 1:
            case = next(c for c in run["cases"] if c["atoms"] == 64)
            return {"energy_forces_s": round(case["median_s"]["ours_ef"], 3),
                    "hessian_vector_product_s": round(case["median_s"]["ours_hvp32"], 3),
                    "setting": "64-atom NaCl, float32, 1 thread, 2-core CPU (median)",
                    "measured_by": "benchmarks/sevennet_speed.py"}
    return None

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
        if cost(name):
            metadata["cost"] = cost(name)
        out = MODELS / f"{name}.pt"
        save_model(model.float(), out, metadata=metadata)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
