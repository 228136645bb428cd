#!/usr/bin/env python3
"""Patches src/backend/cuda/mla_decode.cu in place into a measurement build of the MLA decode
kernel (never committed; `git checkout -- src/backend/cuda/mla_decode.cu` restores it):

  --loads-only   every wgmma removed; every load, barrier and softmax step kept: what the
                 loads alone take (sessions 39-40: 140 us at 128 heads on an H100)
  --leader-only  head block 1 of every token exits at once (with --loads-only: whether the
                 second head block's L2 reads cost the loads anything; session 40: 4-5 us)
  --phases       threads 0 and 128 add clock64() deltas between the phases of warpgroup 0's
                 and warpgroup 1's tile loops into shared memory; a one-thread kernel launched
                 after each decode launch prints them for 8 blocks as `PH wg0 h128 c1 ...` lines
                 for bench/hopper/phases.py (printf in the decode kernel itself would make
                 ptxas serialize its wgmmas)

Each switch matches the kernel's text and stops with the line it could not find when the kernel
has changed under it. With build_variant.sh (PATCH="python3 bench/hopper/mla_probe.py ...").
"""
import argparse
import re
import sys

PATH = "src/backend/cuda/mla_decode.cu"


def replace_once(s, old, new):
    if s.count(old) != 1:
        sys.exit(f"mla_probe: expected one match of:\n{old}")
    return s.replace(old, new)


def loads_only(s):
    s, n1 = re.subn(r"^(\s*)wgmma_m64n64k16_ss\(s, qd \+ off, kd \+ off\);", r"\1(void)off;", s, flags=re.M)
    s, n2 = re.subn(r"^#pragma unroll\n(\s*)for \(int kk = 0; kk < kRows / 16; \+\+kk\) wgmma_m64n256k16_rs.*$",
                    r"\1(void)vd;", s, flags=re.M)
    if n1 != 1 or n2 != 1:
        sys.exit("mla_probe: the S or P . V wgmma line was not found")
    return s


def leader_only(s):
    old = "  w.n_tiles = ceil_div(w.k_end - w.k_begin, kRows);\n"
    return replace_once(s, old, "  if (blockIdx.x == 1) {\n    wait_for_previous_kernels();\n    return;\n  }\n" + old)


# (text after which a mark goes, mark) in warpgroup 0's step and warpgroup 1's loop, in order.
WG0_MARKS = [
    ("  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);\n  rescale(o, alpha);\n", "PHM(0)"),
    ("  if constexpr (kMore) issue_s(s, w.q_tile, w.tile(it + 1), w.bars_of(it + 1), w.parity(it + 1));\n", "PHM(1)"),
    ("  issue_pv(o, pv, kv, 0);\n", "PHM(2)"),
    ("    wgmma_wait<1>();  // S of tile it + 1 (committed first) is done\n    fence_regs(s);\n", "PHM(3)"),
    ("    softmax(s, w.k_end - k0 - kRows, p.scale_log2, st, next_alpha, next_pv);\n", "PHM(4)"),
    ("    publish_p(ex, next_pv, next_alpha, false);\n", "PHM(5)"),
    ("  wgmma_wait<0>();\n  fence_regs(o);\n  if (", "PHM(6)"),
]
WG1_MARKS = [
    ("    named_sync(kPReady, kThreads);\n", "PHN(0)"),
    ("    if (it + 1 < w.n_tiles) named_arrive(kPTaken, kThreads);\n", "PHN(1)"),
    ("    for (int blk = 4; blk < 8; ++blk) mbarrier_wait(bars + 8 * blk, w.parity(it));  // makes the copy visible here\n",
     "PHN(2)"),
]


def phases(s):
    s = replace_once(s, "  uint64_t full[2][kPieces];", "  long long ph[16];\n  uint64_t full[2][kPieces];")
    s = replace_once(s, "constexpr int kLora = 512", "__device__ long long g_ph[8][16];\nconstexpr int kLora = 512")
    mark0 = ("  long long c_ = clock64(), c2_;\n"
             "#define PHM(i) if (threadIdx.x == 0) { c2_ = clock64(); ex.ph[i] += c2_ - c_; c_ = c2_; }\n")
    s = replace_once(s, "  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);\n",
                     mark0 + "  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);\n")
    for anchor, mark in WG0_MARKS:
        if anchor.endswith("  if ("):  # the mark goes before the refill's `if`
            s = replace_once(s, anchor, anchor[:-len("  if (")] + f"  {mark}\n  if (")
        else:
            indent = re.match(r"\s*", anchor.splitlines()[-1]).group(0)
            s = replace_once(s, anchor, anchor + f"{indent}{mark}\n")
    s = replace_once(s, "  if constexpr (kMore) read_p(ex, pv, alpha);\n}\n",
                     "  PHM(7)\n  if constexpr (kMore) read_p(ex, pv, alpha);\n}\n")
    mark1 = ("    long long c_ = clock64(), c2_;\n"
             "#define PHN(i) if (threadIdx.x == 128) { c2_ = clock64(); ex.ph[8 + i] += c2_ - c_; c_ = c2_; }\n")
    s = replace_once(s, "    named_sync(kPReady, kThreads);\n", mark1 + "    named_sync(kPReady, kThreads);\n")
    for anchor, mark in WG1_MARKS:
        s = replace_once(s, anchor, anchor + f"    {mark}\n")
    # warpgroup 1: after P . V's issue and the rope refill, after its wait, after the refill of 4-7
    s = replace_once(s, "    wgmma_wait<0>();\n    fence_regs(o);\n    if (refill) {",
                     "    PHN(3)\n    wgmma_wait<0>();\n    fence_regs(o);\n    PHN(4)\n    if (refill) {")
    s = replace_once(s, "k0 + 2 * kRows, w.k_end, 4, 8);\n    }\n",
                     "k0 + 2 * kRows, w.k_end, 4, 8);\n    }\n    PHN(5)\n")
    s = replace_once(s, "    for (int i = 0; i < 2 * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);\n",
                     "    for (int i = 0; i < 2 * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);\n"
                     "    for (int i = 0; i < 16; ++i) ex.ph[i] = 0;\n")
    s = replace_once(s, "  __syncthreads();\n  float inv[2];\n",
                     "  __syncthreads();\n"
                     "  if (threadIdx.x == 0 && blockIdx.z == 0 && blockIdx.y % 16 == 0 && blockIdx.x < 2)\n"
                     "    for (int i = 0; i < 16; ++i) g_ph[blockIdx.y / 16 * 2 + blockIdx.x][i] = ex.ph[i];\n"
                     "  float inv[2];\n")
    s = replace_once(s, "// Whether the device runs the sm_90a code of this file",
                     "__global__ void ph_print(int heads) {\n"
                     "  for (int b = 0; b < 8; ++b) {\n"
                     "    const long long* q = g_ph[b];\n"
                     '    printf("PH wg0 h%d %lld %lld %lld %lld %lld %lld %lld %lld\\n", heads, q[0], q[1], q[2], q[3],'
                     " q[4], q[5], q[6], q[7]);\n"
                     '    printf("PH wg1 h%d %lld %lld %lld %lld %lld %lld\\n", heads, q[8], q[9], q[10], q[11], q[12],'
                     " q[13]);\n  }\n}\n\n// Whether the device runs the sm_90a code of this file")
    launch = '  launch_dependent("mla_decode_kernel", kernel, grid, kThreads, kSmemBytes, s, map, p, split);\n'
    return replace_once(s, launch, launch + "  ph_print<<<1, 1, 0, s>>>(p.heads);\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads-only", action="store_true")
    ap.add_argument("--leader-only", action="store_true")
    ap.add_argument("--phases", action="store_true")
    args = ap.parse_args()
    s = open(PATH).read()
    if args.loads_only:
        s = loads_only(s)
    if args.leader_only:
        s = leader_only(s)
    if args.phases:
        s = phases(s)
    open(PATH, "w").write(s)


if __name__ == "__main__":
    main()
