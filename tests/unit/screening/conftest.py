"""Fixtures of the screening tests (helpers in screening_helpers.py)."""
import pytest
from screening_helpers import write_inputs


@pytest.fixture(scope="session")
def inputs_dir(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("screen_inputs"))
