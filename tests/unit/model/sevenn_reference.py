"""sevenn's own model as a reference, in float32 (as shipped) or float64.

sevenn evaluates in float32: its one-hot embedding and graph tensors are cast
to float32 whatever the model's dtype. For a float64 reference the model is
converted with ``.double()``, its Wigner-3j buffers (stored rounded to float32
in the checkpoint) are replaced by e3nn's float64 values of the same sign, and
the graph is built in float64 here; the layers and their order are sevenn's.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

sevenn = pytest.importorskip("sevenn")
import sevenn._keys as KEY  # noqa: E402
import sevenn.util  # noqa: E402
from e3nn import o3  # noqa: E402
from sevenn.atom_graph_data import AtomGraphData  # noqa: E402
from sevenn.calculator import SevenNetCalculator  # noqa: E402
from sevenn.nn.node_embedding import OnehotEmbedding  # noqa: E402
from sevenn.train.dataload import unlabeled_atoms_to_graph  # noqa: E402


def float32_calculator(name: str, modal: str | None = None) -> SevenNetCalculator:
    """sevenn's ASE calculator on a pretrained checkpoint, as users run it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"modal": modal} if modal else {}
        return SevenNetCalculator(name, device="cpu", **kwargs)


def float64_model(name: str):
    """sevenn's model of a pretrained checkpoint in float64 (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpoint = sevenn.util.load_checkpoint(name)
        model = checkpoint.build_model()
    model.set_is_batch_data(False)
    model = model.double().eval()
    for buf_name, buf in model.named_buffers():
        leaf = buf_name.rsplit(".", 1)[-1]
        if leaf.startswith("_w3j_"):
            l1, l2, l3 = (int(x) for x in leaf[5:].split("_"))
            exact = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
            buf.data = torch.sign((buf * exact).sum()) * exact
    return model, checkpoint.config["cutoff"]


def evaluate_float64(model, cutoff: float, atoms, modal: str | None = None):
    """Energy (eV), forces (N, 3) eV/Å and stress (6,) eV/Å³ (ASE order and sign)."""
    data = unlabeled_atoms_to_graph(atoms, cutoff)
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
            data[key] = value.double() if value.is_floating_point() else value.long()
        elif isinstance(value, float):
            data[key] = torch.tensor(value, dtype=torch.float64)
        elif isinstance(value, int):
            data[key] = torch.tensor(value)
    graph = AtomGraphData(**data)
    if modal:
        graph[KEY.DATA_MODALITY] = modal
    original = OnehotEmbedding.forward

    def forward64(self, d):
        d = original(self, d)
        for key in (self.key_output, self.key_additional_output):
            if key is not None:
                d[key] = d[key].double()
        return d

    OnehotEmbedding.forward = forward64
    try:
        out = model(graph)
    finally:
        OnehotEmbedding.forward = original
    stress = -out[KEY.PRED_STRESS].detach().numpy()[[0, 1, 2, 4, 5, 3]]
    return (float(out[KEY.PRED_TOTAL_ENERGY]), out[KEY.PRED_FORCE].detach().numpy(), stress)
