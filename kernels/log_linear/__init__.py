"""Log-linear attention / log-linear Mamba-2 (Guo et al. 2025): Fenwick level masks and a quadratic
reference. No Triton kernel yet."""

from redpajama.kernels.log_linear.masks import level_matrix, num_levels, weighted_mask
from redpajama.kernels.log_linear.naive import log_linear_quadratic

__all__ = ["level_matrix", "log_linear_quadratic", "num_levels", "weighted_mask"]
