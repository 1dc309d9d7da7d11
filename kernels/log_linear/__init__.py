"""Log-linear attention / log-linear Mamba-2 (Guo et al. 2025): Fenwick level masks, a quadratic
reference, the chunked O(T log T) PyTorch path (`log_linear_chunked`, differentiable by autograd), and a
Triton forward and backward (`log_linear`)."""

from redpajama.kernels.log_linear.chunked import log_linear_chunked
from redpajama.kernels.log_linear.log_linear import log_linear
from redpajama.kernels.log_linear.masks import level_matrix, num_levels, weighted_mask
from redpajama.kernels.log_linear.naive import log_linear_quadratic

__all__ = [
    "level_matrix",
    "log_linear",
    "log_linear_chunked",
    "log_linear_quadratic",
    "num_levels",
    "weighted_mask",
]
