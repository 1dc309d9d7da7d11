"""GTA / GLA / MLA decode over a paged KV cache: achieved time against the roofline time.

REFERENCE C, DEC-A: B=128 sequences of 8192 tokens, 128 query heads, pages of 64 tokens, query
length 1 and 2 (speculative), bf16. Variants (`redpajama.kernels.decode`):
- GTA-8: 8 tied KV groups of D=128 plus one shared RoPE key of 64 (`gta_decode`);
- GLA-2: 2 latent groups of 256 plus a shared RoPE key of 64 (`gla_decode`, absorbed queries);
- MLA: GLA with one latent of 512 (DeepSeek's shape) plus RoPE 64.

Roofline time = max(bytes / bandwidth, FLOPs / matmul throughput), both ceilings measured in the
same run: bandwidth by a read-only reduction over a 4 GiB bf16 tensor (decode reads, it hardly
writes), matmul by an 8192^3 bf16 product. Bytes: the cache rows every sequence reads once
(B * T * (G * Dc + Dr) * 2) plus queries and outputs; FLOPs: 2 * B * Q * H * T * (Ka + Dr + Dc)
(scores over the key width, then values over the cache width). Also reported against the nominal
H200 figures (4.8 TB/s, 989 TFLOP/s) and, for GLA-2 and MLA, against REFERENCE DEC-A's own roofline
times (318 / 391 us GLA, 370 / 739 us MLA at Q = 1 / 2). The block table is a random permutation of the pages, as a
serving cache would hold them.

Timed replayed from a CUDA graph (as a serving loop captures its decode steps; the eager time,
with launch overhead and the public op's value check, is recorded beside it). `--splits` also times
the launcher at given numbers of key ranges per sequence (flash-decoding split); `--sweep` times
candidate tile configs (tokens a tile, warps, stages, query rows a program) at each query length.

Before timing, each variant is checked in bf16 against the float32 reference (`*_decode_naive`)
on a slice of the problem (4 sequences). Target: >= 80% of roofline.

    python benchmarks/decode_attention.py [--output benchmarks/results/decode_attention.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402

DEVICE = "cuda"
NOMINAL_BW, NOMINAL_FLOPS = 4.8e12, 989e12
# REFERENCE DEC-A's own roofline times (us) for GLA and MLA, by (variant, query length): reported
# beside the roofline from this run's ceilings, which moves with the machine's measured matmul rate.
REFERENCE_ROOFLINE_US = {("GLA-2", 1): 318.0, ("GLA-2", 2): 391.0, ("MLA", 1): 370.0, ("MLA", 2): 739.0}
# name -> (groups G, cache width Dc, key width Ka read from the cache, RoPE width Dr)
VARIANTS = {
    "GTA-8": (8, 128, 64, 64),
    "GLA-2": (2, 256, 256, 64),
    "MLA": (1, 512, 512, 64),
}


def make_problem(variant: str, b: int, t: int, h: int, nq: int, page: int, seed: int = 0) -> dict:
    g, dc, ka, dr = VARIANTS[variant]
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    pages_per_seq = -(-t // page)
    num_pages = b * pages_per_seq

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=DEVICE).bfloat16()

    perm = torch.randperm(num_pages, generator=torch.Generator().manual_seed(seed)).to(DEVICE)
    problem = dict(
        cache=randn(num_pages, page, g, dc),
        rope=randn(num_pages, page, dr),
        block_table=perm.reshape(b, pages_per_seq).to(torch.int32),
        seq_lens=torch.full((b,), t, dtype=torch.int32, device=DEVICE),
    )
    if variant == "GTA-8":
        problem["q"] = randn(b, nq, h, dc)
    else:
        problem["q_latent"], problem["q_rope"] = randn(b, nq, h, dc), randn(b, nq, h, dr)
    return problem


def decode_fn(variant: str, naive: bool = False, splits: int | None = None, cfg=None):
    """The public op (naive: its reference); with `splits` or `cfg`, the launcher at that many key
    ranges per sequence and those tiles, called as the public op calls it."""
    from redpajama.kernels import decode

    if splits is not None or cfg is not None:
        from redpajama.kernels.decode.paged import gla_operands, gta_operands, paged_decode_fwd

        def launch(p):
            q_a, q_r, scale, ka = (
                gta_operands(p["q"]) if variant == "GTA-8" else gla_operands(p["q_latent"], p["q_rope"])
            )
            cache = (p["cache"], p["rope"], p["block_table"], p["seq_lens"])
            return paged_decode_fwd(q_a, q_r, *cache, scale, ka, splits=splits, cfg=cfg)

        return launch
    if variant == "GTA-8":
        fn = decode.gta_decode_naive if naive else decode.gta_decode
        return lambda p: fn(p["q"], p["cache"], p["rope"], p["block_table"], p["seq_lens"])
    fn = decode.gla_decode_naive if naive else decode.gla_decode
    return lambda p: fn(p["q_latent"], p["q_rope"], p["cache"], p["rope"], p["block_table"], p["seq_lens"])


def check(variant: str, t: int, h: int, nq: int, page: int, splits: int | None = None) -> float:
    """bf16 kernel against the float32 reference on 4 sequences of the same shape (relative RMS)."""
    from redpajama.kernels._testing import rel_rms

    p = make_problem(variant, 4, t, h, nq, page, seed=1)
    ref = decode_fn(variant, naive=True)(p).float()
    return rel_rms(ref, decode_fn(variant, splits=splits)(p).float())


def traffic(variant: str, b: int, t: int, h: int, nq: int) -> tuple[int, int]:
    """(bytes, FLOPs) of one decode call (module doc)."""
    g, dc, ka, dr = VARIANTS[variant]
    cache_bytes = b * t * (g * dc + dr) * 2
    q_width = dc if variant == "GTA-8" else dc + dr
    io_bytes = b * nq * h * (q_width + dc) * 2
    flops = 2 * b * nq * h * t * (ka + dr + dc)
    return cache_bytes + io_bytes, flops


# Tiles tried by --sweep, per kernel and variant: (tokens a tile, warps, stages, query rows a program).
# The TMA variants take tiles inside a page (bs divides the 64-token page) and boxes of at most 256
# columns (the row-major kernels read MLA's 512 as two blocks of 256; the keys-major one gathers it).
SWEEP_ROW_MAJOR = {
    "GTA-8": [(64, 4, 2, 128), (128, 4, 2, 128), (128, 4, 3, 128), (128, 8, 2, 128), (64, 8, 2, 128), (256, 8, 2, 128)],
    "GLA-2": [(32, 4, 2, 128), (64, 8, 2, 128), (32, 8, 2, 128), (32, 4, 2, 64), (64, 4, 2, 32), (32, 4, 3, 32)],
    "MLA": [(32, 8, 2, 64), (64, 8, 2, 64), (32, 4, 2, 64), (64, 8, 2, 32)],
}  # fmt: skip
SWEEP_ROW_MAJOR_TMA = {
    "GTA-8": [(64, 4, 2, 128), (64, 4, 3, 128), (32, 4, 3, 128)],
    "GLA-2": [(32, 4, 2, 128), (32, 4, 3, 128), (32, 4, 4, 128), (16, 4, 4, 128), (16, 4, 6, 128), (64, 4, 2, 128), (64, 8, 2, 128), (64, 8, 3, 128), (32, 8, 3, 128), (32, 8, 4, 128), (32, 4, 2, 64)],
    "MLA": [(32, 8, 2, 64), (32, 8, 3, 64), (32, 8, 4, 64), (16, 8, 4, 64), (16, 8, 6, 64), (64, 8, 2, 64)],
}  # fmt: skip
SWEEP_KEYS_MAJOR = {
    "GTA-8": [(64, 4, 2, 128), (64, 4, 3, 128), (64, 4, 4, 128), (128, 4, 2, 128), (128, 4, 3, 128), (128, 4, 4, 128), (32, 4, 4, 128), (32, 4, 6, 128), (128, 8, 2, 128), (128, 8, 3, 128), (256, 8, 2, 128), (64, 4, 2, 16), (128, 4, 3, 16)],
    "GLA-2": [(32, 4, 2, 128), (64, 4, 2, 128), (64, 8, 2, 128), (128, 8, 2, 128), (32, 8, 2, 128), (64, 4, 2, 32), (64, 8, 2, 64), (128, 8, 2, 64), (64, 4, 3, 16)],
    "MLA": [(64, 8, 2, 64), (32, 8, 2, 64), (64, 8, 2, 32), (64, 4, 2, 32), (128, 8, 2, 32), (64, 4, 2, 16)],
}  # fmt: skip
SWEEP_KEYS_MAJOR_TMA = {
    "GTA-8": [(64, 4, 2, 128), (64, 4, 3, 128), (64, 4, 4, 128), (32, 4, 4, 128), (64, 8, 2, 128), (64, 8, 3, 128), (64, 8, 4, 128), (32, 8, 4, 128), (64, 4, 2, 16), (64, 4, 3, 16), (64, 4, 4, 16), (32, 4, 4, 16)],
    "GLA-2": [(64, 4, 2, 128), (64, 4, 3, 128), (32, 4, 3, 128), (64, 8, 2, 128), (64, 8, 3, 64), (64, 4, 3, 32)],
    "MLA": [],
}  # fmt: skip
# The warp-specialized Gluon kernels run one warpgroup per 64 rows (row_major_ws.py: 4 warps at
# Q = 1, 64 rows of GLA-2's group, 8 at Q = 2; a candidate whose warps do not match is skipped) or,
# for MLA's two column blocks, 64 rows a program at 4 warps (wide_latent_ws.py; its P buffers take
# tiles of 32 or 64 tokens).
SWEEP_ROW_MAJOR_WS = {
    "GTA-8": [],
    "GLA-2": [(64, 4, 3, 128), (64, 4, 2, 128), (32, 4, 4, 128), (32, 4, 6, 128), (64, 8, 3, 128), (64, 8, 2, 128), (32, 8, 4, 128), (32, 8, 6, 128)],
    "MLA": [(32, 4, 4, 64), (32, 4, 3, 64), (64, 4, 2, 64)],
}  # fmt: skip
# GTA's groups by twos through row_major_ws.py (Config.pair_groups, GP = 2): one warpgroup serves
# two groups' 2 x 16 rows at Q = 2 from tiles of both groups' 256 columns.
SWEEP_PAIRS_WS = {
    "GTA-8": [(64, 4, 3, 128), (64, 4, 4, 128), (64, 4, 2, 128)],
    "GLA-2": [],
    "MLA": [],
}  # fmt: skip
KERNELS = {
    "row-major": SWEEP_ROW_MAJOR,
    "row-major-ws": SWEEP_ROW_MAJOR_WS,
    "pairs-ws": SWEEP_PAIRS_WS,
    "row-major-tma": SWEEP_ROW_MAJOR_TMA,
    "keys-major": SWEEP_KEYS_MAJOR,
    "keys-major-tma": SWEEP_KEYS_MAJOR_TMA,
}


def sweep(args, ceil: dict) -> list[dict]:
    """Each variant at each of --query-lens and each candidate tile config (one key range per sequence), checked on
    4 sequences first; rows sorted by variant and time."""
    import triton
    from triton.testing import do_bench_cudagraph

    from redpajama.kernels._testing import rel_rms
    from redpajama.kernels.decode.paged import GPU_MIN_PROGRAMS, Config

    rows = []
    for variant, nq in itertools.product(args.variants, args.query_lens):
        p = make_problem(variant, args.batch, args.seq_len, args.heads, nq, args.page_size)
        small = make_problem(variant, 4, args.seq_len, args.heads, nq, args.page_size, seed=1)
        ref = decode_fn(variant, naive=True)(small).float()
        candidates = [(kernel, c) for kernel in args.kernels for c in KERNELS[kernel][variant]]
        for kernel, (bs, warps, stages, max_rows) in candidates:
            keys_major, ws = kernel.startswith("keys-major"), kernel == "row-major-ws"
            pairs = kernel == "pairs-ws"
            tma = ws or pairs or kernel.endswith("-tma")
            n_rows = nq * args.heads // VARIANTS[variant][0] * (2 if pairs else 1)
            if (ws or pairs) and warps != min(triton.next_power_of_2(n_rows), max_rows) // 16:
                continue
            cfg = Config(bs, warps, stages, max_rows, GPU_MIN_PROGRAMS, keys_major or pairs, tma, ws, pairs)
            row = dict(
                variant=variant,
                query_len=nq,
                kernel=kernel,
                bs=bs,
                warps=warps,
                stages=stages,
                max_rows=max_rows,
                keys_major=keys_major,
                tma=tma,
            )
            fn = decode_fn(variant, splits=1, cfg=cfg)
            try:
                row["bf16_rel_rms"] = rel_rms(ref, fn(small).float())
                ms = do_bench_cudagraph(lambda fn=fn, p=p: fn(p), return_mode="median")
            except Exception as err:  # noqa: BLE001 - a config the GPU cannot run (shared memory)
                rows.append(dict(row, error=str(err)[:120]))
                continue
            rows.append(measured(dict(row, splits=1, eager_us=float("nan")), ms, variant, nq, args, ceil))
            print(
                f"{variant} Q={nq} {kernel} bs={bs} w={warps} s={stages} rows={max_rows}: {ms * 1e3:.1f} us, {rows[-1]['frac_of_roofline']:.1%} of roofline",
                flush=True,
            )
        del p, small
        torch.cuda.empty_cache()
    return sorted(rows, key=lambda r: (r["variant"], r["query_len"], r.get("us", float("inf"))))


def measured(row: dict, ms: float, variant: str, nq: int, args, ceil: dict) -> dict:
    """row with the call's time, traffic, and its fraction of the roofline (module doc)."""
    nbytes, flops = traffic(variant, args.batch, args.seq_len, args.heads, nq)
    memory_s, compute_s = nbytes / ceil["read_bytes_per_s"], flops / ceil["matmul_flops"]
    roof = max(memory_s, compute_s)
    nominal = max(nbytes / NOMINAL_BW, flops / NOMINAL_FLOPS)
    reference_us = REFERENCE_ROOFLINE_US.get((variant, nq))
    return dict(
        row,
        us=ms * 1e3,
        bytes=nbytes,
        flops=flops,
        achieved_tb_s=nbytes / (ms * 1e-3) / 1e12,
        achieved_tflops=flops / (ms * 1e-3) / 1e12,
        roofline_us=roof * 1e6,
        bound="memory" if memory_s >= compute_s else "compute",
        frac_of_roofline=roof / (ms * 1e-3),
        frac_of_nominal_roofline=nominal / (ms * 1e-3),
        reference_roofline_us=reference_us,
        frac_of_reference_roofline=None if reference_us is None else reference_us / (ms * 1e3),
    )


def print_table(rows: list[dict]) -> None:
    print(
        f"{'variant':<7} {'Q':>2} {'splits':>6} {'us':>9} {'eager us':>9} {'TB/s':>6} {'TFLOP/s':>8} "
        f"{'roofline us':>12} {'bound':>8} {'of roofline':>12} {'of REFERENCE':>13}"
    )
    for r in rows:
        if "us" in r:
            print(
                f"{r['variant']:<7} {r['query_len']:>2} {r['splits']!s:>6} {r['us']:9.1f} {r['eager_us']:9.1f} "
                f"{r['achieved_tb_s']:6.2f} {r['achieved_tflops']:8.0f} {r['roofline_us']:12.1f} {r['bound']:>8} "
                f"{r['frac_of_roofline']:12.1%} "
                + (
                    f"{r['frac_of_reference_roofline']:13.1%}"
                    if r["frac_of_reference_roofline"]
                    else f"{'':>13}"
                )
            )


def ceilings() -> dict[str, float]:
    from triton.testing import do_bench

    x = torch.ones(2 * 2**30, dtype=torch.bfloat16, device=DEVICE)  # 4 GiB
    read_ms = do_bench(lambda x=x: x.sum(dtype=torch.float32), return_mode="median")
    del x
    a = torch.randn(8192, 8192, device=DEVICE).bfloat16()
    mm_ms = do_bench(lambda: a @ a, return_mode="median")
    return dict(read_bytes_per_s=4 * 2**30 / (read_ms * 1e-3), matmul_flops=2 * 8192**3 / (mm_ms * 1e-3))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--heads", type=int, default=128)
    parser.add_argument("--page-size", type=int, default=64)
    parser.add_argument("--query-lens", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--splits",
        type=lambda v: None if v == "auto" else int(v),
        nargs="+",
        default=[None],
        help="key ranges per sequence to time: auto (the launcher's choice) and/or numbers",
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "decode_attention.json"
    )
    parser.add_argument("--sweep", action="store_true", help="time candidate tile configs instead")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="variants to time or sweep",
    )
    parser.add_argument(
        "--kernels",
        nargs="+",
        choices=list(KERNELS),
        default=list(KERNELS),
        help="--sweep: which kernels' candidate tiles to time",
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("decode_attention: needs a CUDA GPU (none found); nothing timed.", file=sys.stderr)
        return 2
    from triton.testing import do_bench, do_bench_cudagraph

    ceil = ceilings()
    print(
        f"ceilings: read {ceil['read_bytes_per_s'] / 1e12:.2f} TB/s, bf16 matmul {ceil['matmul_flops'] / 1e12:.0f} TFLOP/s",
        flush=True,
    )
    if args.sweep:
        rows = sweep(args, ceil)
        write_json(args.output.with_name("decode_attention_sweep.json"), rows)
        return 0
    rows, ok = [], True
    for variant in args.variants:
        for nq in args.query_lens:
            err = max(check(variant, args.seq_len, args.heads, nq, args.page_size, s) for s in args.splits)
            row = dict(variant=variant, query_len=nq, bf16_rel_rms=err)
            if not err < 2e-2:
                print(f"{variant} Q={nq}: check FAILED (rel RMS {err:.3g}); not timed", file=sys.stderr)
                rows.append(row)
                ok = False
                continue
            p = make_problem(variant, args.batch, args.seq_len, args.heads, nq, args.page_size)
            for splits in args.splits:
                fn = decode_fn(variant, splits=splits)
                fn(p)
                # do_bench_cudagraph runs on a stream of its own, which does not wait for this one:
                # the problem's tensors must exist first (with explicit splits nothing else syncs).
                torch.cuda.synchronize()
                # Replayed from a CUDA graph, as a serving loop runs its decode steps (and as the
                # public op skips its value check, a device sync, while captured).
                ms = do_bench_cudagraph(lambda fn=fn, p=p: fn(p), return_mode="median")
                eager_ms = do_bench(lambda fn=fn, p=p: fn(p), return_mode="median")
                rows.append(
                    measured(
                        dict(row, splits=splits or "auto", eager_us=eager_ms * 1e3),
                        ms,
                        variant,
                        nq,
                        args,
                        ceil,
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
            del p
            torch.cuda.empty_cache()
    print_table(rows)
    result = dict(
        device=torch.cuda.get_device_name(),
        versions=versions("torch", "triton"),
        shape=dict(B=args.batch, T=args.seq_len, H=args.heads, page=args.page_size),
        ceilings=ceil,
        rows=rows,
    )
    write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
