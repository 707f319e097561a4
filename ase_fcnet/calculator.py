"""ASE calculator wrapping an ase_fcnet energy model (any registered architecture)."""
from __future__ import annotations

import copy
import os
from typing import Callable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ase_fcnet.graph import atoms_to_graph
from ase_fcnet.model import energy_forces_stress, graph_hessian_vector_products, hessian, load_model
from ase_fcnet.model.registry import architecture_name
from ase_fcnet.phonopy_bridge import rows_to_force_constants, unit_vectors

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float64"``/``"float32"`` or a torch dtype → torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return _DTYPES[dtype]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when available, else CPU; others are parsed and checked.

    Raises
    ------
    ValueError
        A string torch does not parse (``"gpu0"``), or a device this machine
        lacks (CUDA or MPS not available, ``cuda:N`` beyond the device count).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name: use cpu, cuda, cuda:N "
                         "(N = GPU number), mps or auto") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device {device} requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ..)")
    elif parsed.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {device} requested but MPS (Apple GPU) is not available "
                             "on this machine")
    elif parsed.type != "cpu":
        raise ValueError(f"device {device!r}: only cpu, cuda, cuda:N, mps and auto are supported")
    return parsed


def resolve_model(model, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """A model object, a model file path, a bundled model's name, or ``None`` (the default).

    ``dtype=None`` takes the model file's recommended dtype (metadata
    ``dtype``, measured per bundled model), else float64.
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        from ase_fcnet.pretrained import model_file

        loaded = load_model(model_file(model), dtype=torch.float64, device=device)
        return loaded.to(dtype=dtype or preferred_dtype(loaded))
    if isinstance(model, torch.nn.Module):
        try:
            architecture_name(model)
        except TypeError as err:
            raise TypeError(f"model must be a model file path, a bundled model's name or an "
                            f"ase_fcnet model; {err}") from None
        copied = copy.deepcopy(model).to(device=device)
        return copied.to(dtype=dtype or preferred_dtype(copied))
    raise TypeError(f"model must be a model file path, a bundled model's name or an ase_fcnet "
                    f"model, got {type(model).__name__}")


def preferred_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype a model's metadata recommends (``"float32"``/``"float64"``), else float64."""
    name = getattr(model, "metadata", {}).get("dtype", "float64")
    return _DTYPES.get(name, torch.float64)


class FCNetCalculator(Calculator):
    """ASE calculator for an ase_fcnet model: energy, forces, stress and the exact Hessian.

    Parameters
    ----------
    model : str, path-like or model, optional
        A bundled model's name (``"sevennet-l3i5"``, ``"sevennet-0"``,
        ``"fcnet-small"``; ``fcnet models`` lists them), a model file written
        by :func:`ase_fcnet.model.save_model`, or a model object of any
        registered architecture (a copy is taken, so the caller's model is
        left as it was). ``None`` uses the default bundled model.
    device : str or torch.device, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``…; ``None``/``"auto"`` picks CUDA when available.
    dtype : {"float64", "float32"}, optional
        Precision of the model and derivatives. ``None`` (default): the
        model's measured recommendation (its metadata ``dtype``), else float64.
    hessian_chunk : int, optional
        Hessian rows per batched backward pass on a GPU (default: sized to free memory).

    Notes
    -----
    Properties: ``energy`` and ``free_energy`` (eV), ``forces`` (N, 3) eV/Å,
    ``stress`` (6,) eV/Å³ (Voigt, ASE sign; periodic cells only), and
    ``hessian`` (3N, 3N) eV/Å² = ∂²E/∂r∂r, computed only when asked for.
    Results are cached until the atoms change, as for any ASE calculator.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "hessian"]

    def __init__(self, model=None, device=None, dtype=None, hessian_chunk=None, **kwargs):
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.model = resolve_model(model, self.device, None if dtype is None else resolve_dtype(dtype))
        self.dtype = next(self.model.parameters()).dtype
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.hessian_chunk = hessian_chunk

    @property
    def species(self) -> list[str]:
        """Chemical symbols the model knows."""
        return list(self.model.species)

    def _graph(self, atoms: Atoms):
        # positions, cell and derivatives in float64 whatever the model's dtype: the
        # model casts edge vectors to its own precision (r_j − r_i stays exact)
        return atoms_to_graph(atoms, self.model.cutoff, self.model.species,
                              dtype=torch.float64, device=self.device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        graph = self._graph(atoms)
        out = energy_forces_stress(self.model, graph, forces=True, stress=want_stress)
        energy = float(out["energy"].item())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].detach().cpu().numpy().astype(float)
        if want_stress:
            self.results["stress"] = out["stress"][0].detach().cpu().numpy().astype(float)
        if "hessian" in properties:
            h = hessian(self.model, graph, self.hessian_chunk)
            self.results["hessian"] = h.cpu().numpy().astype(float)

    def get_hessian(self, atoms: Atoms | None = None) -> np.ndarray:
        """Exact Hessian ∂²E/∂r∂r, ndarray shape (3N, 3N), eV/Å²."""
        return self.get_property("hessian", atoms)

    def hessian_vector_products(
        self,
        atoms: Atoms,
        vectors: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Exact directional derivatives H·v of the forces for each direction v.

        Parameters
        ----------
        atoms : Atoms
            Structure of N atoms (e.g. a phonopy supercell).
        vectors : ndarray, shape (K, N, 3)
            Directions, Å.
        progress : callable(done, total), optional

        Returns
        -------
        ndarray, shape (K, N, 3), eV/Å² × Å — ``−(dF/dλ)`` for r → r + λv.
        """
        vectors = np.asarray(vectors, dtype=float)
        if vectors.ndim != 3 or vectors.shape[1:] != (len(atoms), 3):
            raise ValueError(f"vectors must have shape (K, {len(atoms)}, 3), got {vectors.shape}")
        graph = self._graph(atoms)
        v = torch.as_tensor(vectors, dtype=torch.float64, device=self.device)
        out = graph_hessian_vector_products(self.model, graph, v, self.hessian_chunk, progress)
        return out.cpu().numpy().astype(float)

    def force_constant_rows(self, atoms: Atoms, indices: Sequence[int]) -> np.ndarray:
        """Force-constant rows Φ[i] for the atoms in ``indices``.

        Returns
        -------
        ndarray, shape (len(indices), N, 3, 3), eV/Å² — Φ[k, j, a, b] = ∂²E/∂r_ia ∂r_jb
        """
        vectors = unit_vectors(indices, len(atoms))
        return rows_to_force_constants(self.hessian_vector_products(atoms, vectors))
