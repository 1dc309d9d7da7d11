"""What torch.compile needs to know about this project's custom ops before it compiles a model."""

from __future__ import annotations

import torch

NAMESPACE = "redpajama"


def register_inductor_fallbacks() -> None:
    """Give every op of ours loaded so far an explicit Inductor fallback lowering.

    An op Inductor has no lowering for becomes an "implicit fallback" when first lowered, and torch
    <= 2.12 then formats its arguments for an info log, eagerly. An argument's IR prints the IR of its
    inputs, and an opaque op's output does not stop that recursion. Along the residual stream every
    add + norm op reads the previous one's output, directly and through the module between them, so
    the string for any op fed by the stream (norm, RoPE, SwiGLU, ...) doubles per layer: the 468m
    model never finished compiling on torch 2.11. Registered here first, the ops skip that path and
    run as the same opaque calls, with the layout constraint the implicit path gives custom ops
    (`needs_fixed_stride_order`: inputs keep the strides they were traced with). Imported here,
    not at module import: torch._inductor takes seconds to import.
    """
    from torch._inductor.lowering import constrain_to_fx_strides, lowerings, make_fallback

    prefix = f"{NAMESPACE}::"
    for name in torch._C._dispatch_get_all_op_names():
        if not name.startswith(prefix):
            continue
        op = getattr(getattr(torch.ops, NAMESPACE), name[len(prefix) :]).default
        if op not in lowerings:
            make_fallback(op, constrain_to_fx_strides, warn=False)
