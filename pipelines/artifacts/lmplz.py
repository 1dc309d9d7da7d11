"""KenLM's `lmplz`, when it is on PATH: the estimator for Wikipedia-sized text.

Our pure-Python estimator (kneser_ney.py) gives the same ARPA on small corpora; lmplz streams
counts to disk, so it is the one to use for CCNet-scale training sets.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def find_lmplz() -> str | None:
    return shutil.which("lmplz")


def run_lmplz(text_file: Path, arpa: Path, order: int, prune: Sequence[int], memory: str = "20%") -> None:
    """Estimate with lmplz; our prune list is minimum counts, lmplz prunes counts <= its thresholds."""
    binary = find_lmplz()
    if binary is None:
        raise FileNotFoundError("lmplz")
    thresholds = [str(max(0, m - 1)) for m in prune]
    thresholds[0] = "0"  # lmplz cannot prune unigrams
    command = [binary, "-o", str(order), "-S", memory, "--discount_fallback", "--text", str(text_file)]
    command += ["--arpa", str(arpa)]
    if any(t != "0" for t in thresholds):
        command += ["--prune", *thresholds]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
