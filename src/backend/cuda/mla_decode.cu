// Absorbed-MLA decode on Hopper tensor cores (wgmma), for DeepSeek's shape: latent 512 + rope 64,
// one query token per sequence. The FlashMLA idea, written for this engine:
//
// * A block owns (64 heads of one token, one split of its context): every 32-key tile of the
//   latent cache is read from global memory once into shared memory and serves all 64 heads.
// * Q [64 heads x 576] is loaded once and stays in shared memory; S = Q . K^T (K = the 576-wide
//   cache rows) runs as wgmma with both operands read by descriptor from shared memory.
// * Online softmax on the S accumulators in registers; P is packed to bf16 in registers and is
//   the A operand of O += P . V, where V is the first 512 columns of the same tile (read
//   MN-major by the tensor cores: no transpose, no second load).
// * Two warpgroups, each owning 256 of the 512 output columns (64 x 256 f32 accumulators = 128
//   registers a thread: O_L in warpgroup 0, O_R in 1), work on tiles in pairs (2j, 2j + 1) in
//   DeepSeek's "seesaw" schedule, so that one always has tensor-core work while the other runs
//   its softmax: warpgroup 0 computes S of tile 2j, warpgroup 1 S of tile 2j + 1 (m64n32, Q and K
//   read once per k16 step), each exponentiates its own tile (warpgroup 1 to the pair's maxima,
//   knowing warpgroup 0's) and multiplies it into its half of O; then each multiplies the other's
//   P (warpgroup 0's rescaled to the pair's maxima) into its half, with the other half of V:
//     WG0: S0 -> m0, P0 -> O_L += P0 V0_L  | m1 -> O_L, P0 rescaled -> O_L += P1 V1_L
//     WG1: S1 -> (m0) m1, P1 -> O_R += P1 V1_R  | O_R += P0' V0_R
//   P crosses through shared memory as ready-made A fragments (P1 in tile 2j + 1's rope piece,
//   which S no longer needs). No block-wide barrier per tile.
// * Four 32-key tile buffers (two pairs), filled by TMA (rows come through the paged block table:
//   a box of g = gcd(block size, 32) rows never straddles a page) in nine 64-column pieces, each
//   with its own barrier: S consumes the pieces in the order they are refilled, and each piece is
//   refilled with tile i + 4 as soon as its last reader is done with it, by one thread of that
//   reader; no math warp issues per-row copies. With 64-key tiles only two buffers fit next to Q,
//   and both S of a pair waited on pieces refilled at the very end of the pair before (178
//   against the S-ahead kernel's 166 us, session 38); here a freed piece has a pair's time.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/kernels.h"
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
constexpr int kHeads = 64;                         // heads per block (Q's rows: wgmma's M)
constexpr int kKeys = 32;                          // keys per tile
constexpr int kBuffers = 4;                        // tile buffers: two pairs
constexpr int kPieces = kDim / 64;                 // 64-column (128-byte) pieces of a row
constexpr int kQPieceBytes = kHeads * 128;         // one piece of Q (8 KiB)
constexpr int kQBytes = kPieces * kQPieceBytes;    // 72 KiB
constexpr int kPieceBytes = kKeys * 128;           // one piece of a tile (4 KiB)
constexpr int kTileBytes = kPieces * kPieceBytes;  // 36 KiB: one buffer of cache rows
constexpr int kSteps = kKeys / 16;                 // k16 steps of P . V a tile
constexpr int kThreads = 256;                      // two warpgroups
// The tensor map's rows: the cache's own length is not passed to the launch, and only the
// slots of live pages (below the cache's end) are ever addressed.
constexpr int64_t kMapRows = int64_t{1} << 30;

// Rows per TMA box: the largest power of two dividing the cache block, at most a tile. Tiles
// start at multiples of 32 keys, so no box straddles a page.
__host__ __device__ constexpr int box_rows(int block_size) {
  return (block_size & -block_size) < kKeys ? (block_size & -block_size) : kKeys;
}

// Named barriers (0 is __syncthreads). In pair j, warpgroup 0 publishes the rows' maxima m0
// after tile 2j (kMax0), warpgroup 1 the maxima m1 after tile 2j + 1 and that tile's P (kPairB),
// warpgroup 0 tile 2j's P rescaled to m1 (kPairA). Each warpgroup's own (kGroup0, kGroup1): its
// warps are done with some pieces of a buffer, or its dead V rows are zeros.
enum NamedBarrier : int { kMax0 = 1, kPairB = 2, kPairA = 3, kGroup0 = 4, kGroup1 = 5 };

// Per-thread softmax state of its two rows (lane / 4 and lane / 4 + 8 of its warp's 16 heads).
// Both warpgroups keep the running max; each sums the P of the tiles whose S it computed.
struct RowState {
  float max[2] = {kNegInf, kNegInf};
  float sum[2] = {0.0f, 0.0f};  // this thread's share; the 4 threads of a row add up at the end
};

// Shared scratch after the tiles. Tile 2j + 1's P goes from warpgroup 1 to 0 in that tile's
// rope piece, which S no longer needs (4 KiB: one A fragment a thread, like `p`).
struct Exchange {
  uint4 p[4][kSteps][32];            // [warp][k16 step][lane]: tile 2j's P at the pair's max, 0 -> 1
  float m0[kHeads];                  // rows' maxima after tile 2j, 0 -> 1
  float m1[kHeads];                  // after tile 2j + 1 (the pair's), 1 -> 0
  float sum[2][kHeads];              // each warpgroup's row sums, at the end
  uint64_t full[kBuffers][kPieces];  // mbarriers per buffer and piece: its rows have landed (TMA bytes)
};
static_assert(sizeof(uint4) * 4 * kSteps * 32 == kPieceBytes, "P fills a rope piece");

// Q + the tile buffers + alignment slack + the exchange area (227 KiB is the most a block gets).
constexpr size_t kSmemBytes = kQBytes + kBuffers * kTileBytes + 1024 + sizeof(Exchange);
static_assert(kSmemBytes <= 227 * 1024, "mla decode: shared memory");

#ifdef DSINFER_MLA_SM90A
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

// Pieces [first, last) of cache rows [k0, min(k0 + 64, k_end)) of sequence `seq` into the
// swizzled tile at `tile`, each piece announcing its bytes on its barrier (bars + 8 piece).
// Boxes past k_end are not read (their pages may not exist). One thread.
__device__ __forceinline__ void load_pieces(uint32_t tile, uint32_t bars, const CUtensorMap* map, const DeviceBatch& b,
                                            int seq, int k0, int k_end, int first, int last) {
  const int g = box_rows(b.block_size.d), boxes = ceil_div(min(kKeys, k_end - k0), g);
  for (int blk = first; blk < last; ++blk) mbarrier_arrive_expect_tx(bars + 8 * blk, boxes * g * 128);
  for (int j = 0; j < boxes; ++j) {
    const int slot = cache_slot(b, seq, k0 + j * g);
    for (int blk = first; blk < last; ++blk)
      tma_load_2d(tile + blk * kPieceBytes + j * g * 128, map, bars + 8 * blk, blk * 128, slot);
  }
}

// Q rows of heads [h0, h0 + 64) of token t: [q_lat | q_rope]; heads past the last are zeros.
__device__ __forceinline__ void load_q_tile(uint32_t tile, const MlaParams& p, int t, int h0) {
  const int c = threadIdx.x % 8;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = threadIdx.x / 8 + half * 32;
    const bool live = h0 + r < p.heads;
    const int64_t row = static_cast<int64_t>(t) * p.heads + (live ? h0 + r : 0);
#pragma unroll
    for (int blk = 0; blk < kPieces; ++blk) {
      const bf16* src = blk < kLora / 64 ? p.q_lat + row * kLora + blk * 64 + c * 8 : p.q_rope + row * kRope + c * 8;
      cp_async_16_to(tile + sw128_offset(r, blk * 8 + c, kHeads), src, live);
    }
  }
}

// S accumulators of NS / 4 n8 key blocks: s[4i + e] is row lane/4 (+8 for e >= 2), key
// 8i + 2(lane%4) + (e&1). Scales them to log2 units, masks keys >= n_live and returns each
// row's maximum over these keys (-inf when none is live).
template <int NS>
__device__ __forceinline__ void scale_and_mask(float (&s)[NS], int n_live, float scale_log2, float (&row_max)[2]) {
  const int lane = threadIdx.x % 32;
  row_max[0] = row_max[1] = kNegInf;
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    const int key = (i / 4) * 8 + 2 * (lane % 4) + (i & 1);
    s[i] = key < n_live ? s[i] * scale_log2 : kNegInf;
    row_max[(i / 2) & 1] = fmaxf(row_max[(i / 2) & 1], s[i]);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 1));
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 2));
  }
}

// P = 2^(s - m) per row, in place, and each row's sum of this thread's values.
__device__ __forceinline__ void exponentiate(float (&s)[kKeys / 2], const float (&m)[2], float (&sum)[2]) {
  sum[0] = sum[1] = 0.0f;
#pragma unroll
  for (int i = 0; i < kKeys / 2; ++i) {
    s[i] = exp2f(s[i] - m[(i / 2) & 1]);
    sum[(i / 2) & 1] += s[i];
  }
}

// P * scale (per row) packed as A fragments, one per k16 step: a0 (row, keys lo), a1 (row + 8,
// keys lo), a2 (row, keys hi), a3 (row + 8, keys hi), i.e. n8 blocks 2kk and 2kk + 1.
__device__ __forceinline__ void pack_p(const float (&s)[kKeys / 2], const float (&scale)[2],
                                       uint32_t (&pa)[kSteps][4]) {
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      pa[kk][j] = pack_bf16(s[8 * kk + 2 * j] * scale[j & 1], s[8 * kk + 2 * j + 1] * scale[j & 1]);
}

// A fragments to / from 4 KiB of shared memory at `at`, laid out [warp][k16 step][lane] (lane-
// contiguous 16-byte chunks: no bank conflicts).
__device__ __forceinline__ uint32_t fragment_addr(uint32_t at, int kk) {
  return at + ((threadIdx.x / 32 % 4 * kSteps + kk) * 32 + threadIdx.x % 32) * 16;
}
__device__ __forceinline__ void store_p(uint32_t at, const uint32_t (&pa)[kSteps][4]) {
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(fragment_addr(at, kk)), "r"(pa[kk][0]),
                 "r"(pa[kk][1]), "r"(pa[kk][2]), "r"(pa[kk][3])
                 : "memory");
}
__device__ __forceinline__ void load_p(uint32_t at, uint32_t (&pa)[kSteps][4]) {
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(pa[kk][0]), "=r"(pa[kk][1]), "=r"(pa[kk][2]), "=r"(pa[kk][3])
                 : "r"(fragment_addr(at, kk))
                 : "memory");
}

// This thread's rows (row_a = 16 warp + lane / 4, and row_a + 8) of a per-row array in shared
// memory: written by one thread of the four that share a row.
__device__ __forceinline__ int row_a() { return threadIdx.x / 32 % 4 * 16 + threadIdx.x % 32 / 4; }
__device__ __forceinline__ void publish_rows(float* rows, const float (&v)[2]) {
  if (threadIdx.x % 4 == 0) rows[row_a()] = v[0], rows[row_a() + 8] = v[1];
}
__device__ __forceinline__ void read_rows(const float* rows, float (&v)[2]) {
  v[0] = rows[row_a()];
  v[1] = rows[row_a() + 8];
}

// Issues S = Q . K^T of the tile at `kv` (36 k16 steps of m64n32), each piece as soon as its
// barrier (bars + 8 piece, phase `parity`) says it has landed (waiting for all nine first was
// slower). Pieces go in the order they are refilled, from kFirst on (mod 9): warpgroup 0's tile
// frees its rope piece first, then 0-3, then 4-7; warpgroup 1's 4-7, the rope piece, then 0-3.
// The caller waits for the group.
template <int kFirst>
__device__ __forceinline__ void issue_s(float (&s)[kKeys / 2], uint32_t q_tile, uint32_t kv, uint32_t bars,
                                        uint32_t parity) {
#pragma unroll
  for (int i = 0; i < kKeys / 2; ++i) s[i] = 0.0f;
  fence_regs(s);
  // Opaque addresses: otherwise the compiler hoists all 72 descriptors out of the tile loop, a
  // register each.
  asm volatile("" : "+r"(q_tile), "+r"(kv));
  const uint64_t qd = sw128_desc(q_tile, 16, 1024), kd = sw128_desc(kv, 16, 1024);
#pragma unroll
  for (int i = 0; i < kPieces; ++i) {
    const int blk = (kFirst + i) % kPieces;
    mbarrier_wait(bars + 8 * blk, parity);
    wgmma_fence();  // explicit after each wait, or ptxas inserts its own and serializes the wgmmas
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      wgmma_m64n32k16_ss(s, qd + ((blk * kQPieceBytes + k * 32) >> 4), kd + ((blk * kPieceBytes + k * 32) >> 4));
    }
  }
  wgmma_commit();
}

// Rows [n_live, 32) of warpgroup wg's four V pieces at `kv` become zeros: P is 0 there, and
// 0 * garbage (rows past the context's end, or not copied at all) can be NaN.
__device__ __forceinline__ void zero_dead_rows(uint32_t kv, int n_live, int wg) {
  const uint32_t v = kv + wg * 4 * kPieceBytes;
  for (int i = threadIdx.x % 128; i < (kKeys - n_live) * 4 * 8; i += 128) {
    const int row = n_live + i / 32, blk = i / 8 % 4, chunk = i % 8;
    st_shared_zero16(v + blk * kPieceBytes + row * 128 + chunk * 16);
  }
  fence_proxy_async();
  named_sync(wg == 0 ? kGroup0 : kGroup1, 128);
}

// O *= alpha (per row): before any wgmma of the step is issued (ptxas serializes wgmmas when
// their registers are written while others are in flight).
__device__ __forceinline__ void rescale(float (&o)[128], const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] *= alpha[(i / 2) & 1];
}

// Issues O[:, 256 wg + (0..255)] += P . V over the tile at `kv`: V rows are keys (K of this
// product), 2 k16 steps. The caller waits for the group.
__device__ __forceinline__ void issue_pv(float (&o)[128], const uint32_t (&pv)[kSteps][4], uint32_t kv, int wg) {
  fence_regs(o);
  wgmma_fence();
  const uint64_t vd = sw128_desc(kv + wg * 4 * kPieceBytes, kPieceBytes, 1024);
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk) wgmma_m64n256k16_rs(o, pv[kk], vd + ((kk * 2 * 1024) >> 4));
  wgmma_commit();
}

// Waits until at most N of this thread's cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// What both warpgroups of a block need to know.
struct BlockWork {
  int t, h0, seq, k_begin, k_end, n_tiles, n_heads;
  int64_t part_row;
  uint32_t q_tile, tiles, bars;  // shared addresses: Q, the tile buffers, their barriers
  __device__ uint32_t tile(int i) const { return tiles + (i % kBuffers) * kTileBytes; }
  __device__ uint32_t bars_of(int i) const { return bars + (i % kBuffers) * kPieces * 8; }
  // Each buffer's barriers complete once per tile it holds.
  __device__ uint32_t parity(int i) const { return (i / kBuffers) & 1; }
};

// Refills pieces [first, last) of tile i's buffer with tile i, if the context has one (one thread).
__device__ __forceinline__ void refill(const BlockWork& w, const MlaParams& p, const CUtensorMap* map, int i, int first,
                                       int last) {
  if (i < w.n_tiles)
    load_pieces(w.tile(i), w.bars_of(i), map, p.batch, w.seq, w.k_begin + i * kKeys, w.k_end, first, last);
}

// Waits for pieces [first, last) of tile i: makes the TMA's bytes visible to this thread's wgmmas.
__device__ __forceinline__ void wait_pieces(const BlockWork& w, int i, int first, int last) {
  for (int blk = first; blk < last; ++blk) mbarrier_wait(w.bars_of(i) + 8 * blk, w.parity(i));
}

// Live keys of tile i (more than a tile's for all but the last).
__device__ __forceinline__ int live_keys(const BlockWork& w, int i) { return w.k_end - w.k_begin - i * kKeys; }

// Warpgroup 0's half of pair j (tiles i0 = 2j and i1 = 2j + 1; kOdd: tile i1 exists): S of tile
// i0 and its softmax to the maxima m0, O_L += P0 . V0_L, then (m1 from warpgroup 1) P0 rescaled to
// m1 for warpgroup 1, O_L rescaled, and O_L += P1 . V1_L with warpgroup 1's P1. Thread 0
// refills what this warpgroup read last: the rope piece of tile i0 after S, its pieces 0-3 after
// P0 . V0_L, tile i1's rope piece once P1 is read, its pieces 0-3 after P1 . V1_L.
template <bool kOdd>
__device__ __forceinline__ void even_step(const BlockWork& w, const MlaParams& p, const CUtensorMap* map, Exchange& ex,
                                          int j, float (&o)[128], RowState& st) {
  const int i0 = 2 * j, i1 = i0 + 1;
  const uint32_t kv0 = w.tile(i0), kv1 = w.tile(i1);
  float s[kKeys / 2];
  issue_s<kPieces - 1>(s, w.q_tile, kv0, w.bars_of(i0), w.parity(i0));
  wgmma_wait<0>();
  fence_regs(s);
  if (i0 + kBuffers < w.n_tiles) {
    named_sync(kGroup0, 128);
    if (threadIdx.x == 0) refill(w, p, map, i0 + kBuffers, kPieces - 1, kPieces);
  }

  float m0[2], alpha[2], sum[2];
  scale_and_mask(s, live_keys(w, i0), p.scale_log2, m0);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    m0[h] = fmaxf(st.max[h], m0[h]);      // finite: key 0 of every tile is live
    alpha[h] = exp2f(st.max[h] - m0[h]);  // 0 on the first tile (max was -inf)
  }
  publish_rows(ex.m0, m0);
  named_arrive(kMax0, kThreads);
  exponentiate(s, m0, sum);
  uint32_t pa[kSteps][4];
  const float one[2] = {1.0f, 1.0f};
  pack_p(s, one, pa);
  if (live_keys(w, i0) < kKeys) zero_dead_rows(kv0, live_keys(w, i0), 0);
  rescale(o, alpha);
  issue_pv(o, pa, kv0, 0);

  named_sync(kPairB, kThreads);
  float m1[2], beta[2];
  read_rows(ex.m1, m1);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    beta[h] = exp2f(m0[h] - m1[h]);
    st.sum[h] = (st.sum[h] * alpha[h] + sum[h]) * beta[h];
    st.max[h] = m1[h];
  }
  uint32_t pb[kSteps][4];
  pack_p(s, beta, pb);
  store_p(smem_addr(&ex.p[0][0][0]), pb);
  named_arrive(kPairA, kThreads);
  wgmma_wait<0>();
  fence_regs(o);
  rescale(o, beta);
  if constexpr (kOdd) {
    load_p(kv1 + (kPieces - 1) * kPieceBytes, pb);
    wait_pieces(w, i1, 0, 4);
    if (live_keys(w, i1) < kKeys) zero_dead_rows(kv1, live_keys(w, i1), 0);
  }
  if (i0 + kBuffers < w.n_tiles || (kOdd && i1 + kBuffers < w.n_tiles)) {
    fence_proxy_async();  // the reads of P1 before the TMA's writes
    named_sync(kGroup0, 128);
    if (threadIdx.x == 0) {
      refill(w, p, map, i0 + kBuffers, 0, 4);
      if (kOdd) refill(w, p, map, i1 + kBuffers, kPieces - 1, kPieces);
    }
  }
  if constexpr (kOdd) {
    issue_pv(o, pb, kv1, 0);
    // Waited for here: left in flight under the next pair's S, ptxas serializes all wgmmas.
    wgmma_wait<0>();
    fence_regs(o);
    if (i1 + kBuffers < w.n_tiles) {
      named_sync(kGroup0, 128);
      if (threadIdx.x == 0) refill(w, p, map, i1 + kBuffers, 0, 4);
    }
  }
}

// Warpgroup 1's half of pair j: S of tile i1 (kOdd) and its softmax to the pair's maxima m1 =
// max(m0, its own), P1 to warpgroup 0 through tile i1's rope piece, O_R += P1 . V1_R, then
// O_R += P0 . V0_R with warpgroup 0's rescaled P0. Thread 128 refills pieces 4-7 of each tile
// after the product that read them last.
template <bool kOdd>
__device__ __forceinline__ void odd_step(const BlockWork& w, const MlaParams& p, const CUtensorMap* map, Exchange& ex,
                                         int j, float (&o)[128], RowState& st) {
  const int i0 = 2 * j, i1 = i0 + 1;
  const uint32_t kv0 = w.tile(i0), kv1 = w.tile(i1);
  float s[kKeys / 2], m1[2] = {kNegInf, kNegInf};
  if constexpr (kOdd) {
    issue_s<4>(s, w.q_tile, kv1, w.bars_of(i1), w.parity(i1));
    wgmma_wait<0>();
    fence_regs(s);
    scale_and_mask(s, live_keys(w, i1), p.scale_log2, m1);
  }
  named_sync(kMax0, kThreads);
  float m0[2], alpha[2];
  read_rows(ex.m0, m0);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    m1[h] = fmaxf(m0[h], m1[h]);
    alpha[h] = exp2f(st.max[h] - m1[h]);
    st.max[h] = m1[h];
    st.sum[h] *= alpha[h];
  }
  publish_rows(ex.m1, m1);
  uint32_t pa[kSteps][4];
  if constexpr (kOdd) {
    float sum[2];
    const float one[2] = {1.0f, 1.0f};
    exponentiate(s, m1, sum);
    st.sum[0] += sum[0], st.sum[1] += sum[1];
    pack_p(s, one, pa);
    store_p(kv1 + (kPieces - 1) * kPieceBytes, pa);  // S is done with the rope piece
    fence_proxy_async();                             // these writes before the TMA's that refill the piece
  }
  named_arrive(kPairB, kThreads);
  rescale(o, alpha);
  if constexpr (kOdd) {
    if (live_keys(w, i1) < kKeys) zero_dead_rows(kv1, live_keys(w, i1), 1);
    issue_pv(o, pa, kv1, 1);
  }

  named_sync(kPairA, kThreads);
  uint32_t pb[kSteps][4];
  load_p(smem_addr(&ex.p[0][0][0]), pb);
  wait_pieces(w, i0, 4, 8);
  if (live_keys(w, i0) < kKeys) zero_dead_rows(kv0, live_keys(w, i0), 1);
  issue_pv(o, pb, kv0, 1);
  if constexpr (kOdd) {
    wgmma_wait<1>();  // P1 . V1_R
    if (i1 + kBuffers < w.n_tiles) {
      named_sync(kGroup1, 128);
      if (threadIdx.x == 128) refill(w, p, map, i1 + kBuffers, 4, 8);
    }
  }
  wgmma_wait<0>();
  fence_regs(o);
  if (i0 + kBuffers < w.n_tiles) {
    named_sync(kGroup1, 128);
    if (threadIdx.x == 128) refill(w, p, map, i0 + kBuffers, 4, 8);
  }
}

// Warpgroup `wg`'s part of all pairs of tiles; a last tile without a partner is a pair of its own
// (kOdd false), a separate instance so that no wgmma is issued or waited for under a branch.
template <bool kEven>
__device__ __forceinline__ void seesaw(const BlockWork& w, const MlaParams& p, const CUtensorMap* map, Exchange& ex,
                                       float (&o)[128], RowState& st) {
  const int full_pairs = w.n_tiles / 2;
  for (int j = 0; j < full_pairs; ++j) {
    if constexpr (kEven)
      even_step<true>(w, p, map, ex, j, o, st);
    else
      odd_step<true>(w, p, map, ex, j, o, st);
  }
  if (w.n_tiles % 2) {
    if constexpr (kEven)
      even_step<false>(w, p, map, ex, full_pairs, o, st);
    else
      odd_step<false>(w, p, map, ex, full_pairs, o, st);
  }
}
#endif  // DSINFER_MLA_SM90A

__global__ void __launch_bounds__(kThreads, 1)
    mla_decode_kernel(const __grid_constant__ CUtensorMap cache_map, MlaParams p, SplitKv split) {
#if defined(__CUDA_ARCH__) && defined(DSINFER_MLA_SM90A)
  const DeviceBatch& b = p.batch;
  BlockWork w;
  w.h0 = blockIdx.x * kHeads;
  w.t = blockIdx.y;
  w.seq = b.token_seq[w.t];
  split_range(split, b.positions[w.t] + 1, blockIdx.z, w.k_begin, w.k_end);
  w.part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + w.t) * p.heads;
  w.n_heads = min(kHeads, p.heads - w.h0);
  if (w.k_begin >= w.k_end) {  // a split past its context's end
    wait_for_previous_kernels();
    return write_empty_split(split, w.part_row + w.h0, w.n_heads);
  }
  w.n_tiles = ceil_div(w.k_end - w.k_begin, kKeys);

  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023) & ~1023u;  // swizzle atoms are 1024-aligned
  w.q_tile = base;
  w.tiles = base + kQBytes;
  Exchange& ex =
      *reinterpret_cast<Exchange*>(smem_raw + (base - smem_addr(smem_raw)) + kQBytes + kBuffers * kTileBytes);
  w.bars = smem_addr(&ex.full[0][0]);

  // All buffers start loading at once; afterwards each piece refills as soon as it is free.
  // The rows before the token's own are final before this kernel may start, so a tile of only
  // those loads before the wait. The token's row is written by the kernel just before this one
  // (mla_absorb_kernel's cache-row blocks, which let this kernel launch before they write it),
  // so a tile holding it loads after the wait, as Q, the previous kernel's output, does.
  // Thread 0 loads the first tiles: those of older rows only (settled) or the others.
  const int own_row = b.positions[w.t];
  const auto load_first_tiles = [&](bool settled) {
    for (int i = 0; i < min(w.n_tiles, kBuffers); ++i)
      if ((min(w.k_end, w.k_begin + (i + 1) * kKeys) <= own_row) == settled)
        load_pieces(w.tile(i), w.bars_of(i), &cache_map, b, w.seq, w.k_begin + i * kKeys, w.k_end, 0, kPieces);
  };
  if (threadIdx.x == 0) {
    for (int i = 0; i < kBuffers * kPieces; ++i) mbarrier_init(w.bars + 8 * i, 1);
    mbarrier_init_fence();
    load_first_tiles(true);
  }
  wait_for_previous_kernels();
  allow_next_kernel();
  if (threadIdx.x == 0) load_first_tiles(false);
  load_q_tile(w.q_tile, p, w.t, w.h0);
  cp_async_commit();
  cp_async_wait_group<0>();
  fence_proxy_async();
  __syncthreads();  // Q is in, the barriers are initialized

  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32;
  const int row_a = (threadIdx.x % 128) / 32 * 16 + lane / 4;  // this thread's rows: row_a and row_a + 8
  RowState st;
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.0f;
  if (wg == 0)
    seesaw<true>(w, p, &cache_map, ex, o, st);
  else
    seesaw<false>(w, p, &cache_map, ex, o, st);

    // Rows row_a (+8); columns 256 wg + 8i + 2(lane % 4). Both warpgroups end at the same maxima;
    // each summed the P of its own tiles.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 1);
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 2);
  }
  publish_rows(ex.sum[wg], st.sum);
  __syncthreads();
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] = ex.sum[0][row_a + 8 * h] + ex.sum[1][row_a + 8 * h];
    inv[h] = 1.0f / st.sum[h];
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row_a + 8 * h;
    if (row >= w.n_heads) continue;
    const int64_t out_row = static_cast<int64_t>(w.t) * p.heads + w.h0 + row;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int col = wg * 256 + i * 8 + 2 * (lane % 4);
      const float v0 = o[4 * i + 2 * h] * inv[h], v1 = o[4 * i + 2 * h + 1] * inv[h];
      if (split.splits == 1)
        *reinterpret_cast<__nv_bfloat162*>(p.out + out_row * kLora + col) = __floats2bfloat162_rn(v0, v1);
      else
        *reinterpret_cast<float2*>(split.part_o + (w.part_row + w.h0 + row) * kLora + col) = make_float2(v0, v1);
    }
    if (split.splits > 1 && wg == 0 && lane % 4 == 0)
      split.part_lse[w.part_row + w.h0 + row] = st.max[h] + log2f(st.sum[h]);
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
  return p.lora == kLora && p.rope == kRope && p.cache_width == kDim && p.vec && p.batch.block_size.d % 8 == 0 &&
         device_is_sm90();
}

void launch_mla_decode(const MlaParams& p, const SplitKv& split, cudaStream_t s) {
  if (!mla_decode_fits(p))
    fail("mla decode kernel: needs latent ", kLora, " + rope ", kRope, " (got ", p.lora, " + ", p.rope,
         "), 16-byte aligned rows, cache blocks of a multiple of 8 slots (got ", p.batch.block_size.d,
         ") and an sm_90 device");
  // The cache as bytes: rows of 1152, boxes of 128 bytes (one swizzled 64-column piece).
  const CUtensorMap map = make_fp8_tensor_map(p.cache, kMapRows, kDim * 2, box_rows(p.batch.block_size.d));
  auto kernel = mla_decode_kernel;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  // Head blocks vary fastest, so the blocks sharing a token's cache tiles run together (L2 hits).
  const dim3 grid(ceil_div(p.heads, kHeads), p.batch.num_tokens, split.splits);
  launch_dependent("mla_decode_kernel", kernel, grid, kThreads, kSmemBytes, s, map, p, split);
}

}  // namespace dsinfer::cuda
