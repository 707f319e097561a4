"""Model files bundled with the package (``ase_fcnet/models/*.pt``)."""
from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent

#: Name of the model used when none is given.
DEFAULT_MODEL = "default"


class NoModelError(FileNotFoundError):
    """No model was given and none is bundled under that name."""


def bundled_models() -> dict[str, Path]:
    """Names and paths of the bundled model files."""
    return {p.stem: p for p in sorted(MODEL_DIR.glob("*.pt"))}


def default_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a bundled model; a clear error when there is none."""
    models = bundled_models()
    if name in models:
        return models[name]
    raise NoModelError(
        f"no model given and no bundled model named {name!r} "
        f"(bundled: {sorted(models) or 'none'}). Pass one explicitly, e.g. "
        "FCNetCalculator(model='examples/si_sw/model.pt') or `fcnet phonons STRUCTURE --model PATH`."
    )
