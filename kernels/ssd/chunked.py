"""The chunked SSD algorithm (Mamba-2, "state space duality") in plain PyTorch, differentiable by
autograd. Same arguments and shapes as `redpajama.kernels.ssd.naive`.

The sequence is cut into chunks of `chunk_size` tokens (T is padded with dt = 0, x = B = C = 0, which
neither decays nor feeds the state, and the padding is cut from the output):
1. intra-chunk output: the quadratic form restricted to each chunk's (chunk, chunk) diagonal block;
2. chunk states: S_c = sum_{s in c} exp(a_end - a_s) dt_s B_s x_s^T, with a the in-chunk cumsum of dt A;
3. state passing: the state entering chunk c is h_c = exp(sum of dt A over chunk c-1) h_{c-1} + S_{c-1};
4. output from states: y_t += exp(a_t) C_t^T h_c for t in chunk c.
It is the layout of the Triton kernels in `ssd.py` (which recompute through this path for backward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.ssd.naive import expand_groups, segsum


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    chunk_size: int = 64,
    return_final_state: bool = False,
):
    """y (B, T, H, P) [and the final state (B, H, N, P)], computed chunk by chunk (see the module doc)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    b, t, h, p = x.shape
    bm, cm = expand_groups(Bm, h), expand_groups(Cm, h)
    n = bm.shape[-1]
    nc = -(-t // chunk_size)
    pad = nc * chunk_size - t
    if pad:
        x_, dt_ = F.pad(x, (0, 0, 0, 0, 0, pad)), F.pad(dt, (0, 0, 0, pad))
        bm, cm = F.pad(bm, (0, 0, 0, 0, 0, pad)), F.pad(cm, (0, 0, 0, 0, 0, pad))
    else:
        x_, dt_ = x, dt
    cl = chunk_size
    xc = x_.reshape(b, nc, cl, h, p)
    dtc = dt_.reshape(b, nc, cl, h)
    bc, cc = bm.reshape(b, nc, cl, h, n), cm.reshape(b, nc, cl, h, n)
    xdt = xc * dtc[..., None]
    a = (dtc * A).permute(0, 3, 1, 2)  # (B, H, NC, L)
    a_cs = torch.cumsum(a, dim=-1)

    # 1. intra-chunk (diagonal blocks).
    decay = torch.exp(segsum(a))  # (B, H, NC, L, L)
    y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", cc, bc, decay, xdt)
    # 2. each chunk's own contribution to the state at its end.
    decay_states = torch.exp(a_cs[..., -1:] - a_cs)  # (B, H, NC, L)
    states = torch.einsum("bclhn,bhcl,bclhp->bchnp", bc, decay_states, xdt)
    # 3. state passing: states entering chunks 0..NC (the last is the final state). Written as a
    # (NC+1, NC+1) decay matrix over the chunk totals, as in Mamba-2's reference "ssd_minimal".
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    chunk_decay = torch.exp(segsum(F.pad(a_cs[..., -1], (1, 0))))  # (B, H, NC+1, NC+1)
    entering = torch.einsum("bhzc,bchnp->bzhnp", chunk_decay, states)
    h_in, final = entering[:, :-1], entering[:, -1]
    # 4. output from the state entering each chunk.
    y_off = torch.einsum("bclhn,bchnp,bhcl->bclhp", cc, h_in, torch.exp(a_cs))
    y = (y_diag + y_off).reshape(b, nc * cl, h, p)[:, :t] + D[:, None] * x
    return (y, final) if return_final_state else y
