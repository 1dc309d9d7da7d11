"""RMSNorm and fused residual-add + RMSNorm over rows of up to 8192 values (Triton, custom ops)."""

from redpajama.kernels.rmsnorm.rmsnorm import add_rmsnorm, rmsnorm

__all__ = ["add_rmsnorm", "rmsnorm"]
