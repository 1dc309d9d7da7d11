"""Mixture-of-experts: routing (top-K and token rounding), Triton grouped-GEMM kernels, naive reference."""
