#!/usr/bin/env python3
"""Patches src/backend/cuda/mla_decode.cu in place into a measurement build of the MLA decode
kernel (never committed; `git checkout -- src/backend/cuda/mla_decode.cu` restores it):

  --loads-only   every wgmma removed; every load, barrier and softmax step kept: what the
                 loads alone take (sessions 39-40: 140 us at 128 heads on an H100)
  --leader-only  head block 1 of every token exits at once (with --loads-only: whether the
                 second head block's L2 reads cost the loads anything; session 40: 4-5 us)
  --phases       threads 0 and 128 add clock64() deltas between the phases of warpgroup 0's
                 and warpgroup 1's tile loops into shared memory; a one-thread kernel launched
                 after each decode launch prints their sums over a block's tiles for 8 blocks as
                 `PH wg0 h128 c1 ...` / `PH wg1 ...` lines for bench/hopper/phases.py, one column a
                 phase of WG0_PHASES / WG1_PHASES below (printf in the decode kernel itself would
                 make ptxas serialize its wgmmas). Phases inside a refill's branch count only the
                 tiles that refill (all but a split's last two).

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


# Warpgroup 0's step and warpgroup 1's loop: (phase, the text after which its end is marked), in
# order; each phase runs from the mark before it (the first from the tile's start).
WG0_PHASES = [
    ("rescale O", "  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);\n  rescale(o, alpha);\n"),
    ("issue S (waits for its pieces)",
     "  if constexpr (kMore) issue_s(s, w.q_tile, w.tile(it + 1), w.bars_of(it + 1), w.parity(it + 1));\n"),
    ("issue its P . V half", "  issue_pv(o, pv, kv, 0);\n"),
    ("wait for S", "    wgmma_wait<1>();  // S of tile it + 1 (committed first) is done\n    fence_regs(s);\n"),
    ("softmax", "    softmax(s, w.k_end - k0 - kRows, p.scale_log2, st, next_alpha, next_pv);\n"),
    ("publish P", "    publish_p(ex, next_pv, next_alpha, false);\n"),
    ("wait for P . V", "  wgmma_wait<0>();\n  fence_regs(o);\n"),
    ("the four warps meet", "    named_sync(kGroup0, 128);  // all four warps are done with pieces 0-3\n"),
    ("refill pieces 0-3", "w.k_end, 0, 4);\n  }\n"),
]
WG1_PHASES = [
    ("wait for P", "    named_sync(kPReady, kThreads);\n"),
    ("read P", "    if (it + 1 < w.n_tiles) named_arrive(kPTaken, kThreads);\n"),
    ("wait for pieces 4-7", "mbarrier_wait(bars + 8 * blk, w.parity(it));  // makes the copy visible here\n"),
    ("rescale O, issue its P . V half", "    issue_pv(o, pv, kv, 1);\n"),
    ("refill the rope piece", "w.k_end, 8, 9);\n"),
    ("wait for P . V", "    wgmma_wait<0>();\n    fence_regs(o);\n"),
    ("the four warps meet", "      named_sync(kGroup1, 128);  // all four warps are done with pieces 4-7\n"),
    ("refill pieces 4-7", "w.k_end, 4, 8);\n    }\n"),
]


def mark_phases(s, phases, macro, base):
    for i, (_, anchor) in enumerate(phases):
        indent = re.match(r"\s*", anchor.splitlines()[-1]).group(0) or "    "
        s = replace_once(s, anchor, anchor + f"{indent}{macro}({base + i})\n")
    return s


def phases(s):
    s = replace_once(s, "  uint64_t full[2][kPieces];", "  long long ph[32];\n  uint64_t full[2][kPieces];")
    s = replace_once(s, "constexpr int kLora = 512", "__device__ long long g_ph[8][32];\nconstexpr int kLora = 512")
    clock = "long long c_ = clock64(), c2_;"
    macro = "#define {0}(i) if (threadIdx.x == {1}) {{ c2_ = clock64(); ex.ph[i] += c2_ - c_; c_ = c2_; }}\n"
    s = replace_once(s, "  const uint32_t kv = w.tile(it);\n  if (w.k_end",
                     "  const uint32_t kv = w.tile(it);\n  " + clock + "\n" + macro.format("PHM", 0) + "  if (w.k_end")
    s = replace_once(s, "    named_sync(kPReady, kThreads);\n",
                     "    " + clock + "\n" + macro.format("PHN", 128) + "    named_sync(kPReady, kThreads);\n")
    s = mark_phases(s, WG0_PHASES, "PHM", 0)
    s = mark_phases(s, WG1_PHASES, "PHN", 16)
    s = replace_once(s, "    for (int i = 0; i < 2 * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);\n",
                     "    for (int i = 0; i < 2 * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);\n"
                     "    for (int i = 0; i < 32; ++i) ex.ph[i] = 0;\n")
    s = replace_once(s, "  __syncthreads();\n  float inv[2];\n",
                     "  __syncthreads();\n"
                     "  if (threadIdx.x == 0 && blockIdx.z == 0 && blockIdx.y % 16 == 0 && blockIdx.x < 2)\n"
                     "    for (int i = 0; i < 32; ++i) g_ph[blockIdx.y / 16 * 2 + blockIdx.x][i] = ex.ph[i];\n"
                     "  float inv[2];\n")
    fmt = lambda n: " ".join(["%lld"] * n)
    args = lambda base, n: ", ".join(f"q[{base + i}]" for i in range(n))
    s = replace_once(s, "// Whether the device runs the sm_90a code of this file",
                     "__global__ void ph_print(int heads) {\n"
                     "  for (int b = 0; b < 8; ++b) {\n"
                     "    const long long* q = g_ph[b];\n"
                     f'    printf("PH wg0 h%d {fmt(len(WG0_PHASES))}\\n", heads, {args(0, len(WG0_PHASES))});\n'
                     f'    printf("PH wg1 h%d {fmt(len(WG1_PHASES))}\\n", heads, {args(16, len(WG1_PHASES))});\n'
                     "  }\n}\n\n// Whether the device runs the sm_90a code of this file")
    launch = '  launch_dependent("mla_decode_kernel", kernel, grid, kThreads, kSmemBytes, s, map, p, split);\n'
    return replace_once(s, launch, launch + "  ph_print<<<1, 1, 0, s>>>(p.heads);\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads-only", action="store_true")
    ap.add_argument("--leader-only", action="store_true")
    ap.add_argument("--phases", action="store_true")
    ap.add_argument("--list", action="store_true", help="print the --phases columns and exit")
    args = ap.parse_args()
    if args.list:
        for wg, phases_ in (("wg0", WG0_PHASES), ("wg1", WG1_PHASES)):
            print(wg + ": " + " | ".join(name for name, _ in phases_))
        return
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
