"""SwiGLU activation silu(gate) * up over a fused [gate | up] projection (Triton, custom op)."""

from redpajama.kernels.swiglu.swiglu import swiglu

__all__ = ["swiglu"]
