import os
from pathlib import Path

import pytest

# Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when any module (the model's too)
# first imports redpajama.kernels; set it before any test module is collected. Without an NVIDIA
# device the kernels run in Triton's CPU interpreter.
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real-data folder ../shared/data next to the repository."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found: {path}")
    return path
