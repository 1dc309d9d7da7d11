"""Registers and spills of our Triton kernels at their production shapes, compiled offline (no GPU).

Each kernel is compiled for a Hopper GPU (sm_90a) with the tile constants and warps its launcher
picks on CUDA at the benchmark shapes (468m training, REFERENCE C's MoE-B, LL-A and DEC-A), then
run through ptxas, which reports registers per thread, spill bytes and shared memory. A kernel that
spills, or that needs so many registers that one program fills an SM, is a place to look before
spending GPU time; this is not a timing, and the figures belong to the Triton version installed
here (the GPU machine may run another).

    python benchmarks/kernel_registers.py [--output benchmarks/results/kernel_registers.json]

Uses Triton's compiler entry points (ASTSource, GPUTarget) and the ptxas that ships with Triton.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402

ARCH = 90
CUDA = torch.device("cuda")  # a device object only: config_for picks the GPU tiles, nothing runs


@dataclasses.dataclass
class Spec:
    """One kernel launch as the launcher makes it: pointers default to bf16 tensors."""

    label: str
    module: str
    kernel: str
    constexprs: dict
    warps: int
    stages: int = 3
    fp32_ptrs: tuple[str, ...] = ()
    i32_ptrs: tuple[str, ...] = ()
    i64_ptrs: tuple[str, ...] = ()
    ints: tuple[str, ...] = ()
    floats: tuple[str, ...] = ()
    descs: dict = dataclasses.field(default_factory=dict)  # name -> (rows, cols) of a bf16 TMA block
    gluon: bool = False  # a Gluon kernel: its tensor maps carry their shared-memory layout
    maxnreg: int | None = None  # the launch's register cap, where the launcher sets one

    def arg_type(self, name: str) -> str:
        if name in self.constexprs:
            return "constexpr"
        if name in self.descs:
            rows, cols = self.descs[name]
            if self.gluon:
                from triton.experimental.gluon import language as gl

                layout = gl.NVMMASharedLayout.get_default_for([rows, cols], gl.bfloat16)
                return f"tensordesc<bf16[{rows}, {cols}],{layout!r}>"
            return f"tensordesc<bf16[{rows}, {cols}]>"
        for names, kind in (
            (self.fp32_ptrs, "*fp32"),
            (self.i32_ptrs, "*i32"),
            (self.i64_ptrs, "*i64"),
            (self.ints, "i32"),
            (self.floats, "fp32"),
        ):
            if name in names:
                return kind
        return "*bf16"


def flash_specs() -> list[Spec]:
    from redpajama.kernels.attention.flash import config_for

    specs = []
    for d in (64, 128):
        cfg = config_for(CUDA, d)
        common = dict(H=16, G=16, K=d, V=d, BK=d, BV=d, IS_VARLEN=False, PRECISION="tf32")
        ptrs = dict(
            fp32_ptrs=("lse", "delta"),
            i32_ptrs=("cu_seqlens", "block_indices"),
            ints=("T",),
            floats=("scale",),
        )
        module = "redpajama.kernels.attention.flash"
        fwd = dict(common, BT=cfg.fwd_bt, BS=cfg.fwd_bs)
        dkdv = dict(common, BT=cfg.dkdv_bt, BS=cfg.dkdv_bs)
        dq = dict(common, BT=cfg.dq_bt, BS=cfg.dq_bs)
        specs += [
            Spec(
                f"flash fwd D={d}",
                module,
                "flash_attn_fwd_kernel",
                fwd,
                cfg.fwd_warps,
                cfg.fwd_stages,
                **ptrs,
            ),
            Spec(
                f"flash bwd dk/dv D={d}",
                module,
                "flash_attn_bwd_dkdv_kernel",
                dkdv,
                cfg.dkdv_warps,
                cfg.dkdv_stages,
                **ptrs,
            ),
            Spec(
                f"flash bwd dq D={d}",
                module,
                "flash_attn_bwd_dq_kernel",
                dq,
                cfg.dq_warps,
                cfg.dq_stages,
                **ptrs,
            ),
        ]
    return specs


def moe_specs() -> list[Spec]:
    from redpajama.kernels.moe.experts import GPU_CONFIG as c

    tiles = dict(BLOCK_M=c.block_m, BLOCK_N=c.block_n, BLOCK_K=c.block_k, PRECISION="tf32")
    idx = ("token_indices", "tile_expert", "tile_row", "expert_offsets", "order", "token_start")
    ptrs = dict(
        fp32_ptrs=("scores", "da", "d_scores"),
        i64_ptrs=idx,
        ints=("E", "M", "D", "N", "NB_N", "NB_D", "NB_C"),
    )
    fwd, bwd = "redpajama.kernels.moe.grouped_gemm", "redpajama.kernels.moe.grouped_gemm_bwd"
    swiglu = dict(BLOCK_R=c.swiglu_block // 256, BLOCK_N=256)  # n = 256, as MoE-A/B/C
    run = dict(warps=c.num_warps, stages=c.num_stages)
    return [
        Spec("moe up projection (gather, SwiGLU)", fwd, "moe_up_proj_kernel", tiles, **run, **ptrs),
        Spec("moe down projection", fwd, "moe_down_proj_kernel", tiles, **run, **ptrs),
        Spec("moe down backward (dA')", bwd, "moe_down_bwd_kernel", tiles, **run, **ptrs),
        Spec("moe SwiGLU backward (dH, dscores)", bwd, "moe_swiglu_bwd_kernel", swiglu, warps=4, **ptrs),
        Spec("moe dW2", bwd, "moe_dw2_kernel", tiles, **run, **ptrs),
        Spec("moe dW1", bwd, "moe_dw1_kernel", tiles, **run, **ptrs),
        Spec("moe dX", bwd, "moe_dx_kernel", tiles, **run, **ptrs),
    ]


def ssd_specs() -> list[Spec]:
    ssd = importlib.import_module("redpajama.kernels.ssd.ssd")
    meta = dict(H=24, G=1, P=64, N=128, BT=64, BLOCK_N=128, BLOCK_P=64, DOT_PREC="tf32")
    meta["NB"] = ssd.BWD_DBC_BLOCK_N  # the dB/dC kernel's N-block (an argument of that kernel only)
    bf16 = ("x", "Bm", "Cm", "dy", "y", "dx")
    fp32 = ("dt", "A", "D", "states", "a_last", "h_in", "final", "dh", "d_s", "d_final", "ddt")
    fp32 += ("dB_h", "dC_h", "dA_part", "dD_part", "lam", "h_lv", "r_state", "dcs_state", "dlast_state")
    out = []
    for name in dir(ssd):
        kern = getattr(ssd, name)
        if not (name.startswith("ssd_chunk") and name.endswith("_kernel") and hasattr(kern, "arg_names")):
            continue
        warps = getattr(ssd, "BWD_SCAN_WARPS", ssd.NUM_WARPS) if "scan_bwd" in name else ssd.NUM_WARPS
        c = {k: v for k, v in meta.items() if k in kern.arg_names}
        ptrs = tuple(a for a in kern.arg_names if a in fp32 and a not in bf16)
        out.append(Spec(f"ssd {name[4:-7]}", ssd.__name__, name, c, warps, fp32_ptrs=ptrs, ints=("T",)))
    return out


def log_linear_specs() -> list[Spec]:
    # LL-A's shape: the SSD one plus lam with 16 levels in the tile (BLOCK_L), chunk 64 (LOG2_BT 6).
    ll = importlib.import_module("redpajama.kernels.log_linear.log_linear")
    meta = dict(
        H=24, G=1, P=64, N=128, BT=64, LOG2_BT=6, BLOCK_N=128, BLOCK_P=64, BLOCK_L=16, DOT_PREC="tf32"
    )
    meta["NB"] = ll.DBC_BLOCK_N  # the dB/dC kernel's N-block (an argument of that kernel only)
    fp32 = ("dt", "A", "D", "lam", "states", "a_last", "h_lv", "d_hlv", "d_st", "d_tot", "dlam", "ddt")
    fp32 += ("dB_h", "dC_h", "dA_part", "dD_part", "r_state", "dcs_state", "dlast_state")
    out = []
    for name in dir(ll):
        kern = getattr(ll, name)
        if not (
            name.startswith("log_linear_chunk") and name.endswith("_kernel") and hasattr(kern, "arg_names")
        ):
            continue
        warps = ll.BWD_SCAN_WARPS if "scan_bwd" in name else ll.NUM_WARPS
        warps = ll.LEVELS_BWD_WARPS if "levels_bwd" in name else warps
        c = {k: v for k, v in meta.items() if k in kern.arg_names}
        ptrs = tuple(a for a in kern.arg_names if a in fp32)
        label = f"log-linear {name[len('log_linear_chunk_') : -7]}"
        out.append(Spec(label, ll.__name__, name, c, warps, fp32_ptrs=ptrs, ints=("T", "L", "J")))
    # The bucket-state passes at LL-A: 128 chunks, so 7 levels in an 8-row tile.
    buckets = importlib.import_module("redpajama.kernels.log_linear.buckets")
    for name, (block, warps) in (
        ("bucket_states_fwd_kernel", buckets.FWD_LAUNCH),
        ("bucket_states_bwd_kernel", buckets.BWD_LAUNCH),
    ):
        kern = getattr(buckets, name)
        c = dict(H=24, NP=128 * 64, BLOCK_J=8, BLOCK=block)
        ptrs = tuple(a for a in kern.arg_names if a not in c and a not in ("NC", "J"))
        label = f"log-linear {name[:-7].replace('_', ' ')}"
        out.append(Spec(label, buckets.__name__, name, c, warps, fp32_ptrs=ptrs, ints=("NC", "J")))
    return out


def gated_deltanet_specs() -> list[Spec]:
    # The log-linear Gated DeltaNet bucket passes at the sequence-mixer benchmark's shape: chunk 64,
    # keys 128, values 64, float32 chunk terms, TF32 dots (bf16 inputs).
    buckets = importlib.import_module("redpajama.kernels.log_linear_gdn.buckets")
    out = []
    for name, launch in (
        ("gdn_buckets_fwd_kernel", buckets.FWD_LAUNCH),
        ("gdn_buckets_bwd_states_kernel", buckets.BWD_LAUNCH),
        ("gdn_buckets_bwd_grads_kernel", buckets.GRADS_LAUNCH),
    ):
        kern = getattr(buckets, name)
        c = dict(C=64, K=128, V=64, BV=min(launch[0], 64), DOT_PREC="tf32")
        if "BK" in kern.arg_names:  # the gradient kernel: key blocks, whole value rows
            c.update(BK=launch[0], BV=64)
        ints = tuple(a for a in ("NC", "J", "SLOTS", "BH") if a in kern.arg_names)
        ptrs = tuple(a for a in kern.arg_names if a not in c and a not in ints)
        label = f"log-linear GDN {name[len('gdn_buckets_') : -7].replace('_', ' ')}"
        out.append(Spec(label, buckets.__name__, name, c, launch[1], fp32_ptrs=ptrs, ints=ints))
    return out


def elementwise_specs() -> list[Spec]:
    # The packages export functions of the same names as these modules.
    rope = importlib.import_module("redpajama.kernels.rope.rope_qkv")
    swiglu = importlib.import_module("redpajama.kernels.swiglu.swiglu")

    rmsnorm = importlib.import_module("redpajama.kernels.rmsnorm.rmsnorm")

    rope_c = dict(N_Q=16, N_KV=16, D=64, BLOCK_T=2, BLOCK_Q=16, BLOCK_KV=16, BLOCK_HALF=32)
    norm_c = rmsnorm._config(1024)
    strides = tuple(f"s_{t}{s}" for t in "qkv" for s in "bth")
    block = swiglu._block(2816)
    return [
        Spec(
            "add + rmsnorm fwd (468m)",
            rmsnorm.__name__,
            "rmsnorm_fwd_kernel",
            dict(HAS_Y=True, BLOCK=norm_c["BLOCK"]),
            norm_c["num_warps"],
            fp32_ptrs=("weight", "rstd"),
            ints=("D",),
            floats=("eps",),
        ),
        Spec(
            "add + rmsnorm bwd (468m)",
            rmsnorm.__name__,
            "rmsnorm_bwd_kernel",
            dict(HAS_DH=True, BLOCK=norm_c["BLOCK"]),
            norm_c["num_warps"],
            fp32_ptrs=("weight", "rstd", "d_w_part"),
            ints=("M", "D"),
        ),
        Spec(
            "rope fwd (468m)",
            rope.__name__,
            "rope_qkv_fwd_kernel",
            rope_c,
            4,
            fp32_ptrs=("cos", "sin"),
            ints=("BT", "T"),
        ),
        Spec(
            "rope bwd (468m)",
            rope.__name__,
            "rope_qkv_bwd_kernel",
            dict(rope_c, s_qd=1, s_kd=1, s_vd=1),
            4,
            fp32_ptrs=("cos", "sin"),
            ints=("BT", "T", *strides),
        ),
        Spec(
            "swiglu fwd (468m)",
            swiglu.__name__,
            "swiglu_fwd_kernel",
            dict(BLOCK=block),
            swiglu.NUM_WARPS,
            ints=("H",),
        ),
        Spec(
            "swiglu bwd (468m)",
            swiglu.__name__,
            "swiglu_bwd_kernel",
            dict(BLOCK=block),
            swiglu.NUM_WARPS,
            ints=("H",),
        ),
    ]


def decode_specs() -> list[Spec]:
    """The decode kernels as the launcher picks them on a Hopper GPU (`paged.gluon_ready` stands
    in for the GPU this machine lacks, only while the specs are built)."""
    from unittest import mock

    import triton

    from redpajama.kernels.decode import paged

    # With another Triton than the one the Gluon kernel is written for, GLA's rows show the
    # Triton kernel the launcher falls back to.
    gluon_matches = triton.__version__.split(".")[:2] == paged._GLUON_API
    with mock.patch.object(paged, "gluon_ready", lambda device: gluon_matches):
        return _decode_specs(gluon_matches)


def _decode_specs(gluon_matches: bool) -> list[Spec]:
    # DEC-A: B = 128 sequences of capacity T = 8192 in pages of 64, H = 128 query heads. Each cache
    # width at Q = 1 as the launcher picks S at that shape (GTA-8's 1024 programs need no split),
    # the split variant of every kernel (fewer sequences split GTA-8 too), the unsplit kernel at
    # Q = 2 (speculative decoding: twice the rows, their own tiles) and the merge of S partials.
    import triton

    from redpajama.kernels.decode.paged import WIDE_WS_LAUNCH_REGISTERS, config_for, row_major_blocks

    module = "redpajama.kernels.decode.paged"
    b, h, capacity = 128, 128, 8192
    ints = ("s_qa_t", "s_qa_h", "s_qr_t", "s_qr_h", "max_pages", "chunk", "n_splits")
    out = []
    for label, g, ka, dc, dr in (
        ("GTA-8", 8, 64, 128, 64),
        ("GLA-2", 2, 256, 256, 64),
        ("MLA", 1, 512, 512, 64),
    ):
        splits = 2
        for q, split in ((1, False), (1, True), (2, False)):
            rows = q * h // g
            cfg = config_for(CUDA, dc, rows)
            bm = max(16, min(rows, cfg.max_rows))
            if q == 1 and not split:  # the launcher's split count at Q = 1, for the split variant
                row_blocks = triton.cdiv(rows, bm)
                splits = max(
                    2,
                    min(triton.cdiv(cfg.min_programs, b * g * row_blocks), triton.cdiv(capacity, 2 * cfg.bs)),
                )
            consts = dict(Q=q, H=h, G=g, KA=ka, DC=dc, DR=dr, PS=64, BM=bm, BS=cfg.bs, BR=dr)
            descs = {}
            # GTA's groups by twos where paged.pairs_fit takes them (DEC-A's pages hold whole tiles)
            if cfg.pair_groups and gluon_matches and 32 < 2 * rows <= 64:
                out.append(
                    Spec(
                        f"decode {label} Q={q} S={splits if split else 1} Gluon warp-specialized, groups by twos",
                        "redpajama.kernels.decode.row_major_ws",
                        "paged_decode_ws_kernel",
                        dict(consts, BM=64, BC=2 * dc, GP=2, NS=cfg.stages, SPLIT=split, num_warps=4),
                        4,
                        cfg.stages,
                        fp32_ptrs=("o", "lse") if split else ("lse",),
                        i32_ptrs=("block_table", "seq_lens"),
                        ints=ints,
                        floats=("scale",),
                        descs=dict(desc_c=(cfg.bs, 2 * dc), desc_r=(cfg.bs, dr)),
                        gluon=True,
                    )
                )
                continue
            if cfg.keys_major:  # the transposed kernel (decode/keys_major.py), as the launcher picks it
                kernel, kmodule = "paged_decode_keys_major_kernel", "redpajama.kernels.decode.keys_major"
                consts.update(BA=ka, BB=0 if dc == ka else dc - ka)
                if cfg.tma:  # pages of 64 hold whole tiles: the TMA variant
                    kernel = "paged_decode_keys_major_tma_kernel"
                    descs = dict(desc_ca=(cfg.bs, ka), desc_cb=(cfg.bs, dc - ka or ka), desc_r=(cfg.bs, dr))
            elif cfg.warp_specialized and gluon_matches:  # a Gluon kernel, as paged.ws_fits picks it
                bc = row_major_blocks(dc)[0]
                wide = dc > bc  # two column blocks: decode/wide_latent_ws.py, else row_major_ws.py
                out.append(
                    Spec(
                        f"decode {label} Q={q} S={splits if split else 1} Gluon warp-specialized",
                        "redpajama.kernels.decode." + ("wide_latent_ws" if wide else "row_major_ws"),
                        "paged_decode_wide_ws_kernel" if wide else "paged_decode_ws_kernel",
                        dict(
                            consts,
                            BC=bc,
                            NS=cfg.stages,
                            SPLIT=split,
                            num_warps=4,
                            **({} if wide else {"GP": 1}),
                        ),
                        4,
                        cfg.stages,
                        fp32_ptrs=("o", "lse") if split else ("lse",),
                        i32_ptrs=("block_table", "seq_lens"),
                        ints=ints,
                        floats=("scale",),
                        descs=dict(desc_c=(cfg.bs, bc), desc_r=(cfg.bs, dr)),
                        gluon=True,
                        maxnreg=WIDE_WS_LAUNCH_REGISTERS if wide else None,
                    )
                )
                continue
            else:  # the row-major kernel (decode/row_major.py): column blocks of at most 256
                kernel, kmodule = "paged_decode_kernel", "redpajama.kernels.decode.row_major"
                bc, bd = row_major_blocks(dc)
                consts.update(BC=bc, BD=bd)
                if cfg.tma:
                    kernel = "paged_decode_tma_kernel"
                    descs = dict(desc_c=(cfg.bs, bc), desc_d=(cfg.bs, bd or bc), desc_r=(cfg.bs, dr))
            out.append(
                Spec(
                    f"decode {label} Q={q} S={splits if split else 1}"
                    + (" keys-major" if cfg.keys_major else "")
                    + (" TMA" if descs else ""),
                    kmodule,
                    kernel,
                    dict(consts, PRECISION="tf32", SPLIT=split),
                    cfg.warps,
                    cfg.stages,
                    fp32_ptrs=("o", "lse") if split else ("lse",),
                    i32_ptrs=("block_table", "seq_lens"),
                    ints=ints,
                    floats=("scale",),
                    descs=descs,
                )
            )
        out.append(
            Spec(
                f"decode combine Dc={dc} S={splits}",
                module,
                "paged_decode_combine_kernel",
                dict(DC=dc, BSP=triton.next_power_of_2(splits), BC=dc),
                4,
                1,
                fp32_ptrs=("o_part", "lse_part"),
                ints=("n_splits",),
            )
        )
    return out


def compile_spec(spec: Spec) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas
    from triton.compiler import ASTSource

    kern = getattr(importlib.import_module(spec.module), spec.kernel)
    names = kern.arg_names
    signature = {n: spec.arg_type(n) for n in names}
    # Pointers and integers divisible by 16, as Triton's launcher specializes real launches.
    attrs = {
        (names.index(n),): [["tt.divisibility", 16]]
        for n in names
        if signature[n] == "i32" or signature[n].startswith("*")
    }
    if spec.gluon:
        from triton.experimental.gluon._runtime import GluonASTSource as ASTSource  # noqa: N814
    source = ASTSource(
        fn=kern,
        signature=signature,
        constexprs={(names.index(k),): v for k, v in spec.constexprs.items()},
        attrs=attrs,
    )
    compiled = triton.compile(
        source,
        target=GPUTarget("cuda", ARCH, 32),
        options={
            "num_warps": spec.warps,
            "num_stages": spec.stages,
            **({"maxnreg": spec.maxnreg} if spec.maxnreg else {}),
        },
    )
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(compiled.asm["ptx"])
        f.flush()
        report = subprocess.run(
            [get_ptxas(ARCH).path, f"-arch=sm_{ARCH}a", "-v", f.name, "-o", "/dev/null"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
    regs = re.search(r"Used (\d+) registers", report)
    spill = re.search(r"(\d+) bytes spill stores", report)
    return dict(
        registers=int(regs.group(1)),
        spill_store_bytes=int(spill.group(1)) if spill else 0,
        shared_bytes=compiled.metadata.shared,
        # Programs an SM can hold by registers (65536 a SM) and shared memory (228 KB).
        programs_per_sm=min(
            65536 // (int(regs.group(1)) * 32 * spec.warps), 233472 // max(compiled.metadata.shared, 1)
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "kernel_registers.json"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    groups = (flash_specs, moe_specs, ssd_specs, log_linear_specs, gated_deltanet_specs, elementwise_specs)
    for group in (*groups, decode_specs):
        for spec in group():
            row = dict(kernel=spec.label, triton_kernel=spec.kernel, warps=spec.warps, stages=spec.stages)
            try:
                row.update(compile_spec(spec))
            except Exception as err:  # noqa: BLE001 - report and go on to the next kernel
                row["error"] = f"{type(err).__name__}: {str(err).splitlines()[-1][:160] if str(err) else ''}"
            rows.append(row)
            if "error" in row:
                print(f"{spec.label:<38} ERROR {row['error']}", flush=True)
            else:
                print(
                    f"{spec.label:<38} w{spec.warps} s{spec.stages}  regs {row['registers']:>3}  "
                    f"spill {row['spill_store_bytes']:>5} B  smem {row['shared_bytes'] // 1024:>4} KB  "
                    f"programs/SM {row['programs_per_sm']}",
                    flush=True,
                )
    write_json(args.output, dict(arch=f"sm_{ARCH}a", versions=versions("triton", "torch"), rows=rows))
    print(f"wrote {args.output}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
