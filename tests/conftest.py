"""Shared pytest fixtures: a hermetic environment, a synthetic data folder, the real shared data."""

import os
from pathlib import Path

import pytest

from tests.support.synthetic import write_data_dir
from tests.support.tiny_model import build_tiny_model

# The real benchmark files live beside the checkout (../shared/data), never inside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def clean_env(monkeypatch):
    """Unset every MEDREASON_* variable so that a developer's own data settings cannot leak into a test."""
    for name in list(os.environ):
        if name.startswith("MEDREASON_"):
            monkeypatch.delenv(name)


@pytest.fixture
def synthetic_data(tmp_path) -> dict:
    """A synthetic data folder laid out like shared/data (see synthetic.write_data_dir for what it returns)."""
    return write_data_dir(tmp_path / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark files, or a skip saying where they were expected."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark files not found at {SHARED_DATA} (CI has shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Qwen2 model and BPE tokenizer built locally (see tiny_model.py), shared by the session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
