"""BLAS/LAPACK threads for phonopy's steps: time of one dynamical-matrix diagonalisation.

A P1 cell of N atoms gives 3N × 3N complex Hermitian dynamical matrices, one
``eigh`` per q-point of the band path. This times ``numpy.linalg.eigh`` of such
a matrix (random, Hermitian) with torch imported and its thread pool warmed up
(as in ``fcnet phonons``), for each BLAS thread limit given, and optionally the
band structure of a finished ``fcnet phonons`` output folder (phonopy.yaml with
force constants) on a few q-points.

    python benchmarks/blas_threads_eigh.py --size 1080 --threads 0 1 2
    python benchmarks/blas_threads_eigh.py --folder phonons_p1 --qpoints 6 --threads 0 1 2

``0`` means no limit (the library's default thread count).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _eigh_seconds(size: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))
    matrix = matrix + matrix.conj().T
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.linalg.eigh(matrix)
        times.append(time.perf_counter() - start)
    return times


def _band_seconds(folder: str, n_q: int) -> float:
    import phonopy

    phonon = phonopy.load(f"{folder}/phonopy.yaml", log_level=0)
    path = [np.linspace([0, 0, 0], [0.5, 0, 0], n_q)]
    start = time.perf_counter()
    phonon.run_band_structure(path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1080, help="matrix size 3N")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folder", default=None, help="fcnet phonons output folder")
    parser.add_argument("--qpoints", type=int, default=6)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    x = torch.randn(256, 256)
    for _ in range(20):  # torch's OpenMP pool awake, as after the force constants
        x @ x
    print("thread pools:", [(p["internal_api"], p["num_threads"]) for p in threadpool_info()],
          "torch threads:", torch.get_num_threads())
    for limit in args.threads:
        with threadpool_limits(limits=limit or None, user_api="blas"):
            if args.folder:
                seconds = _band_seconds(args.folder, args.qpoints)
                print(f"BLAS threads {limit or 'default'}: band structure, {args.qpoints} q-points: "
                      f"{seconds:.2f} s ({seconds / args.qpoints:.2f} s per q-point)")
            else:
                times = _eigh_seconds(args.size, args.repeats)
                print(f"BLAS threads {limit or 'default'}: eigh {args.size}x{args.size} complex: "
                      + ", ".join(f"{t:.2f} s" for t in times))


if __name__ == "__main__":
    main()
