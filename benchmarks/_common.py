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


def kernel_times(fn, calls: int = 3) -> dict[str, tuple[float, int]]:
    """GPU kernels of `calls` calls of fn under the torch profiler: name -> (ms per call, launches
    per call). For finding where time goes, not for the benchmark's figure (the profiler adds
    overhead to the host side)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    out = {}
    for event in prof.key_averages():
        us = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
        if us > 0 and event.device_type == torch.autograd.DeviceType.CUDA:
            out[event.key] = (us / 1e3 / calls, event.count // calls)
    return out


def print_kernel_times(named: dict[str, dict[str, tuple[float, int]]], rows: int = 25) -> None:
    """Kernel times (`kernel_times`) of one or more runs side by side: one run sorted by time, several
    by the largest spread between them."""
    names = list(named)
    keys = set().union(*(set(times) for times in named.values()))

    def order(key):
        values = [named[n].get(key, (0.0, 0))[0] for n in names]
        return max(values) - min(values) if len(names) > 1 else values[0]

    totals = "  ".join(
        f"{n} {sum(ms for ms, _ in named[n].values()):.2f} ms in {sum(k for _, k in named[n].values())} launches"
        for n in names
    )
    print(f"GPU kernels per call: {totals}")
    print("  ".join(f"{n[:14]:>14} ms  n" for n in names) + "  kernel")
    for key in sorted(keys, key=order, reverse=True)[:rows]:
        cells = "  ".join(
            f"{named[n].get(key, (0.0, 0))[0]:>17.3f}  {named[n].get(key, (0.0, 0))[1]:>2}" for n in names
        )
        print(f"{cells}  {key[:110]}")
