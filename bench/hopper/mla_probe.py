#!/usr/bin/env python3
"""Patches src/backend/cuda/mla_decode.cu in place into a measurement build of the MLA decode
kernel (never committed; `git checkout -- src/backend/cuda/mla_decode.cu` restores it):

  --loads-only   every wgmma removed; every load, barrier and softmax step kept: what the
                 loads alone take (sessions 39-40: 140 us at 128 heads on an H100)
  --leader-only  head block 1 of every token exits at once (with --loads-only: whether the
                 second head block's L2 reads cost the loads anything; session 40: 4-5 us)
  --phases       threads 0, 128 and 320 add clock64() deltas between the phases of warpgroup
                 0's and warpgroup 1's tile loops and of the copy warp of pieces 0-3 into shared
                 memory; a one-thread kernel launched after each decode launch prints their sums
                 over a block's tiles for 8 blocks as `PH wg0 h128 c1 ...` / `PH wg1 ...` /
                 `PH copy ...` lines for bench/hopper/phases.py, one column a phase of WG0_PHASES /
                 WG1_PHASES / COPY_PHASES below (printf in the decode kernel itself would make
                 ptxas serialize its wgmmas). Phases inside a refill's branch count only the tiles
                 that refill (all but a split's last two). Each mark's own shared-memory update
                 (a load and a store) is counted in the phase after it.
  --timeline     thread 0 of every block records %globaltimer at the kernel's entry, once Q and the
                 barriers are ready, after its tile loop and at its exit, and clock64() around the
                 loop; a one-thread kernel launched after each decode launch prints them, relative
                 to the launch's earliest entry, as `TL block entry ready loop_end exit cycles`
                 lines after a `TLL blocks` line, for bench/hopper/timeline.py: where the time
                 outside the tile loops goes, how far the blocks spread, and the SM clock

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


# Warpgroup 0's step, warpgroup 1's loop and the copy loop: (phase, the text after which its end
# is marked), in order; each phase runs from the mark before it (the first from the tile's start).
WG0_PHASES = [
    ("rescale O", "  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);\n  rescale(o, alpha);\n"),
    ("issue its P . V half", "  issue_pv(o, pv, kv, 0);\n"),
    ("issue S (waits for its pieces)",
     "    issue_s(s, w.q_tile, w.tile(it + 1), w.bars_of(it + 1), w.parity(it + 1));\n"),
    ("wait for P . V", "    wgmma_wait<1>();  // P . V (committed first) is done\n"),
    ("free pieces 0-3", "  if (it + 2 < w.n_tiles) release(w.empty_of(it, kLowGroup));\n"),
    ("wait for S", "    wgmma_wait<0>();\n    fence_regs(s);\n"),
    ("free the rope piece", "    if (it + 3 < w.n_tiles) release(w.empty_of(it + 1, kRopeGroup));\n"),
    ("softmax", "    softmax(s, w.k_end - k0 - kRows, p.scale_log2, st, alpha, pv);\n"),
    ("publish P", "    publish_p(ex, pv, alpha, false);\n"),
]
WG1_PHASES = [
    ("wait for P", "    named_sync(kPReady, kMathThreads);\n"),
    ("read P", "    if (it + 1 < w.n_tiles) named_arrive(kPTaken, kMathThreads);\n"),
    ("wait for pieces 4-7", "mbarrier_wait(bars + 8 * blk, w.parity(it));  // makes the copy visible here\n"),
    ("rescale O, issue its P . V half", "    issue_pv(o, pv, kv, 1);\n"),
    ("wait for P . V", "    wgmma_wait<0>();\n    fence_regs(o);\n"),
    ("free pieces 4-7", "    if (it + 2 < w.n_tiles) release(w.empty_of(it, kHighGroup));\n"),
]
# The copy warp of pieces 0-3 (thread 320).
COPY_PHASES = [
    ("read the slots", "slots = box_slot(p.batch, w.seq, k0, w.k_end);\n"),
    ("wait for the pieces to free", "    mbarrier_wait(w.empty_of(it, g), w.parity(it - 2));\n"),
    ("issue the refill", "group_first(g), group_last(g));\n"),
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
    s = replace_once(s, "    named_sync(kPReady, kMathThreads);\n",
                     "    " + clock + "\n" + macro.format("PHN", 128) + "    named_sync(kPReady, kMathThreads);\n")
    first_copy = "    const int k0 = w.k_begin + it * kRows, slots"
    s = replace_once(s, first_copy, "    " + clock + "\n" + macro.format("PHC", 320) + first_copy)
    s = mark_phases(s, WG0_PHASES, "PHM", 0)
    s = mark_phases(s, WG1_PHASES, "PHN", 12)
    s = mark_phases(s, COPY_PHASES, "PHC", 24)
    # The copy warps see the exchange area through the block's shared memory too.
    s = replace_once(s, "  const int g = threadIdx.x / 32 - 8;\n",
                     "  const int g = threadIdx.x / 32 - 8;\n  extern __shared__ unsigned char smem_raw[];\n"
                     "  Exchange& ex = *reinterpret_cast<Exchange*>(smem_raw + (w.q_tile - smem_addr(smem_raw)) + "
                     "3 * kTileBytes);\n")
    init = "for (int i = 0; i < 2 * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);\n"
    s = replace_once(s, init, init + "      for (int i = 0; i < 32; ++i) ex.ph[i] = 0;\n")
    sums = "  named_sync(kSums, kMathThreads);  // the copy warpgroup has left\n"
    s = replace_once(s, sums, sums +
                     "  if (threadIdx.x == 0 && blockIdx.z == 0 && blockIdx.y % 16 == 0 && blockIdx.x < 2)\n"
                     "    for (int i = 0; i < 32; ++i) g_ph[blockIdx.y / 16 * 2 + blockIdx.x][i] = ex.ph[i];\n")
    fmt = lambda n: " ".join(["%lld"] * n)
    args = lambda base, n: ", ".join(f"q[{base + i}]" for i in range(n))
    prints = "".join(f'    printf("PH {tag} h%d {fmt(len(ph))}\\n", heads, {args(base, len(ph))});\n'
                     for tag, ph, base in (("wg0", WG0_PHASES, 0), ("wg1", WG1_PHASES, 12), ("copy", COPY_PHASES, 24)))
    s = replace_once(s, "// Whether the device runs the sm_90a code of this file",
                     "__global__ void ph_print(int heads) {\n"
                     "  for (int b = 0; b < 8; ++b) {\n"
                     "    const long long* q = g_ph[b];\n" + prints +
                     "  }\n}\n\n// Whether the device runs the sm_90a code of this file")
    launch = '  launch_dependent("mla_decode_kernel", kernel, grid, kThreads, kSmemBytes, s, map, p, split);\n'
    return replace_once(s, launch, launch + "  ph_print<<<1, 1, 0, s>>>(p.heads);\n")


def timeline(s):
    s = replace_once(s, "constexpr int kLora = 512",
                     "__device__ unsigned long long g_tl[2048][6];\n"
                     "__device__ __forceinline__ unsigned long long gtime() {\n"
                     "  unsigned long long t;\n  asm volatile(\"mov.u64 %0, %%globaltimer;\" : \"=l\"(t));\n  return t;\n}\n"
                     "constexpr int kLora = 512")
    s = replace_once(s, "  const DeviceBatch& b = p.batch;\n  BlockWork w;\n",
                     "  const unsigned long long tl0 = gtime();\n  const DeviceBatch& b = p.batch;\n  BlockWork w;\n")
    ready = "  __syncthreads();  // Q is in, the barriers are initialized\n"
    s = replace_once(s, ready, ready + "  const unsigned long long tl1 = gtime(), cl1 = clock64();\n")
    loop_end = "  // Rows row_a (+8); columns"
    s = replace_once(s, loop_end, "  const unsigned long long tl2 = gtime(), cl2 = clock64();\n" + loop_end)
    record = ("  if (threadIdx.x == 0) {\n"
              "    unsigned long long* r = g_tl[(blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x];\n"
              "    r[0] = tl0, r[1] = tl1, r[2] = tl2, r[3] = gtime(), r[4] = cl1, r[5] = cl2;\n  }\n")
    exit_ = "#else\n  __trap();  // launched only on sm_90 devices"
    s = replace_once(s, exit_, record + exit_)
    # An early return after the output's writes (unsplit blocks staging their rows) records too.
    s, n = re.subn(r"^(\s*)return (write_output\(.*\));\n", lambda m: m.group(1) + m.group(2) + ";\n" + record +
                   m.group(1) + "return;\n", s, flags=re.M)
    s = replace_once(s, "// Whether the device runs the sm_90a code of this file",
                     "__global__ void tl_print(int blocks) {\n"
                     "  unsigned long long base = ~0ull;\n"
                     "  for (int i = 0; i < blocks; ++i) base = min(base, g_tl[i][0]);\n"
                     "  printf(\"TLL %d\\n\", blocks);\n"
                     "  for (int i = 0; i < blocks; ++i)\n"
                     "    printf(\"TL %d %llu %llu %llu %llu %llu\\n\", i, g_tl[i][0] - base, g_tl[i][1] - base, g_tl[i][2] - base,\n"
                     "           g_tl[i][3] - base, g_tl[i][5] - g_tl[i][4]);\n"
                     "}\n\n// Whether the device runs the sm_90a code of this file")
    launch = '  launch_dependent("mla_decode_kernel", kernel, grid, kThreads, kSmemBytes, s, map, p, split);\n'
    return replace_once(s, launch, launch + "  tl_print<<<1, 1, 0, s>>>(grid.x * grid.y * grid.z);\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads-only", action="store_true")
    ap.add_argument("--leader-only", action="store_true")
    ap.add_argument("--phases", action="store_true")
    ap.add_argument("--timeline", action="store_true")
    ap.add_argument("--list", action="store_true", help="print the --phases columns and exit")
    args = ap.parse_args()
    if args.list:
        for wg, phases_ in (("wg0", WG0_PHASES), ("wg1", WG1_PHASES), ("copy", COPY_PHASES)):
            print(wg + ": " + " | ".join(name for name, _ in phases_))
        return
    s = open(PATH).read()
    if args.loads_only:
        s = loads_only(s)
    if args.leader_only:
        s = leader_only(s)
    if args.phases:
        s = phases(s)
    if args.timeline:
        s = timeline(s)
    open(PATH, "w").write(s)


if __name__ == "__main__":
    main()
