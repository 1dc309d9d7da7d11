"""Fixtures of the dedup tests."""

import numpy as np
import pytest


@pytest.fixture
def random_signatures():
    def make(n: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 2**32, size=(n, 128), dtype=np.uint32)

    return make
