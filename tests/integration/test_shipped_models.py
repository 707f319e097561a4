"""Model files shipped in the repository carry no machine's absolute paths."""
from pathlib import Path

import pytest

from ase_fcnet.model import read_model_file

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted(p for p in [*ROOT.glob("examples/**/model.pt"), *ROOT.glob("ase_fcnet/models/*.pt")])


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("path", MODELS, ids=[str(p.relative_to(ROOT)) for p in MODELS])
def test_metadata_has_no_absolute_paths(path):
    metadata = read_model_file(path).get("metadata") or {}
    absolute = [s for s in _strings(metadata) if s.startswith(("/", "~")) or s[1:3] == ":\\"]
    assert not absolute, f"{path.name} metadata holds absolute paths: {absolute}"
