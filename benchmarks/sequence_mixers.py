"""Sequence mixers at long context: log-linear Mamba-2 and log-linear Gated DeltaNet against Mamba-2
SSD and SDPA attention.

REFERENCE C, LL-A: B=4, T=8192, H=24 heads of P=64, state N=128, one B/C group, L=14 levels, bf16
x/B/C, float32 gates. Attention: SDPA with the same 24 heads of 64 (FlashAttention-2 backend and
cuDNN). Timed, forward and forward+backward (torch.autograd.grad of every input), do_bench medians:

- ssd: `redpajama.kernels.ssd.ssd` (Triton forward and backward)
- ssd_chunked: `kernels.ssd.chunked.ssd_chunked`, the PyTorch chunked path, torch.compile'd
- log_linear: `kernels.log_linear.log_linear_chunked` (chunk 64), torch.compile'd
- log_linear_triton: `kernels.log_linear.log_linear` (Triton forward and backward)
- with --baselines DIR (a folder holding fla-core 0.6.0 installed with `pip install --target` and
  an unpacked mamba-ssm source release; neither is a dependency of ours):
  fla_log_linear: fla's `chunk_log_linear_attn` (q = C, k = B, v = dt x, g = dt A, level_scales =
  lam, plus D x), and mamba_ssm: `mamba_chunk_scan_combined` with chunk 256 (REFERENCE LL-A).

Log-linear Gated DeltaNet at the same B, T, H with keys of 128 and values of 64 (the state of a
Mamba-2 head at LL-A), bf16 q/k/v, float32 gates:
- log_linear_gdn: `kernels.log_linear_gdn.log_linear_gdn_chunked` (chunk 64), eager
- log_linear_gdn_triton: `kernels.log_linear_gdn.log_linear_gdn` (chunk 64): per-chunk terms in
  eager PyTorch, bucket states and their reads in Triton (forward and backward); and the same
  under torch.compile (log_linear_gdn_triton_compiled)
- with --baselines: fla_gated_delta, fla's `chunk_gated_delta_rule`: plain Gated DeltaNet (every
  lam == 1), the linear-time model the log-linear one generalises.

Before timing, every path is checked against the quadratic references at T=512 (relative RMS; our
Gated DeltaNet paths' gradients too, the worst of the six inputs); fla's Gated DeltaNet against our
closed form with lam == 1.

    python benchmarks/sequence_mixers.py [--baselines DIR] [--output benchmarks/results/sequence_mixers.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402

DEVICE = "cuda"
SHAPE = dict(B=4, T=8192, H=24, P=64, N=128, G=1)


def make_problem(b, t, h, p, n, g, levels, seed=0):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=DEVICE)

    return dict(
        x=randn(b, t, h, p).bfloat16(),
        dt=F.softplus(randn(b, t, h) - 3.0),  # step sizes ~0.05, as Mamba-2's dt init range
        A=-torch.exp(randn(h) * 0.5),
        Bm=(randn(b, t, g, n) / n**0.5).bfloat16(),
        Cm=(randn(b, t, g, n) / n**0.5).bfloat16(),
        D=torch.ones(h, device=DEVICE),
        lam=F.softplus(randn(b, t, h, levels)),
        dy=randn(b, t, h, p).bfloat16(),
    )


SSM_INPUTS = ("x", "dt", "A", "Bm", "Cm", "D")
BASELINE_NAMES = ("fla_", "mamba_ssm")


def mixers(baselines: Path | None = None) -> dict:
    """name -> (input names, fn); fn takes the inputs in that order and returns y (B, T, H, P)."""
    from redpajama.kernels.log_linear import log_linear, log_linear_chunked
    from redpajama.kernels.ssd import ssd
    from redpajama.kernels.ssd.chunked import ssd_chunked

    chunked = torch.compile(ssd_chunked, dynamic=False)
    log_linear_c = torch.compile(log_linear_chunked, dynamic=False)
    ll_inputs = (*SSM_INPUTS, "lam")
    out = {
        "ssd": (SSM_INPUTS, lambda x, dt, A, Bm, Cm, D: ssd(x, dt, A, Bm, Cm, D)),
        "ssd_chunked": (SSM_INPUTS, lambda x, dt, A, Bm, Cm, D: chunked(x, dt, A, Bm, Cm, D)),
        "log_linear": (ll_inputs, lambda x, dt, A, Bm, Cm, D, lam: log_linear_c(x, dt, A, Bm, Cm, D, lam)),
        "log_linear_triton": (
            ll_inputs,
            lambda x, dt, A, Bm, Cm, D, lam: log_linear(x, dt, A, Bm, Cm, D, lam),
        ),
    }
    if baselines is not None:
        out.update(baseline_mixers(baselines))
    return out


def baseline_mixers(folder: Path) -> dict:
    """fla's log-linear attention and mamba-ssm's Triton SSD, imported from `folder` (module doc)."""
    import types

    sys.path.insert(0, str(folder))
    out = {}
    try:
        from fla.ops.log_linear_attn import chunk_log_linear_attn

        def fla(x, dt, A, Bm, Cm, D, lam):
            v = (x.float() * dt[..., None]).to(x.dtype)
            # fla multiplies the level scales into its bf16 score tile: they must share q's dtype.
            o, _ = chunk_log_linear_attn(Cm, Bm, v, dt * A, lam.to(x.dtype), scale=1.0)
            return o + (D[:, None] * x.float()).to(o.dtype)

        out["fla_log_linear"] = ((*SSM_INPUTS, "lam"), fla)
    except ImportError as err:
        print(f"fla baseline unavailable: {err}", file=sys.stderr)
    sources = sorted(folder.glob("mamba_ssm-*/mamba_ssm"))
    if sources:
        # The package __init__ imports the CUDA selective-scan extension, which a source release
        # lacks; the Triton SSD modules need only the package path.
        package = types.ModuleType("mamba_ssm")
        package.__path__ = [str(sources[-1])]
        sys.modules.setdefault("mamba_ssm", package)
        try:
            from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

            def mamba(x, dt, A, Bm, Cm, D):
                return mamba_chunk_scan_combined(x, dt, A, Bm, Cm, chunk_size=256, D=D)

            out["mamba_ssm"] = (SSM_INPUTS, mamba)
        except ImportError as err:
            print(f"mamba-ssm baseline unavailable: {err}", file=sys.stderr)
    return out


def attention(backend):
    from torch.nn.attention import sdpa_kernel

    def run(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    return run


def check_small(baselines: Path | None) -> dict[str, float]:
    """Each SSM path against its quadratic reference in float32 at T=512 (relative RMS)."""
    from redpajama.kernels._testing import rel_rms
    from redpajama.kernels.log_linear import log_linear_quadratic, num_levels
    from redpajama.kernels.ssd.naive import ssd_quadratic

    p = make_problem(1, 512, 4, 64, 128, 1, num_levels(SHAPE["T"]), seed=1)
    f32 = {k: v.float() for k, v in p.items()}
    ref_ssd = ssd_quadratic(*(f32[k] for k in SSM_INPUTS))
    ref_ll = log_linear_quadratic(*(f32[k] for k in SSM_INPUTS), f32["lam"])
    errors = {}
    for name, (inputs, fn) in mixers(baselines).items():
        try:
            out = fn(*(p[k] for k in inputs)).float()
        except Exception as err:  # noqa: BLE001 - a baseline that fails is reported, not timed
            if not name.startswith(BASELINE_NAMES):
                raise
            errors[name] = f"FAILED {type(err).__name__}: {str(err).splitlines()[-1][:160]}"
            continue
        errors[name] = rel_rms(ref_ll if "lam" in inputs else ref_ssd, out)
    return errors


def bench(fn) -> float:
    from triton.testing import do_bench

    fn()
    torch.cuda.synchronize()
    return do_bench(fn, return_mode="median")


def time_fn(fn, leaves, d_out) -> dict[str, float]:
    return dict(
        fwd_ms=bench(lambda: fn(*leaves)),
        fwd_bwd_ms=bench(lambda: torch.autograd.grad(fn(*leaves), leaves, d_out)),
    )


GDN_SHAPE = dict(B=4, T=8192, H=24, K=128, V=64)


def make_gdn_problem(b, t, h, dk, dv, levels, seed=0):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=DEVICE)

    return dict(
        q=(randn(b, t, h, dk) / dk**0.5).bfloat16(),
        k=F.normalize(randn(b, t, h, dk), dim=-1).bfloat16(),
        v=randn(b, t, h, dv).bfloat16(),
        g=-F.softplus(randn(b, t, h) - 3.0),  # log decays ~ -0.05
        beta=torch.sigmoid(randn(b, t, h)),
        lam=F.softplus(randn(b, t, h, levels)),
        dy=randn(b, t, h, dv).bfloat16(),
    )


GDN_INPUTS = ("q", "k", "v", "g", "beta", "lam")


def gdn_mixers(baselines: Path | None) -> dict:
    """name -> (input names, fn, lam used): ours, and fla's plain Gated DeltaNet with --baselines."""
    from redpajama.kernels.log_linear_gdn import log_linear_gdn, log_linear_gdn_chunked

    out = {
        "log_linear_gdn": (GDN_INPUTS, log_linear_gdn_chunked, True),
        "log_linear_gdn_triton": (GDN_INPUTS, log_linear_gdn, True),
        # As a compiled training step runs it: Inductor fuses the per-chunk terms' elementwise work.
        "log_linear_gdn_triton_compiled": (GDN_INPUTS, torch.compile(log_linear_gdn), True),
    }
    if baselines is not None:
        sys.path.insert(0, str(baselines))
        try:
            from fla.ops.gated_delta_rule import chunk_gated_delta_rule

            def fla(q, k, v, g, beta):
                return chunk_gated_delta_rule(q, k, v, g, beta.to(q.dtype), scale=1.0)[0]

            out["fla_gated_delta"] = (GDN_INPUTS[:5], fla, False)
        except ImportError as err:
            print(f"fla Gated DeltaNet unavailable: {err}", file=sys.stderr)
    return out


def gated_deltanet_rows(baselines: Path | None) -> dict:
    """Check at T=512 against the closed form, then time at GDN_SHAPE."""
    from redpajama.kernels._testing import rel_rms
    from redpajama.kernels.log_linear import num_levels
    from redpajama.kernels.log_linear_gdn import log_linear_gdn_quadratic

    s = GDN_SHAPE
    small = make_gdn_problem(1, 512, 4, s["K"], s["V"], num_levels(s["T"]), seed=1)
    f32 = {k: v.float() for k, v in small.items()}
    ref = log_linear_gdn_quadratic(*(f32[k] for k in GDN_INPUTS))
    ref_plain = log_linear_gdn_quadratic(*(f32[k] for k in GDN_INPUTS[:5]), torch.ones_like(f32["lam"]))
    p = make_gdn_problem(s["B"], s["T"], s["H"], s["K"], s["V"], num_levels(s["T"]))
    rows = {}
    ref_leaves = [f32[k].requires_grad_() for k in GDN_INPUTS]
    ref_grads = torch.autograd.grad(log_linear_gdn_quadratic(*ref_leaves), ref_leaves, f32["dy"])
    for name, (inputs, fn, uses_lam) in gdn_mixers(baselines).items():
        err = rel_rms(ref if uses_lam else ref_plain, fn(*(small[k] for k in inputs)).float())
        checks = dict(check_rel_rms=err)
        if uses_lam:  # ours: the gradients too, worst input
            small_leaves = [small[k].detach().clone().requires_grad_() for k in inputs]
            grads = torch.autograd.grad(fn(*small_leaves), small_leaves, small["dy"])
            checks["check_grad_rel_rms"] = max(
                rel_rms(r, g.float()) for r, g in zip(ref_grads, grads, strict=True)
            )
        leaves = [p[k].detach().clone().requires_grad_() for k in inputs]
        try:
            rows[name] = dict(**checks, **time_fn(fn, leaves, p["dy"]))
        except RuntimeError as err_bwd:  # fla refuses its GDN backward on Triton 3.4-3.7.0 (Hopper)
            if not name.startswith(BASELINE_NAMES):
                raise
            rows[name] = dict(
                check_rel_rms=err,
                fwd_ms=bench(lambda fn=fn, leaves=leaves: fn(*leaves)),
                fwd_bwd_unavailable=str(err_bwd).splitlines()[-1][:200],
            )
        print(name, rows[name], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "sequence_mixers.json"
    )
    parser.add_argument(
        "--baselines", type=Path, help="folder holding fla-core and an unpacked mamba-ssm release (see above)"
    )
    parser.add_argument(
        "--gated-deltanet-only", action="store_true", help="time the Gated DeltaNet rows only"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("sequence_mixers: needs a CUDA GPU (none found); nothing timed.", file=sys.stderr)
        return 2
    if args.gated_deltanet_only:
        rows = gated_deltanet_rows(args.baselines)
        base = rows.get("fla_gated_delta")
        for name, row in rows.items():
            if base is not None:
                # Forward only: fla refuses its backward on some Triton versions (gated_deltanet_rows).
                row["vs_fla_gated_delta_fwd"] = row["fwd_ms"] / base["fwd_ms"]
            ratio = f", {row['vs_fla_gated_delta_fwd']:.2f}x fla's linear forward" if base else ""
            print(f"{name}: forward {row['fwd_ms']:.3f} ms{ratio}")
        result = dict(
            device=torch.cuda.get_device_name(),
            versions=versions("torch", "triton"),
            shape=GDN_SHAPE,
            rows=rows,
        )
        write_json(args.output, result)
        return 0
    from torch.nn.attention import SDPBackend

    from redpajama.kernels.log_linear import num_levels

    errors = check_small(args.baselines)
    print("float32-reference relative RMS at T=512 (bf16 inputs):", json.dumps(errors), flush=True)
    s = SHAPE
    p = make_problem(s["B"], s["T"], s["H"], s["P"], s["N"], s["G"], num_levels(s["T"]))
    rows = {}
    for name, (inputs, fn) in mixers(args.baselines).items():
        if isinstance(errors.get(name), str):
            rows[name] = {"unavailable": errors[name]}
            continue
        leaves = [p[k].detach().clone().requires_grad_() for k in inputs]
        rows[name] = time_fn(fn, leaves, p["dy"])
        print(name, rows[name], flush=True)
    q, k, v = (p["x"].transpose(1, 2).detach().clone().requires_grad_() for _ in range(3))
    d_o = p["dy"].transpose(1, 2)
    for name, backend in (
        ("sdpa_flash", SDPBackend.FLASH_ATTENTION),
        ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
    ):
        try:
            rows[name] = time_fn(attention(backend), [q, k, v], d_o)
        except RuntimeError as err:
            rows[name] = {"unavailable": str(err)[:200]}
        print(name, rows[name], flush=True)
    rows.update(gated_deltanet_rows(args.baselines))
    base = rows["ssd"]
    for row in rows.values():
        if "fwd_bwd_ms" in row:
            row["vs_ssd_fwd"] = row["fwd_ms"] / base["fwd_ms"]
            row["vs_ssd_fwd_bwd"] = row["fwd_bwd_ms"] / base["fwd_bwd_ms"]
    result = dict(
        device=torch.cuda.get_device_name(),
        versions=versions("torch", "triton"),
        shape=s,
        gated_deltanet_shape=GDN_SHAPE,
        check_rel_rms=errors,
        rows=rows,
        note="vs_ssd_*: time over our SSD's time (lower is faster)",
    )
    write_json(args.output, result)
    print(f"{'mixer':<16} {'fwd ms':>9} {'f+b ms':>9} {'fwd/ssd':>8} {'f+b/ssd':>8}")
    for name, row in rows.items():
        if "fwd_bwd_ms" in row:
            print(
                f"{name:<16} {row['fwd_ms']:9.3f} {row['fwd_bwd_ms']:9.3f} {row['vs_ssd_fwd']:8.2f} {row['vs_ssd_fwd_bwd']:8.2f}"
            )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
