"""Measure the bundled models: accuracy against DFT, float32 against float64, cost per call.

    python examples/sevennet/measure.py            # about 10 min on 2 cores

For each bundled model (sevennet-l3i5, sevennet-0, fcnet-small):

1. Against real DFT (../shared/data/dft: Si, NaCl; phonopy's distribution): the
   model's exact force constants on the DFT supercell against the DFT ones,
   frequency MAE along the band path and on a 20×20×20 mesh (THz), in float64
   and float32, with figures docs/sevennet/<model>_<system>_bands.png.
2. Precision: the largest |f(float32) − f(float64)| over the band path and the
   mesh (THz). A model's default dtype is float32 only where that stays within
   0.01 THz on both systems and float32 is faster.
3. Cost: energy+forces and one Hessian-vector product on 64-atom rock-salt
   NaCl, 1 torch thread, median of 5 after a warm-up (s).

Writes docs/sevennet/metrics.json; examples/sevennet/bundle.py stores the
numbers in the model files (``fcnet models`` shows them) and docs/models.md
quotes them.
"""
from __future__ import annotations

import json
import lzma
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from ase_fcnet import FCNetCalculator
from ase_fcnet.model import load_model
from ase_fcnet.pretrained import model_file
from ase_fcnet.phonons.analysis import band_structure
from ase_fcnet.phonons.plotting import plot_band_comparison
from ase_fcnet.training.evaluate import mesh_mae, model_phonopy, reference_phonopy

ROOT = Path(__file__).resolve().parents[2]
DFT = ROOT.parent / "shared" / "data" / "dft"
DOCS = ROOT / "docs" / "sevennet"
SYSTEMS = {"Si": "Si_phonopy_params.yaml", "NaCl": "NaCl_rd_phonopy_params.yaml.xz"}
MODELS = ("sevennet-l3i5", "sevennet-0", "fcnet-small")
MESH = [20, 20, 20]
#: float32 is the default only if frequencies stay this close to float64 (THz).
FLOAT32_TOLERANCE_THZ = 0.01


def dft_yaml(system: str, folder: Path) -> Path:
    src = DFT / SYSTEMS[system]
    dst = folder / f"{system}_phonopy_params.yaml"
    dst.write_bytes(lzma.decompress(src.read_bytes()) if src.suffix == ".xz" else src.read_bytes())
    return dst


def frequencies(phonon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band-path frequencies (flattened), mesh weights and mesh frequencies, THz."""
    band = band_structure(phonon)
    phonon.run_mesh(MESH, is_gamma_center=True)
    return (np.concatenate([np.ravel(f) for f in band.frequencies]),
            np.asarray(phonon.mesh.weights, float), np.asarray(phonon.mesh.frequencies))


def median_time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cost(name: str) -> dict:
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    atoms.rattle(0.02, seed=1)
    out = {}
    for dtype in ("float32", "float64"):
        calc = FCNetCalculator(name, dtype=dtype, device="cpu")
        v = np.zeros((1, len(atoms), 3))
        v[0, 0, 0] = 1.0

        def energy_forces():
            calc.reset()
            calc.get_forces(atoms)

        out[f"energy_forces_{dtype}_s"] = median_time(energy_forces)
        out[f"hvp_row_{dtype}_s"] = median_time(lambda: calc.hessian_vector_products(atoms, v))
    return out


def measure(name: str, yamls: dict) -> dict:
    result = {"dft": {}, "float32_vs_float64_max_THz": 0.0}
    for system, yaml in yamls.items():
        ref, calc_name = reference_phonopy(yaml)
        f_ref = frequencies(ref)
        bands = {"DFT": band_structure(ref)}
        per_dtype = {}
        for dtype in (torch.float64, torch.float32):
            model = load_model(model_file(name), dtype=dtype, device="cpu")
            start = time.perf_counter()
            phonon = model_phonopy(model, ref, calc_name, yaml)
            seconds = time.perf_counter() - start
            f = frequencies(phonon)
            label = str(dtype).split(".")[-1]
            per_dtype[label] = f
            if label == "float64":
                bands[name] = band_structure(phonon)
            result["dft"].setdefault(system, {})[label] = {
                "band_path_mae_THz": float(np.abs(f[0] - f_ref[0]).mean()),
                "mesh_mae_THz": mesh_mae(f_ref[1], f_ref[2], f[2]),
                "min_mesh_THz": float(f[2].min()), "force_constants_s": seconds,
            }
        diff = max(float(np.abs(per_dtype["float32"][0] - per_dtype["float64"][0]).max()),
                   float(np.abs(per_dtype["float32"][2] - per_dtype["float64"][2]).max()))
        result["dft"][system]["float32_vs_float64_max_THz"] = diff
        result["float32_vs_float64_max_THz"] = max(result["float32_vs_float64_max_THz"], diff)
        DOCS.mkdir(parents=True, exist_ok=True)
        plot_band_comparison(bands, DOCS / f"{name}_{system}_bands.png",
                             title=f"{system}: {name} vs DFT (same {len(ref.supercell)}-atom supercell)")
        print(f"{name} {system}: {json.dumps(result['dft'][system])}", flush=True)
    return result


def main() -> None:
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        yamls = {system: dft_yaml(system, Path(tmp)) for system in SYSTEMS}
        for name in MODELS:
            result = measure(name, yamls)
            result["cost"] = cost(name)
            faster = result["cost"]["energy_forces_float32_s"] < result["cost"]["energy_forces_float64_s"]
            close = result["float32_vs_float64_max_THz"] <= FLOAT32_TOLERANCE_THZ
            result["dtype"] = "float32" if (faster and close) else "float64"
            result["metrics"] = {f"{s}_dft_band_path_mae_THz": round(v["float64"]["band_path_mae_THz"], 4)
                                 for s, v in result["dft"].items()}
            result["metrics"].update({f"{s}_dft_mesh_mae_THz": round(v["float64"]["mesh_mae_THz"], 4)
                                      for s, v in result["dft"].items()})
            out[name] = result
            print(f"{name}: dtype {result['dtype']}, cost {result['cost']}", flush=True)
    (DOCS / "metrics.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {DOCS / 'metrics.json'}")


if __name__ == "__main__":
    main()
