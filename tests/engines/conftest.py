"""Fixtures shared by the engine tests (Ray, Beam); engine-specific helpers live in <engine>_helpers.py."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_inputs() -> Path:
    """The small mixed-format inputs every engine's parity test ingests."""
    return REPO_ROOT / "data" / "samples" / "inputs"
