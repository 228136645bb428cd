// Absorbed-MLA decode on Hopper tensor cores (wgmma), for DeepSeek's shape: latent 512 + rope 64,
// one query token per sequence. The FlashMLA idea, written for this engine:
//
// * A block owns (64 heads of one token, one split of its context): every 64-key tile of the
//   latent cache is read from global memory once into shared memory and serves all 64 heads.
// * Q [64 heads x 576] is loaded once and stays in shared memory; S = Q . K^T (K = the 576-wide
//   cache rows) runs as wgmma with both operands read by descriptor from shared memory.
// * Online softmax on the S accumulators in registers; P is packed to bf16 (f16 over FP8 rows)
//   in registers and is the A operand of O += P . V, where V is the first 512 columns of the same
//   tile (read MN-major by the tensor cores: no transpose, no second load).
// * Two warpgroups, each owning 256 of the 512 output columns (64 x 256 f32 accumulators = 128
//   registers a thread). Warpgroup 0 alone computes S (m64n64: Q and K bytes read once per k16
//   step; two m64n32 halves, one per warpgroup, read Q twice and were bound by shared-memory
//   bandwidth) and the softmax, and hands P and the rows' rescale factors to warpgroup 1
//   through shared memory. A tile's step on warpgroup 0: its half of P . V of tile i, S of tile
//   i + 1, then the softmax of tile i + 1. Warpgroup 1 issues its half of P . V(i) as soon as
//   P(i) is out, so it runs beside those two. No block-wide barrier per tile.
// * Two tile buffers, filled by TMA (rows come through the paged block table: a box of
//   g = gcd(block size, 64) rows never straddles a page) in nine 64-column pieces, each with its
//   own barrier: S consumes the pieces as they land, and each piece is refilled with tile i + 2
//   as soon as its last readers are done with it (the rope piece after S, the latent pieces
//   after the half of P . V that reads them): they arrive on the group's "empty" barrier and a
//   third warpgroup of copy warps (40 registers a thread, the math warpgroups 232) issues the
//   refill, so no math warp waits for a refill's issue (~1,000 cycles each at 128 heads when the
//   math warps issued them). With P . V of tile i ahead of S of tile i + 1, a freed latent piece
//   is needed again a whole tile later, by S of tile i + 2 (a third 72 KiB buffer does not fit
//   next to Q). The copies evict first in L2 (FlashMLA's policy too): a step reads the cache once,
//   and at 128 heads the second head block's read still hits (V3 shape, batch 64 x 4096, H100:
//   143.8 -> 138.8 us at 128 heads, 117.2 -> 114.1 at 16; keeping head block 0's lines with
//   evict-last instead gained nothing, session 56).
// * A row's running maximum stays until a tile's exceeds it by 2^8 (P stays below 256), so most
//   tiles skip the rescale of O.
// * An FP8 cache (--kv-dtype fp8: e4m3 latent values, a float scale per 128, bf16 rope; 656
//   bytes a row) runs the same schedule on f16 tiles: TMA stages a tile's e4m3 values in the odd
//   latent pieces of its buffer (scale group j, 128 bytes a row, in piece 2j + 1) and its scales
//   in piece 6, and the copy warpgroup turns them into f16 in place (convert_warpgroup), math
//   warpgroup 1 groups 0-1 of the next tile while its P . V runs (it waits for P a fifth of its
//   time: 177 against 201 us at 128 heads, level with the pipeline without converting); the rope
//   piece lands as it is. The latent products run in f16 (Q's latent part converted once,
//   q_to_f16), the rope piece's in bf16, into the same accumulators: an e4m3 pair becomes f16 in
//   one instruction and takes two f16 multiplies, where bf16 took six instructions. With heads as
//   M there is no room beside Q for separate staging buffers, so a tile's bytes can only be
//   fetched once its buffer is free, like the bf16 rows, and S of the tile waits for the
//   conversion after them: at V3's shape, batch 64 x 4096, 203 against bf16's 142 us at 128
//   heads (each tile converted by both head blocks) and 115 against 118 at 16 (H100, session 44;
//   into bf16 tiles: 229 and 125; without converting at all: 129 and 77).
// * Narrow Q (blocks of 16 heads: launches of at most 16 heads, e.g. V3 / R1 under tensor
//   parallelism of 8, V2-Lite, and of 1-2 tokens at more heads, mla_decode_heads_per_block): the
//   same pipeline with the products turned around, S^T = K . Q^T and O^T = V^T . P^T as m64n16 (the
//   keys and the latent dims as M, the heads as N), so that no product computes dead head rows
//   (with heads as M, 48 of the 64 rows were dead: three quarters of S and P . V, and of their
//   shared-memory reads). Q takes 16 rows (18 KiB); the softmax runs down the columns (the heads'
//   maxima through shared memory, one barrier of warpgroup 0 a tile), and P^T goes to shared
//   memory by stmatrix.trans as the B operand of both halves of O^T (two buffers, handed over on
//   a barrier pair per tile parity). V3 shape, 16 heads, batch 64 x 4096 (H100): FP8 rows 105
//   against 116 us with heads as M, bf16 112.5 against 113 (memory-bound, 89 % of copy).
//   Staging the e4m3 values in Q's freed 54 KiB as three half-tile slots of tensor copies was
//   slower (120 us): the slots hold too few bytes in flight, and the converting warps waited for
//   them (ncu). (Whole tiles by bulk copy in one staging area paid: below.)
// * FP8 rows with narrow Q: the math warpgroups hold few accumulators, so a fourth warpgroup
//   (512 threads; registers 168 a math thread, 88 a converting one) converts scale groups 0-1 of
//   every tile while warpgroup 2 converts groups 2-3 (95 against 105 us with one). A tile lands
//   whole in a staging area in Q's freed space, its 656-byte rows as the cache stores them, one
//   bulk copy a page (convert_rows): the tensor copies took six boxes of 64 rows a tile, the value
//   boxes straddling two 128-byte lines a row, and even without converting that pipeline took 90
//   us. The converting warps read their parts into registers and free the area for the next tile
//   before they wait for the buffer: 83-84 against 96 us, and with the engine's old pages of 16
//   slots 87-91 against 119-122 (H100). The copies bound it now: without converting it takes 75
//   us (one 42 KB tile in flight a block: 2.3 TB/s); a ring of five 16-row slots (52 KB, a
//   quarter refilled once its two warps had read it) was slower, 90-95 us (session 48).
// * Outside the tile loop (a timeline of every block, bench/hopper/mla_probe.py --timeline): Q
//   queues ahead of tile 1 (but over narrow FP8 rows, whose tile 1 waits for tile 0's staging),
//   and an unsplit block writes O's rows through shared memory 16 bytes a thread (4-byte
//   fragment stores from all blocks at once took ~7.6 us at 128 heads).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/latent_fp8.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/wgmma.cuh"
#include "backend/cuda/wgmma_fp8.cuh"  // mbarrier and TMA helpers

// The device code exists for sm_90a only; the compute_90 PTX of this file is an empty kernel.
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSINFER_MLA_SM90A 1
#endif

namespace dsinfer::cuda {
namespace {

constexpr int kLora = 512, kRope = 64, kDim = kLora + kRope;
constexpr int kRows = 64;                       // heads per block, and keys per tile
constexpr int kNarrowHeads = 16;                // at most this many heads: narrow Q (above)
constexpr int kPieces = kDim / 64;              // 64-column (128-byte) pieces of a row
constexpr int kBlockBytes = kRows * 128;        // one piece of a tile (8 KiB)
constexpr int kTileBytes = kPieces * kBlockBytes;  // 72 KiB: Q, or one buffer of cache rows
// --kv-dtype fp8 rows at this shape (core/latent_fp8.h): 512 e4m3 values, 4 float scales, the
// 64 bf16 rope values.
constexpr int kFp8ScaleOffset = kLora, kFp8RopeOffset = kLora + 16, kFp8RowBytes = kFp8RopeOffset + 2 * kRope;
constexpr int kThreads = 384;  // warpgroups 0 and 1: the products; warpgroup 2: the copies
// A block's threads: with FP8 rows and narrow Q a fourth warpgroup converts half of every tile
// (below). The kernel's launch bounds and its launch both ask here.
__host__ __device__ constexpr int block_threads(bool fp8, bool narrow) { return fp8 && narrow ? 512 : kThreads; }
// The tensor map's rows: the cache's own length is not passed to the launch, and only the
// slots of live pages (below the cache's end) are ever addressed.
constexpr int64_t kMapRows = int64_t{1} << 30;

// Rows per TMA box: the largest power of two dividing the cache block, at most a tile. Tiles
// start at multiples of 64 keys, so no box straddles a page.
__host__ __device__ constexpr int box_rows(int block_size) {
  return (block_size & -block_size) < kRows ? (block_size & -block_size) : kRows;
}

// Named barriers (0 is __syncthreads): P and the rescale factors of a tile are out (warpgroup 0
// arrives, 1 waits), warpgroup 1 has read them (the reverse), each warpgroup's own (its dead
// V rows are zeros), the row sums are out (warpgroups 0 and 1), an FP8 tile's scales are read
// (heads as M: warpgroup 2's copy; kScalesRead1, warpgroup 1's), and Q's largest value is known,
// then Q is f16 (FP8 rows; warpgroups 0 and 1).
// Narrow Q (S^T): warpgroup 0's warps have posted their heads' maxima of a tile (kMaxes), and
// have written P^T (kPWritten); P^T's two buffers are handed over and back on kPReady / kPTaken
// for even tiles and kPReady1 / kPTaken1 for odd ones (one pair would let warpgroup 0 arrive
// twice before warpgroup 1's wait, completing the barrier without it).
enum NamedBarrier : int {
  kPReady = 1, kPTaken = 2, kGroup0 = 3, kGroup1 = 4, kSums = 5, kScalesRead = 6, kQReady = 7, kMaxes = 8,
  kPWritten = 9, kPReady1 = 10, kPTaken1 = 11, kScalesRead1 = 12
};

// A buffer's pieces in the groups their readers free together, each refilled by its own copy warp:
// the rope piece (S is done with it), 4-7 (warpgroup 1's P . V) and 0-3 (warpgroup 0's).
enum RefillGroup : int { kRopeGroup = 0, kHighGroup = 1, kLowGroup = 2, kGroups = 3 };

// Per-thread softmax state of its two rows (lane / 4 and lane / 4 + 8 of its warp's 16 heads).
struct RowState {
  float max[2] = {kNegInf, kNegInf};
  float sum[2] = {0.0f, 0.0f};  // this thread's share; the 4 threads of a row add up at the end
};

// Shared scratch after the three tiles.
struct Exchange {
  // [warp][k16 step][lane]: one A fragment per thread (lane-contiguous: no bank conflicts); with
  // narrow Q two P^T tiles (16 heads x 64 keys, 2 KiB each, 1024-aligned: swizzled B operands).
  uint4 p[4][4][32];
  float maxes[2][4][kNarrowHeads];  // narrow Q: per tile parity, warp and head, the warp's maximum
  float alpha[kRows];         // the factor by which O's rows shrink before the current tile's P . V
  float sum[kRows];           // the row sums, at the end
  uint64_t full[2][kPieces];  // mbarriers per buffer and piece: its rows have landed (TMA bytes) or
                              // been converted (FP8: the converting warps arrive)
  uint64_t empty[2][kGroups];  // per buffer and refill group: the four warps reading it are done
  // FP8 cache, heads as M: per buffer, the e4m3 values of the high and low groups have landed;
  // narrow Q: [0][0] and [0][1] are BlockWork::stage_full and stage_read.
  uint64_t staged[2][2];
};

// Q + 2 cache buffers + alignment slack + the exchange area (227 KiB is the most a block gets).
constexpr size_t kSmemBytes = 3 * kTileBytes + 1024 + sizeof(Exchange);
static_assert(kSmemBytes <= 227 * 1024, "mla decode: shared memory");

#ifdef DSINFER_MLA_SM90A
constexpr int kMathThreads = 256;  // warpgroups 0 and 1
// Where an FP8 tile's scales are staged: the first KiB of piece 6, which scale group 3's
// conversion writes, the last of the high group's. With heads as M the low group brings a second
// copy into the first KiB of piece 0, for warpgroup 1, whose conversion of group 0 overwrites it:
// each converting warpgroup reads its own copy and waits only for its own warps.
constexpr int kScalePiece = 6;
// With narrow Q an FP8 tile lands whole instead, its rows as the cache stores them (656 bytes
// each, values, scales and rope), one bulk copy a page, in a staging area after Q's 18 KiB; the
// two converting warpgroups write its f16 pieces and the rope piece from there.
constexpr int kNarrowStage = kNarrowHeads * kDim * 2;
static_assert(kNarrowStage + kRows * kFp8RowBytes <= kTileBytes, "mla decode: the FP8 staging area fits beside Q");
// Registers a thread of each role (setmaxnreg): 384 x 168 at launch, the copy warpgroup gives
// 128 x 128 back and the two math warpgroups take 256 x 64 (at 24 / 240 the copy warps spill;
// the math warpgroups fit 232 without spills or serialized wgmmas). The FP8 cache's copy warps
// also convert (at 56 they spill): 64, and the math warpgroups 216. With narrow Q (below) the
// math warpgroups hold 32 accumulators a thread, not 128: 208, and the copy warpgroup 80 (at 64
// it spilled there); over FP8 rows the two converting warpgroups 88 and the math ones 168 of a
// 512-thread block's 128 (ptxas honours each role's limit: at 224 / 32 the converters spill). A
// block's warps share the registers it launched with (an increase beyond them waits forever).
template <bool kFp8, bool kNarrow>
constexpr int kMathRegs = kNarrow ? (kFp8 ? 168 : 208) : kFp8 ? 216 : 232;
template <bool kFp8, bool kNarrow>
constexpr int kCopyRegs = kNarrow ? (kFp8 ? 88 : 80) : kFp8 ? 64 : 40;
template <bool kFp8, bool kNarrow>
constexpr int kLaunchRegs = 65536 / block_threads(kFp8, kNarrow) / 8 * 8;
template <bool kFp8, bool kNarrow>
constexpr bool kRegsFit = 2 * 128 * kMathRegs<kFp8, kNarrow> +
                              (block_threads(kFp8, kNarrow) - kMathThreads) * kCopyRegs<kFp8, kNarrow> <=
                          block_threads(kFp8, kNarrow) * kLaunchRegs<kFp8, kNarrow>;
static_assert(kRegsFit<false, false> && kRegsFit<true, false> && kRegsFit<false, true> && kRegsFit<true, true>,
              "mla decode: registers");

// The pieces of a refill group: [group_first, group_last).
__device__ constexpr int group_first(int g) { return g == kRopeGroup ? 8 : g == kHighGroup ? 4 : 0; }
__device__ constexpr int group_last(int g) { return g == kRopeGroup ? 9 : group_first(g) + 4; }

__device__ __forceinline__ void cp_async_16_to(uint32_t dst, const void* src, bool live) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(live ? src : g_zero_src),
               "r"(live ? 16 : 0));
}
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void st_shared_zero16(uint32_t addr) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(addr), "r"(0) : "memory");
}

// The cache slot of box `lane` of the tile of rows [k0, min(k0 + 64, k_end)) of sequence `seq`
// (0 for lanes past the last box; a tile has at most 8 boxes, the cache blocks being multiples
// of 8 slots): the block table's two dependent reads, done by a copy warp before it waits for
// the pieces to free.
__device__ __forceinline__ int box_slot(const DeviceBatch& b, int seq, int k0, int k_end) {
  const int pos = k0 + (threadIdx.x % 32) * box_rows(b.block_size.d);
  return pos < min(k0 + kRows, k_end) ? cache_slot(b, seq, pos) : 0;
}

// Pieces [first, last) of cache rows [k0, min(k0 + 64, k_end)) into the swizzled tile at
// `tile`, each piece announcing its bytes on its barrier (bars + 8 piece); `slots` is this
// lane's box_slot. Boxes past k_end are not read (their pages may not exist). One whole warp
// (it passes the slots around); its lane 0 issues the copies.
__device__ __forceinline__ void load_pieces(uint32_t tile, uint32_t bars, const CUtensorMap* map, const DeviceBatch& b,
                                            int slots, int k0, int k_end, int first, int last) {
  const int g = box_rows(b.block_size.d), boxes = ceil_div(min(kRows, k_end - k0), g);
  const bool issuer = threadIdx.x % 32 == 0;
  const uint64_t policy = l2_evict_first();
  if (issuer)
    for (int blk = first; blk < last; ++blk) mbarrier_arrive_expect_tx(bars + 8 * blk, boxes * g * 128);
  for (int j = 0; j < boxes; ++j) {
    const int slot = __shfl_sync(0xffffffffu, slots, j);
    if (issuer)
      for (int blk = first; blk < last; ++blk)
        tma_load_2d(tile + blk * kBlockBytes + j * g * 128, map, bars + 8 * blk, blk * 128, slot, policy);
  }
}

// Q rows of heads [h0, h0 + kQRows) of token t: [q_lat | q_rope], pieces of kQRows rows; heads
// past the last are zeros. The 256 math threads.
template <int kQRows>
__device__ __forceinline__ void load_q_tile(uint32_t tile, const MlaParams& p, int t, int h0) {
  const int c = threadIdx.x % 8;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = threadIdx.x / 8 + half * 32;
    if (r >= kQRows) break;
    const bool live = h0 + r < p.heads;
    const int64_t row = static_cast<int64_t>(t) * p.heads + (live ? h0 + r : 0);
#pragma unroll
    for (int blk = 0; blk < kPieces; ++blk) {
      const bf16* src = blk < kLora / 64 ? p.q_lat + row * kLora + blk * 64 + c * 8 : p.q_rope + row * kRope + c * 8;
      cp_async_16_to(tile + sw128_offset(r, blk * 8 + c, kQRows), src, live);
    }
  }
}

// S accumulators of NS / 4 n8 key blocks: s[4i + e] is row lane/4 (+8 for e >= 2), key
// 8i + 2(lane%4) + (e&1). Masks keys >= n_live (only a split's last tile has any) and returns
// each row's maximum over these keys, unscaled (-inf when none is live).
template <int NS>
__device__ __forceinline__ void mask_and_max(float (&s)[NS], int n_live, float (&row_max)[2]) {
  const int lane = threadIdx.x % 32;
  if (n_live < kRows) {
#pragma unroll
    for (int i = 0; i < NS; ++i) {
      const int key = (i / 4) * 8 + 2 * (lane % 4) + (i & 1);
      if (key >= n_live) s[i] = kNegInf;
    }
  }
  row_max[0] = row_max[1] = kNegInf;
#pragma unroll
  for (int i = 0; i < NS; ++i) row_max[(i / 2) & 1] = fmaxf(row_max[(i / 2) & 1], s[i]);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 1));
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 2));
  }
}

// A row's running maximum only moves when the tile's exceeds it by more than this (log2 units):
// until then P stays below 2^8 (exact enough in bf16, far from f32's range), and O and the sums
// need no rescale, which skips 128 multiplies a thread on most tiles.
constexpr float kRescaleSlack = 8.0f;

// Online-softmax step given the tile's unscaled row maxima (finite: key 0 of every tile is
// live): updates the running max (log2 units) and sum, returns the factor by which O must shrink
// (1 when the max stays), and leaves P packed as A fragments, one per k16 step: a0 (row, keys
// lo), a1 (row + 8, keys lo), a2 (row, keys hi), a3 (row + 8, keys hi), i.e. n8 blocks 2kk and
// 2kk + 1; as f16 pairs for f16 products (kF16).
template <bool kF16, int NS>
__device__ __forceinline__ void exponentiate(float (&s)[NS], const float (&tile_max)[2], float scale_log2,
                                             RowState& st, float (&alpha)[2], uint32_t (&pa)[NS / 8][4]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float m_tile = tile_max[h] * scale_log2;
    alpha[h] = 1.0f;
    if (m_tile > st.max[h] + kRescaleSlack) {
      alpha[h] = fast_exp2(st.max[h] - m_tile);  // 0 on the first tile (max was -inf)
      st.max[h] = m_tile;
    }
  }
  const float neg_max[2] = {-st.max[0], -st.max[1]};
  float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    s[i] = fast_exp2(fmaf(s[i], scale_log2, neg_max[(i / 2) & 1]));
    tile_sum[(i / 2) & 1] += s[i];
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) st.sum[h] = st.sum[h] * alpha[h] + tile_sum[h];
#pragma unroll
  for (int kk = 0; kk < NS / 8; ++kk)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float lo = s[8 * kk + 2 * j], hi = s[8 * kk + 2 * j + 1];
      pa[kk][j] = kF16 ? pack_f16(lo, hi) : pack_bf16(lo, hi);
    }
}

// The whole softmax step of one tile whose first n_live keys are live.
template <bool kF16>
__device__ __forceinline__ void softmax(float (&s)[32], int n_live, float scale_log2, RowState& st, float (&alpha)[2],
                                        uint32_t (&pa)[4][4]) {
  float tile_max[2];
  mask_and_max(s, n_live, tile_max);
  exponentiate<kF16>(s, tile_max, scale_log2, st, alpha, pa);
}

// Issues S = Q . K^T of the tile at `kv` (36 k16 steps of m64n64), each piece as soon as its
// barrier (bars + 8 piece, phase `parity`) says it has landed (waiting for all nine first took
// 200 against 189 us). kF16: the latent pieces of Q and K hold f16 (FP8 rows), the rope piece
// bf16 either way. kNarrow: S^T = K . Q^T (36 k16 steps of m64n16) over a narrow Q. The caller
// waits for the group.
template <bool kF16, bool kNarrow, int NS>
__device__ __forceinline__ void issue_s(float (&s)[NS], uint32_t q_tile, uint32_t kv, uint32_t bars, uint32_t parity) {
#pragma unroll
  for (int i = 0; i < NS; ++i) s[i] = 0.0f;
  fence_regs(s);
  // Opaque addresses: otherwise the compiler hoists all 72 descriptors out of the tile loop, a
  // register each.
  asm volatile("" : "+r"(q_tile), "+r"(kv));
  // Q's and K's descriptors differ only in their lower words: each product adds its offset to
  // those (wgmma_m64n64k16_ss). S's issue, about a dozen instructions a product with 64-bit adds,
  // was 44 % of the kernel's instructions at 128 heads (ncu, session 58); V3 shape, batch 64 x
  // 4096, 128 heads (H100): 135.9-138.2 -> 133.6-134.3 us.
  const uint64_t qd = sw128_desc(q_tile, 16, 1024), kd = sw128_desc(kv, 16, 1024);
  const uint32_t q_lo = static_cast<uint32_t>(qd), k_lo = static_cast<uint32_t>(kd);
  const uint32_t hi = static_cast<uint32_t>(kd >> 32);
#pragma unroll
  for (int i = 0; i < kPieces; ++i) {
    // The pieces in the order they are refilled: the rope piece (freed by S), 4-7 (freed by
    // warpgroup 1's P . V, issued as soon as P is out), 0-3 (freed by warpgroup 0's P . V, queued
    // behind the next S). In column order, S waited for the latest piece first (190 against
    // 171 us).
    const int blk = i == 0 ? kPieces - 1 : (i <= 4 ? i + 3 : i - 5);
    mbarrier_wait(bars + 8 * blk, parity);
    wgmma_fence();  // explicit after each wait, or ptxas inserts its own and serializes the wgmmas
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t off = (blk * kBlockBytes + k * 32) >> 4;
      if constexpr (kNarrow) {
        const uint32_t q_off = (blk * kNarrowHeads * 128 + k * 32) >> 4;
        if (blk < kLora / 64)
          wgmma_m64n16k16_ss<kF16>(s, kd + off, qd + q_off);
        else
          wgmma_m64n16k16_ss(s, kd + off, qd + q_off);
      } else if (blk < kLora / 64) {
        wgmma_m64n64k16_ss<kF16>(s, q_lo + off, k_lo + off, hi);
      } else {
        wgmma_m64n64k16_ss(s, q_lo + off, k_lo + off, hi);
      }
    }
  }
  wgmma_commit();
}

// Rows [n_live, 64) of warpgroup wg's four V pieces at `kv` become zeros: P is 0 there, and
// 0 * garbage (rows past the context's end, or not copied at all) can be NaN.
__device__ __forceinline__ void zero_dead_rows(uint32_t kv, int n_live, int wg) {
  const uint32_t v = kv + wg * 4 * kBlockBytes;
  for (int i = threadIdx.x % 128; i < (kRows - n_live) * 4 * 8; i += 128) {
    const int row = n_live + i / 32, blk = i / 8 % 4, chunk = i % 8;
    st_shared_zero16(v + blk * kBlockBytes + row * 128 + chunk * 16);
  }
  fence_proxy_async();
  named_sync(wg == 0 ? kGroup0 : kGroup1, 128);
}

// O *= alpha (per row): before any wgmma of the step is issued (ptxas serializes wgmmas when
// their registers are written while others are in flight); skipped when no row of the warp
// moved its max (most tiles, kRescaleSlack).
__device__ __forceinline__ void rescale(float (&o)[128], const float (&alpha)[2]) {
  if (!__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) return;
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] *= alpha[(i / 2) & 1];
}

// Issues O[:, 256 wg + (0..255)] += P . V over the tile at `kv`: V rows are keys (K of this
// product), 4 k16 steps; f16 operands for FP8 rows (kF16). The caller waits for the group.
template <bool kF16>
__device__ __forceinline__ void issue_pv(float (&o)[128], const uint32_t (&pv)[4][4], uint32_t kv, int wg) {
  fence_regs(o);
  wgmma_fence();
  const uint64_t vd = sw128_desc(kv + wg * 4 * kBlockBytes, kBlockBytes, 1024);
#pragma unroll
  for (int kk = 0; kk < kRows / 16; ++kk) wgmma_m64n256k16_rs<kF16>(o, pv[kk], vd + ((kk * 2 * 1024) >> 4));
  wgmma_commit();
}

// Waits until at most N of this thread's cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// This warp's arrival on barrier `bar` once all its threads are there: a math warp is done
// reading a refill group of a buffer (its wgmmas that read it have completed), one of the four
// arrivals the group's copy warp waits for; or a converting warp has written its part of a piece.
__device__ __forceinline__ void release(uint32_t bar) {
  __syncwarp();
  if (threadIdx.x % 32 == 0) mbarrier_arrive(bar);
}

// What the warpgroups of a block need to know.
struct BlockWork {
  int t, h0, seq, k_begin, k_end, n_tiles, n_heads;
  float scale_log2;  // the softmax scale (log2 units) of S as the products compute it (q_to_f16)
  int64_t part_row;
  uint32_t q_tile, tiles, bars, empty, staged;  // shared addresses: Q, the two tile buffers, their barriers
  uint32_t scales;      // FP8 rows, heads as M: where buffer 0's scales land, buffer 1's a tile after
  uint32_t stage;       // FP8 rows, narrow Q: the staging area of whole rows
  uint32_t low_scales;  // FP8 rows, heads as M: buffer 0's second copy of the scales (piece 0)
  __device__ uint32_t tile(int i) const { return tiles + (i & 1) * kTileBytes; }
  __device__ uint32_t scales_of(int i) const { return scales + (i & 1) * kTileBytes; }
  __device__ uint32_t low_scales_of(int i) const { return low_scales + (i & 1) * kTileBytes; }
  __device__ uint32_t bars_of(int i) const { return bars + (i & 1) * kPieces * 8; }
  __device__ uint32_t empty_of(int i, int g) const { return empty + ((i & 1) * kGroups + g) * 8; }
  // g: kHighGroup or kLowGroup
  __device__ uint32_t staged_of(int i, int g) const { return staged + ((i & 1) * 2 + (g == kLowGroup)) * 8; }
  // Narrow Q over FP8 rows: the staging area holds a tile (it lands once a tile) and is read
  // (the eight converting warps arrive once a tile); a tile's phase parity is it & 1.
  __device__ uint32_t stage_full() const { return staged; }
  __device__ uint32_t stage_read() const { return staged + 8; }
  __device__ uint32_t parity(int i) const { return (i / 2) & 1; }  // each buffer's barriers complete once per tile
};

// Who converts an FP8 tile's scale groups with heads as M: the copy warpgroup 2 and, for groups
// [0, kWideMathGroups), the math warpgroup 1 (it waits for P about a fifth of its time, and at 128
// heads the conversion paced the tiles: 203 against bf16's 141 us).
enum class Converter { kWideCopy, kWideMath };
constexpr int kWideMathGroups = 2;
static_assert(kWideMathGroups >= 1 && kWideMathGroups <= 2,
              "mla decode: warpgroup 1 converts group 0 (its scales' piece)");
__device__ constexpr bool converts(Converter who, int sg) {
  switch (who) {
    case Converter::kWideCopy: return sg >= kWideMathGroups;
    default: return sg < kWideMathGroups;
  }
}
template <Converter kWho>
__device__ __forceinline__ void convert_tile(const BlockWork& w, int it, int t);

// Hands P and the rescale factors of a tile to warpgroup 1 (after it has read the previous ones).
__device__ __forceinline__ void publish_p(Exchange& ex, const uint32_t (&pv)[4][4], const float (&alpha)[2],
                                          bool first) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, row_a = warp * 16 + lane / 4;
  if (!first) named_sync(kPTaken, kMathThreads);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) ex.p[warp][kk][lane] = make_uint4(pv[kk][0], pv[kk][1], pv[kk][2], pv[kk][3]);
  if (lane % 4 == 0) {
    ex.alpha[row_a] = alpha[0];
    ex.alpha[row_a + 8] = alpha[1];
  }
  named_arrive(kPReady, kMathThreads);
}

// This thread's P fragments and rescale factors of the published tile.
__device__ __forceinline__ void read_p(const Exchange& ex, uint32_t (&pv)[4][4], float (&alpha)[2]) {
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, row_a = warp * 16 + lane / 4;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint4 x = ex.p[warp][kk][lane];
    pv[kk][0] = x.x, pv[kk][1] = x.y, pv[kk][2] = x.z, pv[kk][3] = x.w;
  }
  alpha[0] = ex.alpha[row_a];
  alpha[1] = ex.alpha[row_a + 8];
}

// One tile of warpgroup 0 in either form (kNarrow: S^T and O^T), whose P is published: issues
// its half of P . V of tile it (issue_pv(it, kv), which rescales O first) ahead of S of tile
// it + 1 (kMore; the last tile is its own instance, so no wgmma is issued or waited for under a
// branch, which makes ptxas serialize them), so that pieces 0-3 of tile it are freed (for the
// copy warps to refill with tile it + 2) while S runs, a whole tile before S of tile it + 2 needs
// them; then frees tile it + 1's rope piece and runs its softmax, which publishes its P
// (softmax_step(it + 1, live keys)).
template <bool kF16, bool kNarrow, bool kMore, int NS, int NO, class IssuePv, class SoftmaxStep>
__device__ __forceinline__ void warpgroup0_step(const BlockWork& w, int it, float (&s)[NS], float (&o)[NO],
                                                IssuePv issue_pv_half, SoftmaxStep softmax_step) {
  const int k0 = w.k_begin + it * kRows;
  const uint32_t kv = w.tile(it);
  if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 0);
  issue_pv_half(it, kv);
  if constexpr (kMore) {
    issue_s<kF16, kNarrow>(s, w.q_tile, w.tile(it + 1), w.bars_of(it + 1), w.parity(it + 1));
    wgmma_wait<1>();  // P . V (committed first) is done
  } else {
    wgmma_wait<0>();
  }
  fence_regs(o);
  if (it + 2 < w.n_tiles) release(w.empty_of(it, kLowGroup));
  if constexpr (kMore) {
    wgmma_wait<0>();
    fence_regs(s);
    if (it + 3 < w.n_tiles) release(w.empty_of(it + 1, kRopeGroup));
    softmax_step(it + 1, w.k_end - k0 - kRows);
  }
}

// Warpgroup 0 in either form: S and the softmax of every tile, P handed to warpgroup 1, and its
// half of P . V.
template <bool kF16, bool kNarrow, int NS, int NO, class IssuePv, class SoftmaxStep>
__device__ __forceinline__ void warpgroup0(const BlockWork& w, float (&s)[NS], float (&o)[NO], IssuePv issue_pv_half,
                                           SoftmaxStep softmax_step) {
  issue_s<kF16, kNarrow>(s, w.q_tile, w.tile(0), w.bars_of(0), w.parity(0));
  wgmma_wait<0>();
  fence_regs(s);
  if (2 < w.n_tiles) release(w.empty_of(0, kRopeGroup));
  softmax_step(0, w.k_end - w.k_begin);
  for (int it = 0; it + 1 < w.n_tiles; ++it)
    warpgroup0_step<kF16, kNarrow, true>(w, it, s, o, issue_pv_half, softmax_step);
  warpgroup0_step<kF16, kNarrow, false>(w, w.n_tiles - 1, s, o, issue_pv_half, softmax_step);
}

// Warpgroup 0 with heads as M: P in registers (pv), published through the exchange.
template <bool kF16>
__device__ __forceinline__ void s_and_pv_warpgroup(const BlockWork& w, Exchange& ex, float (&o)[128], RowState& st) {
  float s[32], alpha[2];
  uint32_t pv[4][4];  // P of the current tile, the A operand of its P . V
  warpgroup0<kF16, false>(
      w, s, o,
      [&](int, uint32_t kv) {
        rescale(o, alpha);
        issue_pv<kF16>(o, pv, kv, 0);
      },
      [&](int it, int n_live) {
        softmax<kF16>(s, n_live, w.scale_log2, st, alpha, pv);
        publish_p(ex, pv, alpha, it == 0);
      });
}

// Warpgroup 1: its half of P . V of every tile with warpgroup 0's P; frees pieces 4-7 of a tile
// once this half of P . V is done with them.
template <bool kF16>
__device__ __forceinline__ void pv_warpgroup(const BlockWork& w, Exchange& ex, float (&o)[128]) {
  constexpr bool kConverts = kF16;  // FP8 rows: this warpgroup converts groups [0, kWideMathGroups)
  if constexpr (kConverts) convert_tile<Converter::kWideMath>(w, 0, threadIdx.x - 128);
  for (int it = 0; it < w.n_tiles; ++it) {
    const int k0 = w.k_begin + it * kRows;
    const uint32_t kv = w.tile(it), bars = w.bars_of(it);
    uint32_t pv[4][4];
    float alpha[2];
    named_sync(kPReady, kMathThreads);
    read_p(ex, pv, alpha);
    if (it + 1 < w.n_tiles) named_arrive(kPTaken, kMathThreads);
#pragma unroll
    for (int blk = 4; blk < 8; ++blk) mbarrier_wait(bars + 8 * blk, w.parity(it));  // makes the copy visible here
    if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 1);

    rescale(o, alpha);
    issue_pv<kF16>(o, pv, kv, 1);
    // While P . V runs: this warpgroup's groups of the next tile, which S of it reads last.
    if (kConverts && it + 1 < w.n_tiles) convert_tile<Converter::kWideMath>(w, it + 1, threadIdx.x - 128);
    wgmma_wait<0>();
    fence_regs(o);
    if (it + 2 < w.n_tiles) release(w.empty_of(it, kHighGroup));
  }
}

// O divided by the row sums, as bf16 rows into `rows` (the Q tile's space, free once both
// warpgroups are done), 1 KiB a row, a row's 16-byte chunk c at chunk c ^ (row % 8): the eight
// rows of one store instruction fall in different banks.
__device__ __forceinline__ void stage_output(unsigned char* rows, const float (&o)[128], const float (&inv)[2],
                                             int wg) {
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = warp * 16 + lane / 4 + 8 * h;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int chunk = (wg * 32 + i) ^ (row % 8);
      *reinterpret_cast<__nv_bfloat162*>(rows + row * 1024 + chunk * 16 + (lane % 4) * 4) =
          __floats2bfloat162_rn(o[4 * i + 2 * h] * inv[h], o[4 * i + 2 * h + 1] * inv[h]);
    }
  }
}

// Staged rows [0, n_rows) to `out` (rows of 512 bf16, one after another), 16 bytes a thread, so a
// warp writes 512 contiguous bytes: the fragments' own 4-byte stores (16 bytes a row an
// instruction) took ~7.6 us at 128 heads (H100, 8 MB from all blocks at once), ~5 % of the kernel.
__device__ __forceinline__ void write_output(const unsigned char* rows, bf16* out, int n_rows) {
  for (int idx = threadIdx.x; idx < n_rows * 64; idx += kMathThreads) {
    const int row = idx / 64, chunk = idx % 64;
    *reinterpret_cast<uint4*>(out + row * kLora + chunk * 8) =
        *reinterpret_cast<const uint4*>(rows + row * 1024 + (chunk ^ (row % 8)) * 16);
  }
}

// The end with heads as M: O divided by the row sums (warpgroup 0 summed P and hands the sums to
// warpgroup 1), as bf16 rows through shared memory (the Q tile's space) or as f32 partial rows
// and log-sum-exps of a split. Rows row_a (+8); columns 256 wg + 8i + 2(lane % 4).
__device__ __forceinline__ void wide_output(const BlockWork& w, Exchange& ex, const MlaParams& p, const SplitKv& split,
                                            unsigned char* rows, const float (&o)[128], RowState& st, int wg) {
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, row_a = warp * 16 + lane / 4;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 1);
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 2);
  }
  if (wg == 0 && lane % 4 == 0) {
    ex.sum[row_a] = st.sum[0];
    ex.sum[row_a + 8] = st.sum[1];
  }
  named_sync(kSums, kMathThreads);  // the copy warpgroup has left
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] = ex.sum[row_a + 8 * h];
    inv[h] = 1.0f / st.sum[h];
  }
  if (split.splits == 1) {
    stage_output(rows, o, inv, wg);
    named_sync(kSums, kMathThreads);
    return write_output(rows, p.out + (static_cast<int64_t>(w.t) * p.heads + w.h0) * kLora, w.n_heads);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row_a + 8 * h;
    if (row >= w.n_heads) continue;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int col = wg * 256 + i * 8 + 2 * (lane % 4);
      *reinterpret_cast<float2*>(split.part_o + (w.part_row + w.h0 + row) * kLora + col) =
          make_float2(o[4 * i + 2 * h] * inv[h], o[4 * i + 2 * h + 1] * inv[h]);
    }
    if (wg == 0 && lane % 4 == 0) split.part_lse[w.part_row + w.h0 + row] = st.max[h] + log2f(st.sum[h]);
  }
}

// ---- Narrow Q (at most 16 heads): S^T = K . Q^T and O^T = V^T . P^T with the keys and the latent
// dims as M (m64n16): the m64 products over 16 heads computed three quarters dead rows (S and P
// . V alike, and read Q's and P's dead rows from shared memory). An m64n16 accumulator t[8] of a
// warp: t[4j + 2r + e] is row 16 warp + lane/4 + 8r, column (head) 8j + 2(lane%4) + e; a thread
// owns four heads, index 2j + e.
__device__ __forceinline__ int own_head(int h) { return 8 * (h / 2) + 2 * (threadIdx.x % 4) + (h & 1); }

// Per-thread softmax state of its four heads; the maxima are the same in every thread of
// warpgroup 0, the sums this thread's share of the keys.
struct HeadState {
  float max[4] = {kNegInf, kNegInf, kNegInf, kNegInf};
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
};

// The online-softmax step of a tile of S^T whose first n_live keys are live: the heads' maxima
// over the four warps' keys (through `maxes`, this tile's parity), the running maxima (log2
// units, with kRescaleSlack), alpha per head, and P in place of S. Warpgroup 0.
__device__ __forceinline__ void softmax_t(float (&s)[8], int n_live, float scale_log2, float (&maxes)[4][kNarrowHeads],
                                          HeadState& st, float (&alpha)[4]) {
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < 8; ++i)
    if (16 * warp + lane / 4 + 8 * ((i / 2) & 1) >= n_live) s[i] = kNegInf;
  float m[4];
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    m[h] = fmaxf(s[4 * (h / 2) + (h & 1)], s[4 * (h / 2) + 2 + (h & 1)]);
#pragma unroll
    for (int x = 4; x < 32; x *= 2) m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], x));
  }
  if (lane < 4)
#pragma unroll
    for (int h = 0; h < 4; ++h) maxes[warp][own_head(h)] = m[h];
  named_sync(kMaxes, 128);
  float tile_sum[4];
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    float tile_max = maxes[0][own_head(h)];
#pragma unroll
    for (int w = 1; w < 4; ++w) tile_max = fmaxf(tile_max, maxes[w][own_head(h)]);
    const float m_tile = tile_max * scale_log2;
    alpha[h] = 1.0f;
    if (m_tile > st.max[h] + kRescaleSlack) {
      alpha[h] = fast_exp2(st.max[h] - m_tile);
      st.max[h] = m_tile;
    }
    tile_sum[h] = 0.0f;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int h = 2 * (i / 4) + (i & 1);
    s[i] = fast_exp2(fmaf(s[i], scale_log2, -st.max[h]));
    tile_sum[h] += s[i];
  }
#pragma unroll
  for (int h = 0; h < 4; ++h) st.sum[h] = st.sum[h] * alpha[h] + tile_sum[h];
}

// The P^T tile of tile it (two, by parity, in the exchange's P area).
__device__ __forceinline__ uint32_t pt_tile(const Exchange& ex, int it) { return smem_addr(&ex.p) + (it & 1) * 2048; }

// A warp's 16 x 16 piece of an m64n16 accumulator (its 16 rows x the 16 heads), packed in
// r[2j + rr] (rows 8 rr .., heads 8j ..), stored transposed as 16-bit values in rows of heads,
// `row_bytes` apart with 16-byte chunks swizzled by head % 8: the piece's rows 8 rr .. 8 rr + 7
// of head h land in chunk `chunk` + rr of row h.
__device__ __forceinline__ void store_head_rows(uint32_t base, int row_bytes, int chunk, const uint32_t (&r)[4]) {
  const int lane = threadIdx.x % 32, m = lane / 8, head = 8 * (m / 2) + lane % 8, c = chunk + (m & 1);
  stmatrix_x4_trans(base + head * row_bytes + ((c ^ (head % 8)) * 16), r[0], r[1], r[2], r[3]);
}

// Stores P (this warp's 16 keys x 16 heads) transposed into the P^T tile at `pt`: rows are heads
// (K-major: 64 keys, 128 bytes, swizzled), the B operand of O^T = V^T . P^T.
template <bool kF16>
__device__ __forceinline__ void store_pt(uint32_t pt, const float (&s)[8]) {
  uint32_t r[4];  // matrix 2j + rr: keys 8 rr .. 8 rr + 7 of the warp, heads 8j .. 8j + 7
#pragma unroll
  for (int m = 0; m < 4; ++m) {
    const float lo = s[4 * (m / 2) + 2 * (m & 1)], hi = s[4 * (m / 2) + 2 * (m & 1) + 1];
    r[m] = kF16 ? pack_f16(lo, hi) : pack_bf16(lo, hi);
  }
  store_head_rows(pt, 128, 2 * (threadIdx.x / 32 % 4), r);
}

// O^T[dims 256 wg .. + 255] *= alpha per head (skipped when no head of the thread moved).
__device__ __forceinline__ void rescale_t(float (&o)[32], const float (&alpha)[4]) {
  if (!__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f || alpha[2] != 1.0f || alpha[3] != 1.0f)) return;
#pragma unroll
  for (int i = 0; i < 32; ++i) o[i] *= alpha[2 * ((i / 4) & 1) + (i & 1)];
}

// Issues O^T[256 wg + (0..255)] += V^T . P^T over the tile at `kv`: four m64 blocks (warpgroup wg's
// V pieces, read MN-major: imm-trans-a) x 4 k16 steps over the keys. The caller waits.
template <bool kF16>
__device__ __forceinline__ void issue_pvt(float (&o)[32], uint32_t pt, uint32_t kv, int wg) {
  fence_regs(o);
  wgmma_fence();
  const uint64_t pd = sw128_desc(pt, 16, 1024);
#pragma unroll
  for (int b = 0; b < 4; ++b) {
    const uint64_t vd = sw128_desc(kv + (4 * wg + b) * kBlockBytes, kBlockBytes, 1024);
#pragma unroll
    for (int kk = 0; kk < kRows / 16; ++kk)
      wgmma_m64n16k16_ss<kF16, true>(o + 8 * b, vd + ((kk * 2 * 1024) >> 4), pd + ((kk * 32) >> 4));
  }
  wgmma_commit();
}

// Warpgroup 0 publishes P^T and alpha of tile it (its warps' parts written, then warpgroup 1 told).
template <bool kF16>
__device__ __forceinline__ void publish_pt(Exchange& ex, int it, const float (&s)[8], const float (&alpha)[4]) {
  if (it >= 2) named_sync(it & 1 ? kPTaken1 : kPTaken, kMathThreads);  // warpgroup 1's O^T of tile it - 2 is done
  store_pt<kF16>(pt_tile(ex, it), s);
  if (threadIdx.x < 4)
#pragma unroll
    for (int h = 0; h < 4; ++h) ex.alpha[(it & 1) * kNarrowHeads + own_head(h)] = alpha[h];
  fence_proxy_async();
  named_sync(kPWritten, 128);
  named_arrive(it & 1 ? kPReady1 : kPReady, kMathThreads);
}

// Warpgroup 0 with narrow Q: P^T through shared memory (publish_pt).
template <bool kF16>
__device__ __forceinline__ void st_warpgroup(const BlockWork& w, Exchange& ex, float (&o)[32], HeadState& st) {
  float s[8], alpha[4];
  warpgroup0<kF16, true>(
      w, s, o,
      [&](int it, uint32_t kv) {
        rescale_t(o, alpha);
        issue_pvt<kF16>(o, pt_tile(ex, it), kv, 0);
      },
      [&](int it, int n_live) {
        softmax_t(s, n_live, w.scale_log2, ex.maxes[it & 1], st, alpha);
        publish_pt<kF16>(ex, it, s, alpha);
      });
}

// Warpgroup 1 with narrow Q: its half of O^T of every tile; frees pieces 4-7 and the P^T buffer.
template <bool kF16>
__device__ __forceinline__ void pvt_warpgroup(const BlockWork& w, Exchange& ex, float (&o)[32]) {
  for (int it = 0; it < w.n_tiles; ++it) {
    const int k0 = w.k_begin + it * kRows;
    const uint32_t kv = w.tile(it), bars = w.bars_of(it);
    named_sync(it & 1 ? kPReady1 : kPReady, kMathThreads);
    float alpha[4];
#pragma unroll
    for (int h = 0; h < 4; ++h) alpha[h] = ex.alpha[(it & 1) * kNarrowHeads + own_head(h)];
#pragma unroll
    for (int blk = 4; blk < 8; ++blk) mbarrier_wait(bars + 8 * blk, w.parity(it));
    if (w.k_end - k0 < kRows) zero_dead_rows(kv, w.k_end - k0, 1);
    rescale_t(o, alpha);
    issue_pvt<kF16>(o, pt_tile(ex, it), kv, 1);
    wgmma_wait<0>();
    fence_regs(o);
    if (it + 2 < w.n_tiles) {
      release(w.empty_of(it, kHighGroup));
      named_arrive(it & 1 ? kPTaken1 : kPTaken, kMathThreads);
    }
  }
}

// The end with narrow Q: O^T divided by the heads' sums, as bf16 rows through shared memory (the
// Q tile's space) or as f32 partial rows and log-sum-exps of a split.
__device__ __forceinline__ void narrow_output(const BlockWork& w, Exchange& ex, const MlaParams& p, const SplitKv& split,
                                              unsigned char* rows, const float (&o)[32], HeadState& st, int wg) {
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32;
  if (wg == 0) {
#pragma unroll
    for (int h = 0; h < 4; ++h)
#pragma unroll
      for (int x = 4; x < 32; x *= 2) st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], x);
    if (lane < 4)
#pragma unroll
      for (int h = 0; h < 4; ++h) ex.sum[warp * kNarrowHeads + own_head(h)] = st.sum[h];
  }
  named_sync(kSums, kMathThreads);
  float inv[4];
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    const int head = own_head(h);
    float sum = 0.0f;
#pragma unroll
    for (int w4 = 0; w4 < 4; ++w4) sum += ex.sum[w4 * kNarrowHeads + head];
    inv[h] = 1.0f / sum;
    if (split.splits > 1 && wg == 0 && warp == 0 && lane < 4 && head < w.n_heads)
      split.part_lse[w.part_row + w.h0 + head] = st.max[h] + log2f(sum);
  }
  if (split.splits == 1) {
    const uint32_t base = smem_addr(rows);
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      uint32_t r[4];  // matrix 2j + rr: dims 8 rr .. of the warp's 16 in block b, heads 8j ..
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        const int i = 8 * b + 4 * (m / 2) + 2 * (m & 1);
        r[m] = pack_bf16(o[i] * inv[2 * (m / 2)], o[i + 1] * inv[2 * (m / 2) + 1]);
      }
      store_head_rows(base, 1024, 32 * wg + 8 * b + 2 * warp, r);
    }
    named_sync(kSums, kMathThreads);
    return write_output(rows, p.out + (static_cast<int64_t>(w.t) * p.heads + w.h0) * kLora, w.n_heads);
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    const int h = 2 * ((i / 4) & 1) + (i & 1), head = own_head(h);
    const int dim = 256 * wg + 64 * (i / 8) + 16 * warp + lane / 4 + 8 * ((i / 2) & 1);
    if (head < w.n_heads) split.part_o[(w.part_row + w.h0 + head) * kLora + dim] = o[i] * inv[h];
  }
}

// Warpgroup 2: warp 8 + g refills group g of every buffer with the tile two ahead once the four
// warps reading the group have freed it, so no math warp waits for a refill's issue (its block
// table reads, barrier updates and copies: ~1,000 cycles a tile a warpgroup on the math path at
// 128 heads when the math warps issued them, H100). A tile's slots are read before the wait.
__device__ __forceinline__ void copy_warpgroup(const BlockWork& w, const MlaParams& p, const CUtensorMap* map) {
  const int g = threadIdx.x / 32 - 8;
  if (g >= kGroups) return;
  for (int it = 2; it < w.n_tiles; ++it) {
    const int k0 = w.k_begin + it * kRows, slots = box_slot(p.batch, w.seq, k0, w.k_end);
    mbarrier_wait(w.empty_of(it, g), w.parity(it - 2));
    load_pieces(w.tile(it), w.bars_of(it), map, p.batch, slots, k0, w.k_end, group_first(g), group_last(g));
  }
}

// FP8 cache, heads as M: refill group g of tile i with cache rows [k0, min(k0 + 64, k_end)): the
// rope piece (bf16 in the row: straight into piece 8, on its barrier), or the e4m3 values of scale
// groups 2h and 2h + 1 (128 bytes a row each; h = 1 for the high group) into pieces 4h + 1 and
// 4h + 3, where convert_warpgroup turns them into f16, on the group's staging barrier; both
// groups bring the rows' scales too (16 bytes a row: kScalePiece, and w.low_scales for warpgroup
// 1). One whole warp (it passes the slots around); its lane 0 issues the copies.
__device__ __forceinline__ void load_group_fp8(const BlockWork& w, int i, const CUtensorMap* map,
                                               const CUtensorMap* scale_map, const DeviceBatch& b, int slots, int k0,
                                               int g) {
  const int rows = box_rows(b.block_size.d), boxes = ceil_div(min(kRows, w.k_end - k0), rows);
  const bool issuer = threadIdx.x % 32 == 0, rope = g == kRopeGroup, high = g == kHighGroup;
  const bool low_copy = g == kLowGroup;
  const int copies = rope ? 1 : 2, first_group = high ? 2 : 0;
  const uint32_t bar = rope ? w.bars_of(i) + 8 * (kPieces - 1) : w.staged_of(i, g);
  const uint64_t policy = l2_evict_first();
  if (issuer) mbarrier_arrive_expect_tx(bar, boxes * rows * (copies * 128 + (high || low_copy ? 16 : 0)));
  for (int j = 0; j < boxes; ++j) {
    const int slot = __shfl_sync(0xffffffffu, slots, j);
    if (!issuer) continue;
    for (int c = 0; c < copies; ++c) {
      const int sg = first_group + c, piece = rope ? kPieces - 1 : 2 * sg + 1;
      tma_load_2d(w.tile(i) + piece * kBlockBytes + j * rows * 128, map, bar, rope ? kFp8RopeOffset : sg * 128, slot,
                  policy);
    }
    if (high) tma_load_2d(w.scales_of(i) + j * rows * 16, scale_map, bar, kFp8ScaleOffset, slot, policy);
    if (low_copy) tma_load_2d(w.low_scales_of(i) + j * rows * 16, scale_map, bar, kFp8ScaleOffset, slot, policy);
  }
}

// FP8 cache, narrow Q: cache rows [k0, min(k0 + 64, k_end)) whole into the staging area, one bulk
// copy a box of rows (a page holds a box's rows one after another: with pages of 64 slots, one
// copy of 41 KB a tile, where the tensor copies above take six boxes of 64 rows, the value boxes
// straddling two 128-byte lines a row). One whole warp; its lane 0 issues the copies.
__device__ __forceinline__ void load_rows_fp8(const BlockWork& w, const MlaParams& p, int slots, int k0) {
  const int rows = box_rows(p.batch.block_size.d), boxes = ceil_div(min(kRows, w.k_end - k0), rows);
  const bool issuer = threadIdx.x % 32 == 0;
  const uint64_t policy = l2_evict_first();
  if (issuer) mbarrier_arrive_expect_tx(w.stage_full(), boxes * rows * kFp8RowBytes);
  for (int j = 0; j < boxes; ++j) {
    const int slot = __shfl_sync(0xffffffffu, slots, j);
    if (issuer)
      bulk_load(w.stage + j * rows * kFp8RowBytes, p.cache_fp8 + static_cast<int64_t>(slot) * kFp8RowBytes,
                rows * kFp8RowBytes, w.stage_full(), policy);
  }
}

// The largest |value| of 8 bf16 values.
__device__ __forceinline__ float abs_max8(uint4 v) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  float m = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    m = fmaxf(m, fmaxf(fabsf(__uint_as_float(w[i] << 16)), fabsf(__uint_as_float(w[i] & 0xffff0000u))));
  return m;
}

// 8 bf16 values times `factor` (a power of two), as f16 (kF16) or bf16.
template <bool kF16>
__device__ __forceinline__ uint4 scale8(uint4 v, float factor) {
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float lo = __uint_as_float(w[i] << 16) * factor, hi = __uint_as_float(w[i] & 0xffff0000u) * factor;
    w[i] = kF16 ? pack_f16(lo, hi) : pack_bf16(lo, hi);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// FP8 rows: Q's latent pieces become f16 in place (the latent products are f16: the tiles'
// conversion is cheaper than into bf16), all of Q times 2^-e (exact) so that its largest |value|
// stays below 2^15 (f16 ends at 65504; bf16 values below it convert exactly). Returns 2^e, the
// factor S is short of. The 256 math threads; two barriers inside.
template <int kQRows>
__device__ __forceinline__ float q_to_f16(uint32_t q_tile, Exchange& ex) {
  constexpr int kLatentChunks = kQRows * kLora / 8, kChunks = kQRows * kDim / 8;  // 16 bytes each
  float amax = 0.0f;
  for (int i = threadIdx.x; i < kLatentChunks; i += kMathThreads)
    amax = fmaxf(amax, abs_max8(ld_shared_v4(q_tile + i * 16)));
  amax = warp_max(amax);
  if (threadIdx.x % 32 == 0) ex.alpha[threadIdx.x / 32] = amax;
  named_sync(kQReady, kMathThreads);
  for (int i = 0; i < kMathThreads / 32; ++i) amax = fmaxf(amax, ex.alpha[i]);
  const int e = amax >= 32768.0f ? ilogbf(amax) - 14 : 0;
  const float factor = ldexpf(1.0f, -e);
  for (int i = threadIdx.x; i < kChunks; i += kMathThreads) {
    const uint32_t addr = q_tile + i * 16;
    if (i < kLatentChunks)
      st_shared_v4(addr, scale8<true>(ld_shared_v4(addr), factor));
    else if (e > 0)
      st_shared_v4(addr, scale8<false>(ld_shared_v4(addr), factor));
  }
  fence_proxy_async();
  named_sync(kQReady, kMathThreads);
  return ldexpf(1.0f, e);
}

// 64 e4m3 values (four 16-byte chunks) times `scale` into f16, 128 bytes of a swizzled piece's
// row at `out` (row swizzle `swz`): chunk c's 16 values into the row's chunks 2c and 2c + 1.
__device__ __forceinline__ void store_f16_half(uint32_t out, const uint4 (&raw)[4], float scale, int swz) {
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    uint4 lo, hi;
    dequantize16_f16(raw[c], scale, lo, hi);
    st_shared_v4(out + (((2 * c) ^ swz) * 16), lo);
    st_shared_v4(out + (((2 * c + 1) ^ swz) * 16), hi);
  }
}

// Half `half` of row `row`'s e4m3 values of scale group sg, staged in piece 2 sg + 1 (128 bytes,
// swizzled like a piece's row: chunk c holds values 16c .. 16c + 15), times `scale` into f16:
// half 0 (staged chunks 0-3) into piece 2 sg, half 1 (chunks 4-7) into piece 2 sg + 1, over the
// staged row, so both halves (threads of one warp) read theirs before either writes. The eight
// threads of a quarter warp (one 16-byte access each) have eight rows of one half: eight banks.
__device__ __forceinline__ void convert_half_group(uint32_t tile, int row, int half, int sg, float scale, bool live) {
  const int swz = row % 8;
  uint4 raw[4];
  if (live)
#pragma unroll
    for (int c = 0; c < 4; ++c)
      raw[c] = ld_shared_v4(tile + (2 * sg + 1) * kBlockBytes + row * 128 + (((4 * half + c) ^ swz) * 16));
  __syncwarp();
  if (live) store_f16_half(tile + (2 * sg + half) * kBlockBytes + row * 128, raw, scale, swz);
}

// Thread t (0-127) of a converting warpgroup converts its share of tile it's scale groups (two
// threads a row, its halves of each group: the quarter warps of a warp take 8 rows' first halves,
// their second halves, the next 8 rows'...), in the order S reads their pieces (2, 3, 0, 1), each
// warp arriving on both pieces of a group once its threads have written their parts. S of the
// tile waits for the conversion, so it is kept short: all 128 threads of a warpgroup on every
// tile and the scales from shared memory (warp pairs alternating tiles, each thread reading its
// row's scales from the cache, took 1.3x as long at 16 heads; the scale reads alone 1.37x).
template <Converter kWho>
__device__ __forceinline__ void convert_tile(const BlockWork& w, int it, int t) {
  const int row = t / 32 * 16 + t % 32 / 16 * 8 + t % 8, half = t / 8 % 2;
  const bool live = w.k_begin + it * kRows + row < w.k_end;
  const uint32_t tile = w.tile(it), bars = w.bars_of(it);
  // The scales come with the high group (warpgroup 1's copy with the low group).
  constexpr bool kOwnCopy = kWho == Converter::kWideMath;
  mbarrier_wait(w.staged_of(it, kOwnCopy ? kLowGroup : kHighGroup), w.parity(it));
  const uint4 s4 = ld_shared_v4((kOwnCopy ? w.low_scales_of(it) : w.scales_of(it)) + row * 16);
  const float scale[4] = {__uint_as_float(s4.x), __uint_as_float(s4.y), __uint_as_float(s4.z), __uint_as_float(s4.w)};
  if constexpr (kOwnCopy) named_sync(kScalesRead1, 128);  // group 0 overwrites the copy: every row's read first
  bool low_staged = kOwnCopy;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int sg = (i + 2) % 4;
    if (!converts(kWho, sg)) continue;
    if (sg < 2 && !low_staged) {
      mbarrier_wait(w.staged_of(it, kLowGroup), w.parity(it));
      low_staged = true;
    }
    if (kWho == Converter::kWideCopy && 2 * sg == kScalePiece) named_sync(kScalesRead, 128);  // every row's read
    convert_half_group(tile, row, half, sg, scale[sg], live);
    fence_proxy_async();  // the async proxy (S's and P . V's wgmma) reads what this thread wrote
    release(bars + 8 * (2 * sg));
    release(bars + 8 * (2 * sg + 1));
  }
}

// FP8 cache, heads as M, warpgroup 2: every tile its groups (convert_tile); warp 8 first refills
// the buffer with the tile once its groups are free (the prologue loaded tiles 0 and 1).
__device__ __forceinline__ void convert_warpgroup(const BlockWork& w, const MlaParams& p, const CUtensorMap* map,
                                                  const CUtensorMap* scale_map) {
  const DeviceBatch& b = p.batch;
  const int t = (threadIdx.x - kMathThreads) % 128;
  const bool refills = threadIdx.x < kMathThreads + 32;
  for (int it = 0; it < w.n_tiles; ++it) {
    const int k0 = w.k_begin + it * kRows;
    if (it >= 2 && refills) {
      const int slots = box_slot(b, w.seq, k0, w.k_end);
      for (int g = 0; g < kGroups; ++g) {
        mbarrier_wait(w.empty_of(it, g), w.parity(it - 2));
        load_group_fp8(w, it, map, scale_map, b, slots, k0, g);
      }
    }
    convert_tile<Converter::kWideCopy>(w, it, t);
  }
}

// FP8 cache, narrow Q: thread t (0-127) of warpgroup 2 (kHigh: scale groups 2-3) or 3 (groups
// 0-1) takes its row's half of its two groups (rows and halves as convert_tile's) and a quarter
// of its rope (16-byte chunks rope0 and rope0 + 1: 4 half, + 2 in warpgroup 3) from the staged
// tile into registers and arrives on stage_read: warp 8 then refills the staging area with the
// next tile, while the warpgroups wait for the buffer's groups to free (the rope piece's first,
// as S reads it first) and write the f16 pieces and the rope piece.
template <bool kHigh>
__device__ __forceinline__ void convert_rows(const BlockWork& w, const MlaParams& p, int it, int t) {
  const int row = t / 32 * 16 + t % 32 / 16 * 8 + t % 8, half = t / 8 % 2, swz = row % 8, sg0 = kHigh ? 2 : 0;
  const int rope0 = 4 * half + (kHigh ? 0 : 2);
  const bool live = w.k_begin + it * kRows + row < w.k_end, refills = kHigh && t < 32 && it + 1 < w.n_tiles;
  const uint32_t src = w.stage + row * kFp8RowBytes, tile = w.tile(it), bars = w.bars_of(it);
  const int k_next = w.k_begin + (it + 1) * kRows, next_slots = refills ? box_slot(p.batch, w.seq, k_next, w.k_end) : 0;
  uint4 raw[2][4], rope[2];
  float scale[2];
  mbarrier_wait(w.stage_full(), it & 1);
  if (live) {
    const uint4 s4 = ld_shared_v4(src + kFp8ScaleOffset);
    scale[0] = __uint_as_float(kHigh ? s4.z : s4.x);
    scale[1] = __uint_as_float(kHigh ? s4.w : s4.y);
#pragma unroll
    for (int g = 0; g < 2; ++g)
#pragma unroll
      for (int c = 0; c < 4; ++c) raw[g][c] = ld_shared_v4(src + (sg0 + g) * 128 + (4 * half + c) * 16);
#pragma unroll
    for (int q = 0; q < 2; ++q) rope[q] = ld_shared_v4(src + kFp8RopeOffset + (rope0 + q) * 16);
  }
  release(w.stage_read());
  if (refills) {
    mbarrier_wait(w.stage_read(), it & 1);
    load_rows_fp8(w, p, next_slots, k_next);
  }
  if (it >= 2) mbarrier_wait(w.empty_of(it, kRopeGroup), w.parity(it - 2));
  if (live)
#pragma unroll
    for (int q = 0; q < 2; ++q)
      st_shared_v4(tile + (kPieces - 1) * kBlockBytes + row * 128 + (((rope0 + q) ^ swz) * 16), rope[q]);
  fence_proxy_async();  // the async proxy (S's and P . V's wgmma) reads what this thread wrote
  release(bars + 8 * (kPieces - 1));
  if (it >= 2) mbarrier_wait(w.empty_of(it, kHigh ? kHighGroup : kLowGroup), w.parity(it - 2));
#pragma unroll
  for (int g = 0; g < 2; ++g) {
    const int sg = sg0 + g;
    if (live) store_f16_half(tile + (2 * sg + half) * kBlockBytes + row * 128, raw[g], scale[g], swz);
    fence_proxy_async();
    release(bars + 8 * (2 * sg));
    release(bars + 8 * (2 * sg + 1));
  }
}

// FP8 cache, narrow Q, warpgroups 2 and 3: every tile (convert_rows; the prologue staged tile 0).
__device__ __forceinline__ void convert_rows_warpgroups(const BlockWork& w, const MlaParams& p) {
  const int t = (threadIdx.x - kMathThreads) % 128;
  const bool high = threadIdx.x < kMathThreads + 128;
  for (int it = 0; it < w.n_tiles; ++it) high ? convert_rows<true>(w, p, it, t) : convert_rows<false>(w, p, it, t);
}
#endif  // DSINFER_MLA_SM90A

// kFp8: the cache holds FP8 rows (p.cache_fp8), converted to f16 tiles by warpgroup 2 (and 3
// with narrow Q); kNarrow: at most 16 heads, S^T and O^T over a narrow Q.
template <bool kFp8, bool kNarrow>
__global__ void __launch_bounds__(block_threads(kFp8, kNarrow), 1)
    mla_decode_kernel(const __grid_constant__ CUtensorMap cache_map, const __grid_constant__ CUtensorMap scale_map,
                      MlaParams p, SplitKv split) {
#if defined(__CUDA_ARCH__) && defined(DSINFER_MLA_SM90A)
  constexpr int kQRows = kNarrow ? kNarrowHeads : kRows;
  const DeviceBatch& b = p.batch;
  BlockWork w;
  w.h0 = blockIdx.x * kQRows;
  w.t = blockIdx.y;
  w.seq = b.token_seq[w.t];
  split_range(split, b.positions[w.t] + 1, blockIdx.z, w.k_begin, w.k_end);
  w.part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + w.t) * p.heads;
  w.n_heads = min(kQRows, p.heads - w.h0);
  w.scale_log2 = p.scale_log2;
  if (w.k_begin >= w.k_end) {  // a split past its context's end
    wait_for_previous_kernels();
    return write_empty_split(split, w.part_row + w.h0, w.n_heads);
  }
  w.n_tiles = ceil_div(w.k_end - w.k_begin, kRows);

  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023) & ~1023u;  // swizzle atoms are 1024-aligned
  w.q_tile = base;
  w.tiles = base + kTileBytes;
  Exchange& ex = *reinterpret_cast<Exchange*>(smem_raw + (base - smem_addr(smem_raw)) + 3 * kTileBytes);
  w.bars = smem_addr(&ex.full[0][0]);
  w.empty = smem_addr(&ex.empty[0][0]);
  w.staged = smem_addr(&ex.staged[0][0]);
  w.scales = w.tiles + kScalePiece * kBlockBytes;
  w.stage = w.q_tile + kNarrowStage;
  w.low_scales = w.tiles;

  // Both buffers start loading at once (narrow FP8: the staging area, with tile 0); afterwards
  // each piece refills as soon as it is free.
  // The rows before the token's own are final before this kernel may start, so tile 0, if it
  // holds only those, loads before the wait. The token's row is written by the kernel just before
  // this one (mla_absorb_kernel's cache-row blocks, which let this kernel launch before they write
  // it), so a tile holding it loads after the wait, as Q, the previous kernel's output, does. Q
  // queues ahead of tile 1: S of tile 0 needs only Q and tile 0, and all blocks load theirs at once.
  const int own_row = b.positions[w.t];
  const auto settled = [&](int i) { return min(w.k_end, w.k_begin + (i + 1) * kRows) <= own_row; };
  const auto load_first_tile = [&](int i) {  // warp 0
    const int k0 = w.k_begin + i * kRows, slots = box_slot(b, w.seq, k0, w.k_end);
    if constexpr (kFp8 && kNarrow)
      load_rows_fp8(w, p, slots, k0);
    else if constexpr (kFp8)
      for (int g = 0; g < kGroups; ++g) load_group_fp8(w, i, &cache_map, &scale_map, b, slots, k0, g);
    else
      load_pieces(w.tile(i), w.bars_of(i), &cache_map, b, slots, k0, w.k_end, 0, kPieces);
  };
  if (threadIdx.x < 32) {
    if (threadIdx.x == 0) {
      // A converted latent piece completes when the four warps converting its tile have arrived.
      // With narrow Q the rope piece is written by the eight converting warps too.
      for (int i = 0; i < 2 * kPieces; ++i)
        mbarrier_init(w.bars + 8 * i, !kFp8 ? 1 : i % kPieces < kLora / 64 ? 4 : kNarrow ? 8 : 1);
      for (int i = 0; i < 2 * kGroups; ++i) mbarrier_init(w.empty + 8 * i, 4);
      for (int i = 0; i < 4; ++i) mbarrier_init(w.staged + 8 * i, kFp8 && kNarrow && i == 1 ? 8 : 1);  // stage_read
      mbarrier_init_fence();
    }
    if (settled(0)) load_first_tile(0);
  }
  wait_for_previous_kernels();
  allow_next_kernel();
  if (threadIdx.x < kMathThreads) load_q_tile<kQRows>(w.q_tile, p, w.t, w.h0);
  if (threadIdx.x < 32) {
    if (!settled(0)) load_first_tile(0);
    if (w.n_tiles > 1 && !(kFp8 && kNarrow)) load_first_tile(1);  // narrow FP8: one staging area
  }
  cp_async_commit();
  cp_async_wait_group<0>();
  fence_proxy_async();
  __syncthreads();  // Q is in, the barriers are initialized

  const int wg = threadIdx.x / 128;
  if (wg >= 2) {
    setmaxnreg_dec<kCopyRegs<kFp8, kNarrow>>();
    if constexpr (kFp8 && kNarrow)
      return convert_rows_warpgroups(w, p);
    else if constexpr (kFp8)
      return convert_warpgroup(w, p, &cache_map, &scale_map);
    else
      return copy_warpgroup(w, p, &cache_map);
  }
  setmaxnreg_inc<kMathRegs<kFp8, kNarrow>>();
  if constexpr (kFp8) w.scale_log2 *= q_to_f16<kQRows>(w.q_tile, ex);
  unsigned char* out_rows = smem_raw + (w.q_tile - smem_addr(smem_raw));  // the Q tile's space: O's rows at the end
  if constexpr (kNarrow) {
    HeadState st;  // warpgroup 0's
    float o[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) o[i] = 0.0f;
    if (wg == 0)
      st_warpgroup<kFp8>(w, ex, o, st);
    else
      pvt_warpgroup<kFp8>(w, ex, o);
    return narrow_output(w, ex, p, split, out_rows, o, st, wg);
  } else {
    RowState st;  // warpgroup 0's
    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.0f;
    if (wg == 0)
      s_and_pv_warpgroup<kFp8>(w, ex, o, st);
    else
      pv_warpgroup<kFp8>(w, ex, o);
    return wide_output(w, ex, p, split, out_rows, o, st, wg);
  }
#else
  __trap();  // launched only on sm_90 devices (mla_decode_fits)
#endif
}

// Whether the device runs the sm_90a code of this file (cached per device).
bool device_is_sm90() {
  static int cached[64];  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return false;
  if (cached[dev] == 0) {
    int major = 0, minor = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    cached[dev] = major == 9 && minor == 0 ? 1 : 2;
  }
  return cached[dev] == 1;
}

}  // namespace

// Cache blocks of a multiple of 8 slots: TMA boxes of at least 8 rows stay 1024-byte aligned in
// the swizzled tile.
bool mla_decode_fits(const MlaParams& p) {
  const bool bf16_rows = p.cache != nullptr && p.cache_width == kDim;
  const bool fp8_rows = p.cache_fp8 != nullptr && p.fp8.scale_offset == kFp8ScaleOffset &&
                        p.fp8.rope_offset == kFp8RopeOffset && p.fp8.row_bytes == kFp8RowBytes;
  return (bf16_rows || fp8_rows) && p.lora == kLora && p.rope == kRope && p.vec && p.batch.block_size.d % 8 == 0 &&
         device_is_sm90();
}

int mla_decode_heads_per_block(int heads, int tokens) {
  static const int narrow_tokens = switch_value("DSINFER_MLA_NARROW_TOKENS", kMlaNarrowTokens);
  return heads <= kNarrowHeads || tokens <= narrow_tokens ? kNarrowHeads : kRows;
}

void launch_mla_decode(const MlaParams& p, const SplitKv& split, cudaStream_t s) {
  if (!mla_decode_fits(p))
    fail("mla decode kernel: needs latent ", kLora, " + rope ", kRope, " (got ", p.lora, " + ", p.rope,
         ") in bf16 or FP8 rows, 16-byte aligned rows, cache blocks of a multiple of 8 slots (got ",
         p.batch.block_size.d,
         ") and an sm_90 device");
  // The cache as bytes: rows of 1152 (656 FP8), boxes of 128 bytes (one swizzled 64-column piece,
  // or one scale group's e4m3 values). Narrow Q over FP8 rows copies whole rows without them, so
  // its launch encodes neither (host work on every eager launch) and passes empty maps.
  const int per_block = mla_decode_heads_per_block(p.heads, p.batch.num_tokens);
  const bool fp8 = p.cache_fp8 != nullptr, narrow = per_block == kNarrowHeads, maps = !(fp8 && narrow);
  const int rows = box_rows(p.batch.block_size.d);
  CUtensorMap map{}, scale_map{};
  if (maps)
    map = fp8 ? make_fp8_tensor_map(p.cache_fp8, kMapRows, kFp8RowBytes, rows)
              : make_fp8_tensor_map(p.cache, kMapRows, kDim * 2, rows);
  // An FP8 row's four scales (16 bytes); unused over bf16 rows.
  if (maps && fp8) scale_map = make_plain_tensor_map(p.cache_fp8, kMapRows, kFp8RowBytes, 16, rows);
  auto kernel = fp8 ? (narrow ? mla_decode_kernel<true, true> : mla_decode_kernel<true, false>)
                    : (narrow ? mla_decode_kernel<false, true> : mla_decode_kernel<false, false>);
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  // Head blocks vary fastest, so the blocks sharing a token's cache tiles run together (L2 hits).
  const dim3 grid(ceil_div(p.heads, per_block), p.batch.num_tokens, split.splits);
  launch_dependent("mla_decode_kernel", kernel, grid, block_threads(fp8, narrow), kSmemBytes, s, map, scale_map, p,
                   split);
}

}  // namespace dsinfer::cuda
