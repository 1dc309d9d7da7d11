"""The chunked SSD algorithm (Mamba-2, "state space duality") in plain PyTorch, differentiable by
autograd. Same arguments and shapes as `redpajama.kernels.ssd.naive`.

The sequence is cut into chunks of `chunk_size` tokens (T is padded with dt = 0, x = B = C = 0, which
neither decays nor feeds the state, and the padding is cut from the output):
1. intra-chunk output: the quadratic form restricted to each chunk's (chunk, chunk) diagonal block;
2. chunk states: S_c = sum_{s in c} exp(a_end - a_s) dt_s B_s x_s^T, with a the in-chunk cumsum of dt A;
3. state passing: the state entering chunk c is h_c = exp(sum of dt A over chunk c-1) h_{c-1} + S_{c-1};
4. output from states: y_t += exp(a_t) C_t^T h_c for t in chunk c.
It is the layout of the Triton kernels in `ssd.py`; `ssd_chunked_bwd` writes out the backward that
their backward kernels implement.
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
    nc, cl = -(-t // chunk_size), chunk_size
    xc, dtc, bc, cc = (chunk_views(v, nc, cl) for v in (x, dt, bm, cm))
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


def chunk_views(v: torch.Tensor, nc: int, cl: int) -> torch.Tensor:
    """(B, T, ...) -> (B, NC, L, ...), zero-padded at the end of T to NC chunks of L."""
    pad = nc * cl - v.shape[1]
    if pad:
        v = F.pad(v, (0,) * (2 * (v.dim() - 2)) + (0, pad))
    return v.reshape(v.shape[0], nc, cl, *v.shape[2:])


def ssd_chunked_bwd(x, dt, A, Bm, Cm, D, d_y, d_final=None, chunk_size: int = 64):
    """The SSD backward written out by hand, chunk by chunk (no autograd): the formulas the Triton
    backward in `ssd.py` implements, kept here in PyTorch so they are checked against autograd on
    their own. Returns (dx, ddt, dA, dBm, dCm, dD) in the inputs' dtype (compute in it too).

    Per head, chunk c with in-chunk cumsum a of dt A, total L = a_end, entering state H_c:
    - reverse state passing: the gradient of the state after chunk c is dS_c = dH_{c+1},
      dH_NC = d_final, dH_c = sum_{t in c} exp(a_t) C_t dy_t^T + exp(L_c) dH_{c+1};
    - with W = (C B^T) * exp(segsum a) (causal) and Gm = dy x^T, everything else is local to a chunk.
    """
    b, t, h, p = x.shape
    cl = chunk_size
    nc = -(-t // cl)
    bm, cm = expand_groups(Bm, h), expand_groups(Cm, h)
    xc, dtc, dyc = chunk_views(x, nc, cl), chunk_views(dt, nc, cl), chunk_views(d_y, nc, cl)
    bc, cc = chunk_views(bm, nc, cl), chunk_views(cm, nc, cl)
    a_cs = torch.cumsum(dtc * A, dim=2)  # (B, NC, L, H)
    last = a_cs[:, :, -1]  # (B, NC, H); padding has dt = 0, so the last row is the chunk total
    # Forward state passing (the Triton forward saves these entering states).
    s_loc = torch.einsum("bclhn,bclh,bclhp->bchnp", bc, torch.exp(last[:, :, None] - a_cs) * dtc, xc)
    h_in, state = [], x.new_zeros(b, h, bm.shape[-1], p)
    for c in range(nc):
        h_in.append(state)
        state = torch.exp(last[:, c])[..., None, None] * state + s_loc[:, c]
    h_in = torch.stack(h_in, dim=1)  # (B, NC, H, N, P)
    # Reverse state passing.
    dh_loc = torch.einsum("bclhn,bclh,bclhp->bchnp", cc, torch.exp(a_cs), dyc)
    d_s, dh = [], torch.zeros_like(state) if d_final is None else d_final.to(x.dtype)
    for c in reversed(range(nc)):
        d_s.append(dh)
        dh = dh_loc[:, c] + torch.exp(last[:, c])[..., None, None] * dh
    d_s = torch.stack(d_s[::-1], dim=1)  # (B, NC, H, N, P): gradient of the state after chunk c
    return _chunk_local_bwd(xc, dtc, A, bc, cc, D, dyc, a_cs, h_in, d_s, t, Bm.shape[2])


def _chunk_local_bwd(xc, dtc, A, bc, cc, D, dyc, a_cs, h_in, d_s, t, g):
    """Everything after the reverse scan; chunk layout (B, NC, L, H, ...)."""
    b, nc, cl, h, p = xc.shape
    last = a_cs[:, :, -1:]  # (B, NC, 1, H)
    causal = torch.tril(torch.ones(cl, cl, dtype=torch.bool, device=xc.device))
    seg = (a_cs[:, :, :, None] - a_cs[:, :, None, :]).masked_fill(~causal[:, :, None], float("-inf"))
    e = torch.exp(seg)  # (B, NC, Lt, Ls, H)
    w = torch.einsum("bcthn,bcshn->bctsh", cc, bc) * e
    gm = torch.einsum("bcthp,bcshp->bctsh", dyc, xc)
    to_end = torch.exp(last - a_cs)  # exp(L - a_s): decay from s to the chunk end
    b_ds = torch.einsum("bcshn,bchnp->bcshp", bc, d_s)  # B_s^T dS
    x_ds = torch.einsum("bcshp,bchnp->bcshn", xc, d_s)  # dS x_s
    dy_h = torch.einsum("bcthp,bchnp->bcthn", dyc, h_in)  # H dy_t
    dx = dtc[..., None] * (torch.einsum("bctsh,bcthp->bcshp", w, dyc) + to_end[..., None] * b_ds)
    dx = dx + D[:, None] * dyc
    q = gm * e * dtc[:, :, None]  # (t, s): dy_t . x_s exp(a_t - a_s) dt_s
    db = torch.einsum("bctsh,bcthn->bcshn", q, cc) + (to_end * dtc)[..., None] * x_ds
    dc = torch.exp(a_cs)[..., None] * dy_h + torch.einsum("bctsh,bcshn->bcthn", q, bc)
    # dt as the input scale: d/d dt_s of W[t, s] dt_s x_s and of exp(L - a_s) dt_s B_s x_s^T.
    r = to_end * (bc * x_ds).sum(-1)  # (B, NC, L, H)
    ddt = (gm * w).sum(2) + r
    # Gradient of the in-chunk cumsum a_cs and of the total L; then of each step's a_t = dt_t A, which
    # feeds a_cs at and after t (a reverse cumsum) and L.
    wq = gm * w * dtc[:, :, None]  # W[t, s] dt_s dy_t . x_s: the gradient of a_t - a_s in W
    d_cs = torch.exp(a_cs) * (cc * dy_h).sum(-1) + wq.sum(3) - wq.sum(2) - r * dtc
    d_last = (r * dtc).sum(2) + torch.exp(last[:, :, 0]) * (h_in * d_s).sum((-2, -1))
    d_a = torch.flip(torch.cumsum(torch.flip(d_cs, [2]), 2), [2]) + d_last[:, :, None]
    ddt = ddt + A * d_a
    da = (dtc * d_a).sum((0, 1, 2))
    dd = (dyc * xc).sum((0, 1, 2, 4))

    def unchunk(v):
        return v.reshape(b, nc * cl, *v.shape[3:])[:, :t]

    def per_group(v):
        return unchunk(v).reshape(b, t, g, h // g, -1).sum(3)

    return unchunk(dx), unchunk(ddt), da, per_group(db), per_group(dc), dd
