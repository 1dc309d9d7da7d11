"""What every benchmark records about the machine and the package versions it timed."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for package in packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def quiet_datatrove() -> None:
    """datatrove logs every sandbox start/stop at INFO; its import installs a stderr handler."""
    try:
        import datatrove.utils.logging  # noqa: F401
        from loguru import logger
    except ImportError:
        return
    logger.remove()
    logger.add(sys.stderr, level="ERROR")


def gpu_ms(fn, eager: bool = False) -> float:
    """Median ms of fn replayed from a CUDA graph: GPU time, what a compiled or captured step sees.
    With eager (or when fn cannot be captured, said on stderr) fn is called from Python instead,
    which adds each call's launch and autograd overhead: for sub-millisecond ops that overhead can
    exceed the kernels' own time. fn runs once first, outside the timing (compilation)."""
    import torch
    from triton.testing import do_bench, do_bench_cudagraph

    fn()
    torch.cuda.synchronize()
    if not eager:
        try:
            return do_bench_cudagraph(fn, return_mode="median")
        except Exception as err:  # noqa: BLE001 - not capturable: the eager time, said so
            print(f"CUDA graph capture failed ({type(err).__name__}: {err}); timing eagerly", file=sys.stderr)
    return do_bench(fn, return_mode="median")
