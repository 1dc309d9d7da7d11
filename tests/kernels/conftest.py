"""Kernel tests run the Triton kernels in the CPU interpreter when no CUDA device is present.

TRITON_INTERPRET is read when a kernel is decorated (at import of its module); tests/conftest.py
sets it before collection, and this file repeats it for runs of this folder alone from elsewhere.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Where the kernels run: the tests put their inputs there.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def device() -> str:
    return DEVICE
