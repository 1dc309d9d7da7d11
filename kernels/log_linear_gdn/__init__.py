"""Log-linear Gated DeltaNet (Guo et al. 2025): closed-form and recurrent references, the chunked
O(T log T) PyTorch path (`log_linear_gdn_chunked`, differentiable by autograd), the op with Triton
bucket passes (`log_linear_gdn`: per-chunk terms in PyTorch, the Fenwick bucket states and their
reads in Triton, forward and backward) and the O(log T) decoding step (`log_linear_gdn_step`)."""

from redpajama.kernels.log_linear_gdn.chunked import log_linear_gdn_chunked
from redpajama.kernels.log_linear_gdn.log_linear_gdn import log_linear_gdn
from redpajama.kernels.log_linear_gdn.naive import (
    gdn_matrix,
    log_linear_gdn_quadratic,
    log_linear_gdn_recurrent,
    log_linear_gdn_step,
)

__all__ = [
    "gdn_matrix",
    "log_linear_gdn",
    "log_linear_gdn_chunked",
    "log_linear_gdn_quadratic",
    "log_linear_gdn_recurrent",
    "log_linear_gdn_step",
]
