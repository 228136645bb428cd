// GQA attention over the paged KV cache.
// Prefill: flash-attention 2 on tensor cores. A block owns 128 rows = (query token, query head)
// pairs of one sequence and one kv head's group (Qwen2-7B: 18 tokens x 7 heads), 16 per warp, so
// each K/V tile of 64 keys gathered from the cache pages (double-buffered cp.async) serves the
// whole group; S = Q K^T and O += P V run as mma.sync with the online softmax in registers, so
// no S x S matrix ever exists.
// Decode: one query token per sequence. A block owns (sequence, kv head, split of the context)
// and up to 16 query heads of the kv head's group as the rows of its mma tiles, so each K/V row
// read from memory serves the whole group; the last split of a long context to finish merges
// the splits' partial outputs (combine_splits_kernel does it for MLA).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/rotary.cuh"
#include "backend/cuda/split_merge.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kTile = 64;         // query rows and keys per tile
constexpr int kDecodeThreads = 128;
constexpr int kDecodeHeads = kDecodeHeadsPerBlock;  // the 16 rows of an mma tile
// K/V tiles in flight per decode block (74 KB of shared memory at D = 128: 3 blocks per SM). 3
// stages (2 blocks per SM) measured slower at batch 64 (H100: 264 against 224 us at context 4096).
constexpr int kDecodeStages = 2;

// ---------------------------------------------------------------- prefill

// The rows of a prefill block are (query token, query head) pairs of one kv head's group,
// token-major: row r is token r / heads, head r % heads of the block's chunk of the group. So
// every K/V tile the block gathers serves the whole group (Qwen2-7B: 7 heads x 18 tokens), and a
// short chunk of new tokens over a long cached prefix still fills the rows.
constexpr int kKeys = 64;  // keys per K/V tile
// Warps of a block, 16 rows each: every K/V tile gathered serves all of them, so more rows mean
// fewer L2 reads per FLOP, as far as shared memory (Q rows + two K/V stages) allows.
constexpr int kPrefillWarps = 8;

struct PrefillRows {
  int heads;   // query heads per block: the group, or a chunk of a group larger than a block
  int tokens;  // query tokens per block
};
__host__ __device__ inline PrefillRows prefill_rows(int group, int rows) {
  const int heads = group < rows ? group : rows;
  return {heads, rows / heads};
}

// Columns [8c, 8c + 8) of one row into dst by plain loads: zeros past column n, or everywhere
// for a null row.
__device__ __forceinline__ void copy_scalar(bf16* dst, const bf16* row, int c, int n) {
  for (int e = 0; e < 8; ++e) {
    const int d = c * 8 + e;
    dst[e] = row != nullptr && d < n ? row[d] : __float2bfloat16(0.0f);
  }
}

// Columns [8c, 8c + 8) of one row into dst: zeros past column n, or everywhere for a null row.
__device__ __forceinline__ void copy_chunk(bf16* dst, const bf16* row, int c, int n, bool vec) {
  if (vec) {
    const bool live = row != nullptr && c * 8 < n;
    cp_async_16(dst, live ? row + c * 8 : g_zero_src, live ? 16 : 0);
  } else {
    copy_scalar(dst, row, c, n);
  }
}

// Row of key `key`: at `first_row + key` of packed contexts (table null), else in the table's pages.
__device__ __forceinline__ int64_t key_row(const int* table, int64_t first_row, const FastDiv& bs, int key) {
  if (!table) return first_row + key;
  const int page = bs.div(key);
  return static_cast<int64_t>(table[page]) * bs.d + key - page * bs.d;
}

// Keys [k0, k0 + kKeys) of one cache (K or V, `dim` wide a head, `width` a row) into a tile of row
// stride S (zeros from key_end on), a 16-byte column chunk per thread and step. kVec: every copy
// a cp.async whose source is one IMAD.WIDE.U32 (slot x row pitch), without copy_chunk's 64-bit
// products and branch per chunk (the loads share the issue slots with the mma).
template <int D, int S, int kThreads, bool kVec>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* cache, int width, int dim, int kvh,
                                          const int* table, int64_t first_row, const FastDiv& bs, int k0, int key_end) {
  constexpr int kChunks = D / 8;
  static_assert(kKeys * kChunks % kThreads == 0);
  const char* head = reinterpret_cast<const char*>(cache + kvh * dim);
  const uint32_t pitch = static_cast<uint32_t>(width) * sizeof(bf16);
#pragma unroll
  for (int i = threadIdx.x; i < kKeys * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks, key = k0 + r;
    if constexpr (kVec) {
      const bool live = key < key_end && c * 8 < dim;
      const uint32_t slot = live ? static_cast<uint32_t>(key_row(table, first_row, bs, key)) : 0u;
      const char* src = head + static_cast<uint64_t>(slot) * pitch + c * 16;
      cp_async_16(tile + r * S + c * 8, live ? reinterpret_cast<const bf16*>(src) : g_zero_src, live ? 16 : 0);
    } else {
      const bf16* row = key < key_end ? cache + key_row(table, first_row, bs, key) * width + kvh * dim : nullptr;
      copy_chunk(tile + r * S + c * 8, row, c, dim, false);
    }
  }
}

// Keys [k0, k0 + kKeys) of the sequence into the K and V tiles. Tiles of equal width (DK == DV)
// look each row's slot up once for both.
template <int DK, int DV, int kThreads>
__device__ __forceinline__ void load_kv_tile(const GqaParams& p, const int* table, int64_t first_row, int kvh, int k0,
                                             int key_end, bf16* kt, bf16* vt) {
  constexpr int SK = DK + 8, SV = DV + 8, kChunksK = DK / 8;
  const FastDiv& bs = p.batch.block_size;
  const int k_width = p.kv_heads * p.head_dim, v_width = p.kv_heads * p.v_dim;
  if constexpr (DK == DV && kThreads % kChunksK == 0) {
    constexpr int kStep = kThreads / kChunksK;
    const int c = threadIdx.x % kChunksK;
#pragma unroll
    for (int i = 0; i < kKeys / kStep; ++i) {
      const int r = threadIdx.x / kChunksK + i * kStep, key = k0 + r;
      const bf16 *k_row = nullptr, *v_row = nullptr;
      if (key < key_end) {
        const int64_t slot = key_row(table, first_row, bs, key);
        k_row = p.k_cache + slot * k_width + kvh * p.head_dim;
        v_row = p.v_cache + slot * v_width + kvh * p.v_dim;
      }
      copy_chunk(kt + r * SK + c * 8, k_row, c, p.head_dim, p.vec);
      copy_chunk(vt + r * SV + c * 8, v_row, c, p.v_dim, p.vec);
    }
  } else if (p.vec) {
    load_tile<DK, SK, kThreads, true>(kt, p.k_cache, k_width, p.head_dim, kvh, table, first_row, bs, k0, key_end);
    load_tile<DV, SV, kThreads, true>(vt, p.v_cache, v_width, p.v_dim, kvh, table, first_row, bs, k0, key_end);
  } else {
    load_tile<DK, SK, kThreads, false>(kt, p.k_cache, k_width, p.head_dim, kvh, table, first_row, bs, k0, key_end);
    load_tile<DV, SV, kThreads, false>(vt, p.v_cache, v_width, p.v_dim, kvh, table, first_row, bs, k0, key_end);
  }
}

// Flash-attention 2 over one block of rows (see PrefillRows). Each warp owns 16 rows;
// K/V tiles of 64 keys are double-buffered with cp.async (tile j + 1 streams in while tile j is
// used); S = Q K^T and O += P V run as mma.sync with the online softmax in registers.
// DK, DV: padded key and value widths, multiples of 16 >= head_dim and v_dim (MLA's expanded
// prefill: 192 and 128, where one padded width would do 1.6x the products).
template <int DK, int DV>
__global__ void __launch_bounds__(32 * kPrefillWarps, (DK <= 128 ? 2 : 1))
    gqa_prefill_kernel(GqaParams p) {
  dependent_kernel_start();
  constexpr int S = DK + 8, SV = DV + 8;  // smem row strides: 16 extra bytes put ldmatrix rows on distinct banks
  constexpr int kThreads = 32 * kPrefillWarps, kRows = 16 * kPrefillWarps, kChunks = DK / 8;
  static_assert(kRows * kChunks % kThreads == 0);
  const DeviceBatch& b = p.batch;
  const int group = p.heads / p.kv_heads;
  const PrefillRows rows = prefill_rows(group, kRows);
  // One flat grid, the tiles with the most keys first over every (sequence, head chunk): the
  // longest blocks start in the first wave and the last wave holds short ones.
  const int head_blocks = p.kv_heads * ceil_div(group, rows.heads), per_tile = head_blocks * b.num_seqs;
  const int tile = gridDim.x / per_tile - 1 - blockIdx.x / per_tile;
  const int seq = blockIdx.x % per_tile / head_blocks, hb = blockIdx.x % head_blocks;
  const int kvh = hb / (head_blocks / p.kv_heads), g0 = hb % (head_blocks / p.kv_heads) * rows.heads;
  const int q_len = b.query_len[seq], t0 = tile * rows.tokens;
  if (t0 >= q_len) return;
  const int first = b.query_start[seq] + t0, n_tok = min(rows.tokens, q_len - t0);
  const int key_end = b.positions[first + n_tok - 1] + 1;  // positions grow within a sequence
  const int n_tiles = ceil_div(key_end, kKeys);
  const int* table = p.packed ? nullptr : b.block_tables + b.block_table_start[seq];
  const int64_t first_row = p.packed ? b.context_start[seq] : 0;

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + kRows * S;      // [2][kKeys][S]
  bf16* sv = sk + 2 * kKeys * S;  // [2][kKeys][SV]

  // Row r's query: token r / heads of the block, head g0 + r % heads of the group (zeros past either).
  // A thread's chunks are (row, column) pairs kThreads apart: the same column of every row it copies
  // when kThreads is a multiple of the chunks per row.
  constexpr int kRowStep = kThreads % kChunks == 0 ? kThreads / kChunks : 0;
#pragma unroll
  for (int i = 0; i < kRows * kChunks / kThreads; ++i) {
    const int at = threadIdx.x + i * kThreads;
    const int r = kRowStep ? threadIdx.x / kChunks + i * kRowStep : at / kChunks, c = at % kChunks;
    const int tok = r / rows.heads, g = g0 + r % rows.heads;
    const bf16* row = tok < n_tok && g < group
                          ? p.q + (static_cast<int64_t>(first + tok) * p.heads + kvh * group + g) * p.head_dim
                          : nullptr;
    copy_chunk(sq + r * S + c * 8, row, c, p.head_dim, p.vec);
  }
  load_kv_tile<DK, DV, kThreads>(p, table, first_row, kvh, 0, key_end, sk, sv);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row_a = warp * 16 + lane / 4, row_b = row_a + 8;
  // Rows past the block's tokens borrow the last token's position: finite, and never stored.
  const int pos_a = b.positions[first + min(row_a / rows.heads, n_tok - 1)];
  const int pos_b = b.positions[first + min(row_b / rows.heads, n_tok - 1)];
  // Positions grow with the row: the warp's first row sees the fewest keys, its last the most.
  const int warp_first = __shfl_sync(0xffffffffu, pos_a, 0), warp_last = __shfl_sync(0xffffffffu, pos_b, 31);
  float o[DV / 8][4] = {};
  float m_a = kNegInf, m_b = kNegInf, l_a = 0.0f, l_b = 0.0f;  // m in raw score units

  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait_all();
    __syncthreads();  // tile j landed everywhere, and every warp is done with tile j - 1's buffer
    if (j + 1 < n_tiles) {
      load_kv_tile<DK, DV, kThreads>(p, table, first_row, kvh, (j + 1) * kKeys, key_end,
                                     sk + ((j + 1) & 1) * kKeys * S, sv + ((j + 1) & 1) * kKeys * SV);
      cp_async_commit();
    }
    const int k0 = j * kKeys;
    if (k0 > warp_last) continue;  // the whole tile lies past this warp's rows (the diagonal's end)
    const bf16* kt = sk + (j & 1) * kKeys * S;
    const bf16* vt = sv + (j & 1) * kKeys * SV;

    float s[kKeys / 8][4] = {};
#pragma unroll
    for (int kk = 0; kk < DK / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, sq + (warp * 16 + lane % 16) * S + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; nt += 2) {
        uint32_t bk[4];
        ldmatrix_x4(bk, kt + (nt * 8 + (lane / 16) * 8 + lane % 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
        mma_bf16(s[nt], a, bk[0], bk[1]);
        mma_bf16(s[nt + 1], a, bk[2], bk[3]);
      }
    }

    // Only tiles crossing the diagonal need the causal mask (keys past the end lie past it too).
    if (k0 + kKeys - 1 > warp_first) {
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + nt * 8 + 2 * (lane % 4) + (e & 1);
          if (key > (e < 2 ? pos_a : pos_b)) s[nt][e] = kNegInf;
        }
    }
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
      mx_a = fmaxf(mx_a, fmaxf(s[nt][0], s[nt][1]));
      mx_b = fmaxf(mx_b, fmaxf(s[nt][2], s[nt][3]));
    }
    // The 4 lanes holding one row are lanes 4r..4r+3.
    for (int off = 1; off < 4; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    // Every row sees key 0 in tile 0, so the maxima are finite from the first tile on.
    const float alpha_a = fast_exp2((m_a - mx_a) * p.scale_log2), alpha_b = fast_exp2((m_b - mx_b) * p.scale_log2);
    m_a = mx_a;
    m_b = mx_b;
    const float base_a = m_a * p.scale_log2, base_b = m_b * p.scale_log2;
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
      s[nt][0] = fast_exp2(fmaf(s[nt][0], p.scale_log2, -base_a));
      s[nt][1] = fast_exp2(fmaf(s[nt][1], p.scale_log2, -base_a));
      s[nt][2] = fast_exp2(fmaf(s[nt][2], p.scale_log2, -base_b));
      s[nt][3] = fast_exp2(fmaf(s[nt][3], p.scale_log2, -base_b));
      sum_a += s[nt][0] + s[nt][1];
      sum_b += s[nt][2] + s[nt][3];
    }
    l_a = l_a * alpha_a + sum_a;  // this lane's share of the row sum; lanes add up at the end
    l_b = l_b * alpha_b + sum_b;
    scale_rows(o, alpha_a, alpha_b);

#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      // The accumulator layout of S is the A-operand layout of P: no shuffles needed.
      const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dt = 0; dt < DV / 8; dt += 2) {
        uint32_t bv[4];
        ldmatrix_x4_trans(bv, vt + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * SV + dt * 8 + (lane / 16) * 8);
        mma_bf16(o[dt], a, bv[0], bv[1]);
        mma_bf16(o[dt + 1], a, bv[2], bv[3]);
      }
    }
  }

  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }
  const float inv_a = 1.0f / l_a, inv_b = 1.0f / l_b;
  const int tok_a = row_a / rows.heads, g_a = g0 + row_a % rows.heads;
  const int tok_b = row_b / rows.heads, g_b = g0 + row_b % rows.heads;
  const bool live_a = tok_a < n_tok && g_a < group, live_b = tok_b < n_tok && g_b < group;
  bf16* out_a = p.out + (static_cast<int64_t>(first + tok_a) * p.heads + kvh * group + g_a) * p.v_dim;
  bf16* out_b = p.out + (static_cast<int64_t>(first + tok_b) * p.heads + kvh * group + g_b) * p.v_dim;
#pragma unroll
  for (int dt = 0; dt < DV / 8; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int d = dt * 8 + 2 * (lane % 4) + (e & 1);
      if (d >= p.v_dim) continue;
      if (e < 2 && live_a) out_a[d] = __float2bfloat16(o[dt][e] * inv_a);
      if (e >= 2 && live_b) out_b[d] = __float2bfloat16(o[dt][e] * inv_b);
    }
}

template <int DK, int DV>
void prefill_with(const GqaParams& p, int max_query_len, cudaStream_t s) {
  constexpr int kWarps = kPrefillWarps;
  const size_t smem = (static_cast<size_t>(16 * kWarps + 2 * kKeys) * (DK + 8) + 2 * kKeys * (DV + 8)) * sizeof(bf16);
  auto kernel = gqa_prefill_kernel<DK, DV>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // Two blocks of 8 warps at D = 128 (2 x 102 KB) fit a multiprocessor only with the largest carveout.
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                  cudaSharedmemCarveoutMaxShared));
  const int group = p.heads / p.kv_heads;
  const PrefillRows rows = prefill_rows(group, 16 * kWarps);
  const int64_t blocks = static_cast<int64_t>(ceil_div(max_query_len, rows.tokens)) * p.batch.num_seqs * p.kv_heads *
                         ceil_div(group, rows.heads);
  if (blocks > INT32_MAX) fail("attention: ", blocks, " prefill blocks exceed one grid");
  launch_dependent("gqa_prefill_kernel", kernel, static_cast<unsigned>(blocks), 32 * kWarps, smem, s, p);
}

// ---------------------------------------------------------------- decode

// The two 16-byte chunks rotated_chunk needs of a head's row: chunk cc itself and, for neox,
// the one half / 8 chunks away that it pairs with (interleaved pairs lie inside the chunk).
struct RopePair {
  uint4 own, pair;
};
__device__ __forceinline__ RopePair load_rope_pair(const bf16* row, int cc, int half, bool neox) {
  const uint4 own = *reinterpret_cast<const uint4*>(row + cc * 8);
  return {own, neox ? *reinterpret_cast<const uint4*>(row + cc * 8 + (cc * 8 < half ? half : -half)) : own};
}

// Chunk cc (8 values) of a head's row, loaded as load_rope_pair, rotated as rope_and_cache's
// rotate_pair does, at the angles cs = [half cos | half sin]: a value below half pairs with the
// one half further on (neox), interleaved pairs lie inside the chunk.
__device__ __forceinline__ uint4 rotated_chunk(const RopePair& in, int cc, int half, const float* cs, bool neox) {
  const bool low = cc * 8 < half;
  const uint32_t xw[4] = {in.own.x, in.own.y, in.own.z, in.own.w}, yw[4] = {in.pair.x, in.pair.y, in.pair.z, in.pair.w};
  uint32_t o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    // bf16 -> float is the high half of the float's bits.
    const float2 x = make_float2(__uint_as_float(xw[j] << 16), __uint_as_float(xw[j] & 0xffff0000u));
    const float2 y = make_float2(__uint_as_float(yw[j] << 16), __uint_as_float(yw[j] & 0xffff0000u));
    const int d = cc * 8 + 2 * j;
    if (neox) {
      const int i = low ? d : d - half;
      const float sg = low ? -1.0f : 1.0f;  // x c - y s below half, x c + y s above
      o[j] = pack_bf16(x.x * cs[i] + sg * (y.x * cs[half + i]), x.y * cs[i + 1] + sg * (y.y * cs[half + i + 1]));
    } else {
      const float c = cs[d / 2], s = cs[half + d / 2];
      o[j] = pack_bf16(x.x * c - x.y * s, x.y * c + x.x * s);
    }
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

// Rows are the (up to 16) query heads of one kv head's group for the sequence's one token; each
// of the 4 warps takes 16 of every tile's 64 keys with its own online softmax, and the warps'
// states are merged at the end. The products run on tensor cores, so the kernel is bound by
// its K/V reads, like the weights' GEMVs.
//
// Loads: a thread copies one 16-byte column chunk of kTile / kStep rows of every tile; the cache
// slots of its rows of the next tile are read from the block table into registers one tile
// ahead, so no table lookup sits between a tile's turn and its copies. kStages tiles are in
// flight while the block waits for the oldest. Before the dependent wait the block issues the
// copies of its first tiles: every K/V row but the newest (position ctx - 1), which the previous
// kernel (rope_and_cache) writes along with q; those two are loaded after the wait. With p.rope
// the previous kernel is the q/k/v product instead: the block rotates q as it loads it, and a
// block whose split holds the newest key rotates it from the step's k and writes it and v into
// the cache itself (blocks of other head chunks of the group write the same bytes), so no
// rope_and_cache launch sits between the product and attention. The angles are computed before
// the wait: positions are the batch's, not a kernel's output.
//
// Splits: a split past its context's end does nothing. With split.counters the live splits of a
// (token, head block) row count themselves done on an atomic counter, and the last to finish
// merges all their partial outputs and resets the counter to 0 for the next launch (a recorded
// step replays the same launch); without counters every split writes its partials (empty ones
// as such) for combine_splits_kernel.
template <int D, int kStages>
__global__ void __launch_bounds__(kDecodeThreads) gqa_decode_kernel(GqaParams p, SplitKv split) {
  constexpr int S = D + 8;
  constexpr int kWarps = kDecodeThreads / 32;
  constexpr int kChunks = D / 8, kStep = kDecodeThreads / kChunks, kRowsPer = kTile / kStep;
  static_assert(kDecodeThreads % kChunks == 0 && kTile % kStep == 0, "decode tile mapping");
  const DeviceBatch& b = p.batch;
  const int seq = blockIdx.x, group = p.heads / p.kv_heads;
  // Before the wait: only what the previous kernel does not write (the batch, block tables and
  // the cache rows of earlier steps).
  if (b.query_len[seq] == 0) return dependent_kernel_start();  // a sequence with no token in this step
  const int head_chunks = ceil_div(group, kDecodeHeads);
  const int kvh = blockIdx.y / head_chunks, g0 = (blockIdx.y % head_chunks) * kDecodeHeads;
  const int n_heads = min(kDecodeHeads, group - g0), h0 = kvh * group + g0;
  const int t = b.query_start[seq], ctx = b.positions[t] + 1, newest = ctx - 1;
  int k_begin, k_end;
  split_range(split, ctx, blockIdx.z, k_begin, k_end);
  const int n_live = live_splits(split, ctx);
  const int64_t part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + t) * p.heads + h0;
  if (k_begin >= k_end) {
    dependent_kernel_start();
    if (split.counters == nullptr) write_empty_split(split, part_row, n_heads);
    return;
  }
  // 32-bit widths: the 16-byte path's row pitches below are 32-bit too.
  const int k_width = p.kv_heads * p.head_dim, v_width = p.kv_heads * p.v_dim;
  const bf16* k_base = p.k_cache + kvh * p.head_dim;
  const bf16* v_base = p.v_cache + kvh * p.v_dim;
  const int* table = b.block_tables + b.block_table_start[seq];
  const FastDiv& bs = b.block_size;
  const int n_tiles = ceil_div(k_end - k_begin, kTile);

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);  // [16][S]
  bf16* sk = sq + kDecodeHeads * S;          // [kStages][kTile][S]
  bf16* sv = sk + kStages * kTile * S;       // [kStages][kTile][S]
  float* cs = reinterpret_cast<float*>(sv + kStages * kTile * S);  // [D / 2] cos, [D / 2] sin (p.rope)
  const bool rope = p.rope.k_new != nullptr;
  const int half = p.head_dim / 2;
  if (rope) rope_table(cs, half, static_cast<float>(newest), p.rope.inv_freq, p.rope.attention_factor);

  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  // This thread's rows of the next tile to copy: their cache slots (0 past k_end, a row that
  // exists) and a bit each for the rows before k_end.
  uint32_t slot[kRowsPer], live = 0;
  auto fetch_slots = [&](int k0) {
    live = 0;
#pragma unroll
    for (int i = 0; i < kRowsPer; ++i) {
      const int key = k0 + r0 + i * kStep;
      const bool in = key < k_end;
      slot[i] = in ? static_cast<uint32_t>(key_row(table, 0, bs, key)) : 0u;
      live |= static_cast<uint32_t>(in) << i;
    }
  };
  // The 16-byte path's sources: this thread's chunk of the head's row 0 and the row pitch in
  // bytes, so that a row's address is one IMAD.WIDE.U32. A chunk past the head's width reads the
  // zero source with a pitch of 0, and every copy of it is of zero bytes.
  const bool k_col = c * 8 < p.head_dim, v_col = c * 8 < p.v_dim;
  const char* k_src = k_col ? reinterpret_cast<const char*>(k_base + c * 8) : reinterpret_cast<const char*>(g_zero_src);
  const char* v_src = v_col ? reinterpret_cast<const char*>(v_base + c * 8) : reinterpret_cast<const char*>(g_zero_src);
  const uint32_t k_pitch = k_col ? static_cast<uint32_t>(k_width * sizeof(bf16)) : 0u;
  const uint32_t v_pitch = v_col ? static_cast<uint32_t>(v_width * sizeof(bf16)) : 0u;
  // Copies of tile `tile` into its stage; kSkip: but the row of key `skip`. The general
  // copy_chunk path (null checks, 64-bit products, a branch per chunk) took ~35 instructions a
  // copy and 40 % of the kernel's at batch 64; this one takes a few.
  auto issue = [&]<bool kSkip>(int tile, int skip) {
    const int k0 = k_begin + tile * kTile, st = tile % kStages;
#pragma unroll
    for (int i = 0; i < kRowsPer; ++i) {
      const int r = r0 + i * kStep;
      if (kSkip && k0 + r == skip) continue;
      bf16* kd = sk + (st * kTile + r) * S + c * 8;
      bf16* vd = sv + (st * kTile + r) * S + c * 8;
      const bool in = (live >> i) & 1u;
      if (p.vec) {
        cp_async_16(kd, reinterpret_cast<const bf16*>(k_src + static_cast<uint64_t>(slot[i]) * k_pitch),
                    in && k_col ? 16 : 0);
        cp_async_16(vd, reinterpret_cast<const bf16*>(v_src + static_cast<uint64_t>(slot[i]) * v_pitch),
                    in && v_col ? 16 : 0);
      } else {
        copy_chunk(kd, in ? k_base + static_cast<int64_t>(slot[i]) * k_width : nullptr, c, p.head_dim, false);
        copy_chunk(vd, in ? v_base + static_cast<int64_t>(slot[i]) * v_width : nullptr, c, p.v_dim, false);
      }
    }
  };
  // The first tiles' copies, but the newest row's (it comes below, from wherever this step wrote
  // it). Before the wait when the previous kernel wrote only that row of the sequence's cache.
  auto first_tiles = [&] {
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < n_tiles) {
        fetch_slots(k_begin + s * kTile);
        issue.template operator()<true>(s, newest);
      }
      cp_async_commit();
    }
    if (kStages - 1 < n_tiles) fetch_slots(k_begin + (kStages - 1) * kTile);
  };
  if (!p.step_rows_in_cache) first_tiles();
  // The newest K/V row: threads [0, kChunks) take K's chunks, [kChunks, 2 kChunks) V's. Where it
  // comes from (the step's k and v at the token's slot, or the cache for a token written nowhere)
  // is the batch's, known before the wait.
  const bool newest_here = newest >= k_begin && newest < k_end;
  const bool newest_early = newest_here && newest < k_begin + (kStages - 1) * kTile;
  const bool new_k = threadIdx.x < kChunks, new_thread = threadIdx.x < 2 * kChunks;
  const int new_cc = threadIdx.x % kChunks, new_n = new_k ? p.head_dim : p.v_dim;
  const int64_t slot_w = rope && newest_here && new_thread ? b.slots[t] : -1;
  const bf16* new_row = nullptr;  // the row's source, where this thread has a chunk of it
  if (new_thread && new_cc * 8 < new_n && (rope ? newest_here : newest_early)) {
    const int64_t th = static_cast<int64_t>(t) * p.kv_heads + kvh;
    if (slot_w >= 0) {
      new_row = new_k ? p.rope.k_new + th * p.head_dim : p.rope.v_new + th * p.v_dim;
    } else {
      const int64_t sl = key_row(table, 0, bs, newest);
      new_row = new_k ? k_base + sl * k_width : v_base + sl * v_width;
    }
  }
  const bool rotate_new = new_k && slot_w >= 0;  // the cache holds k rotated

  dependent_kernel_start();
  if (p.step_rows_in_cache) first_tiles();
  // q and the newest K/V row (if this split holds it), as plain loads. On the 16-byte path every
  // load is issued before any value is used (the cache stores below may alias q for the
  // compiler, which would keep later loads behind them), so a thread waits on L2 once.
  constexpr int kQIters = kDecodeHeads * kChunks / kDecodeThreads;
  static_assert(kDecodeHeads * kChunks % kDecodeThreads == 0, "q chunks per thread");
  auto q_row = [&](int r) { return p.q + (static_cast<int64_t>(t) * p.heads + h0 + r) * p.head_dim; };
  if (p.vec) {
    RopePair nv{};
    if (new_row != nullptr) nv = load_rope_pair(new_row, new_cc, half, rotate_new && p.rope.neox);
    RopePair qv[kQIters];
#pragma unroll
    for (int j = 0; j < kQIters; ++j) {
      const int i = threadIdx.x + j * kDecodeThreads, r = i / kChunks, cc = i % kChunks;
      qv[j] = r < n_heads && cc * 8 < p.head_dim ? load_rope_pair(q_row(r), cc, half, rope && p.rope.neox) : RopePair{};
    }
    if (rope) __syncthreads();  // cs
#pragma unroll
    for (int j = 0; j < kQIters; ++j) {
      const int i = threadIdx.x + j * kDecodeThreads, r = i / kChunks, cc = i % kChunks;
      // Past the head's width the chunk stays zeros: the angles (cs) cover head_dim columns only.
      const bool rotate = rope && cc * 8 < p.head_dim;
      *reinterpret_cast<uint4*>(sq + r * S + cc * 8) = rotate ? rotated_chunk(qv[j], cc, half, cs, p.rope.neox) : qv[j].own;
    }
    // The new rows: into the cache (a later tile's copies read them from there after the loop's
    // first barrier) and, for a tile already issued, into its stage (zeros past the head's width).
    const uint4 v = rotate_new && new_row != nullptr ? rotated_chunk(nv, new_cc, half, cs, p.rope.neox) : nv.own;
    if (slot_w >= 0 && new_cc * 8 < new_n) {
      bf16* dst = new_k ? p.rope.k_cache + slot_w * k_width + kvh * p.head_dim
                        : p.rope.v_cache + slot_w * v_width + kvh * p.v_dim;
      *reinterpret_cast<uint4*>(dst + new_cc * 8) = v;
    }
    if (newest_early && new_thread) {
      const int rel = newest - k_begin;  // an early tile's stage is its index: its row is rel
      *reinterpret_cast<uint4*>((new_k ? sk : sv) + rel * S + new_cc * 8) = v;
    }
  } else {  // rope implies the 16-byte path (rope_cache_attention)
    for (int i = threadIdx.x; i < kDecodeHeads * kChunks; i += kDecodeThreads) {
      const int r = i / kChunks, cc = i % kChunks;
      copy_scalar(sq + r * S + cc * 8, r < n_heads ? q_row(r) : nullptr, cc, p.head_dim);
    }
    if (newest_early && new_thread) {
      const int rel = newest - k_begin;
      copy_scalar((new_k ? sk : sv) + rel * S + new_cc * 8, new_row, new_cc, new_n);
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float o[D / 8][4] = {};
  float m_a = kNegInf, m_b = kNegInf, l_a = 0.0f, l_b = 0.0f;
  for (int it = 0; it < n_tiles; ++it) {
    __syncthreads();  // every warp is done with tile it - 1, whose stage the next copies fill
    const int next = it + kStages - 1;
    if (next < n_tiles) {
      issue.template operator()<false>(next, 0);
      if (next + 1 < n_tiles) fetch_slots(k_begin + (next + 1) * kTile);
    }
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // tile `it` landed (this thread's copies)
    __syncthreads();               // ... everyone's
    const int k0 = k_begin + it * kTile;
    const bf16* kt = sk + ((it % kStages) * kTile + warp * 16) * S;  // this warp's 16 keys
    const bf16* vt = sv + ((it % kStages) * kTile + warp * 16) * S;

    float s[2][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4], bk[4];
      ldmatrix_x4(a, sq + (lane % 16) * S + kk * 16 + (lane / 16) * 8);
      ldmatrix_x4(bk, kt + ((lane / 16) * 8 + lane % 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
      mma_bf16(s[0], a, bk[0], bk[1]);
      mma_bf16(s[1], a, bk[2], bk[3]);
    }
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + warp * 16 + nt * 8 + 2 * (lane % 4) + (e & 1);
        const float v = key < k_end ? s[nt][e] * p.scale_log2 : kNegInf;
        s[nt][e] = v;
        if (e < 2) mx_a = fmaxf(mx_a, v); else mx_b = fmaxf(mx_b, v);
      }
    for (int off = 1; off < 4; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    // A warp may not have seen a live key yet (its keys lie past the end): its state stays empty.
    const float base_a = mx_a == kNegInf ? 0.0f : mx_a, base_b = mx_b == kNegInf ? 0.0f : mx_b;
    const float alpha_a = exp2f(m_a - base_a), alpha_b = exp2f(m_b - base_b);
    m_a = mx_a;
    m_b = mx_b;
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - base_a);
      s[nt][1] = exp2f(s[nt][1] - base_a);
      s[nt][2] = exp2f(s[nt][2] - base_b);
      s[nt][3] = exp2f(s[nt][3] - base_b);
      sum_a += s[nt][0] + s[nt][1];
      sum_b += s[nt][2] + s[nt][3];
    }
    l_a = l_a * alpha_a + sum_a;
    l_b = l_b * alpha_b + sum_b;
    // The accumulator layout of S is the A-operand layout of P (16 rows x these 16 keys).
    const uint32_t a[4] = {pack_bf16(s[0][0], s[0][1]), pack_bf16(s[0][2], s[0][3]), pack_bf16(s[1][0], s[1][1]),
                           pack_bf16(s[1][2], s[1][3])};
    // Once the running maxima settle (most tiles of a long context) no row's scale changes, and
    // the warp skips rescaling its D / 2 accumulators.
    if (__any_sync(0xffffffffu, alpha_a != 1.0f || alpha_b != 1.0f)) scale_rows(o, alpha_a, alpha_b);
#pragma unroll
    for (int dt = 0; dt < D / 8; dt += 2) {
      uint32_t bv[4];
      ldmatrix_x4_trans(bv, vt + (((lane / 8) % 2) * 8 + lane % 8) * S + dt * 8 + (lane / 16) * 8);
      mma_bf16(o[dt], a, bv[0], bv[1]);
      mma_bf16(o[dt + 1], a, bv[2], bv[3]);
    }
  }
  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }

  // Merge the warps' (max, sum, O) in shared memory, reusing the tiles.
  __syncthreads();
  float* w_max = reinterpret_cast<float*>(smem);  // [kWarps][16]
  float* w_sum = w_max + kWarps * kDecodeHeads;   // [kWarps][16]
  // [kWarps][16][D + 8]: with 8 floats of padding a warp's float2 stores (8 rows x 4 column
  // pairs) fill every bank once per 16 lanes; at stride D the 8 rows of a column share a bank.
  constexpr int SO = D + 8;
  static_assert(kWarps * kDecodeHeads * (2 + SO) * sizeof(float) <=
                    (kDecodeHeads + 2 * kStages * kTile) * S * sizeof(bf16), "the warps' merge fits the tiles' space");
  float* w_o = w_sum + kWarps * kDecodeHeads;
  const int row_a = lane / 4, row_b = row_a + 8;
  if (lane % 4 == 0) {
    w_max[warp * kDecodeHeads + row_a] = m_a;
    w_max[warp * kDecodeHeads + row_b] = m_b;
    w_sum[warp * kDecodeHeads + row_a] = l_a;
    w_sum[warp * kDecodeHeads + row_b] = l_b;
  }
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    const int col = dt * 8 + 2 * (lane % 4);
    *reinterpret_cast<float2*>(w_o + (warp * kDecodeHeads + row_a) * SO + col) = make_float2(o[dt][0], o[dt][1]);
    *reinterpret_cast<float2*>(w_o + (warp * kDecodeHeads + row_b) * SO + col) = make_float2(o[dt][2], o[dt][3]);
  }
  __syncthreads();
  // A thread's output: 4 adjacent columns of one row, D / 4 threads a row. Each thread weighs the
  // warps' O by exp2(m_w - max) / sum itself, from the row's kWarps maxima and sums: a few
  // instructions, against a barrier and a pass of their own.
  constexpr int kQuads = D / 4, kRowsPass = kDecodeThreads / kQuads;
  static_assert(kDecodeThreads % kQuads == 0, "decode output mapping");
  // This block saw the whole context (combine_splits_kernel, if launched, needs every partial).
  const bool direct = split.splits == 1 || (split.counters != nullptr && n_live == 1);
  const int d = (threadIdx.x % kQuads) * 4;
  // Whole 4-column stores: 8-byte bf16 and 16-byte float rows (part_o is the workspace's, aligned).
  const bool vec_out = p.vec && (reinterpret_cast<uintptr_t>(p.out) % 8 == 0);
  for (int r = threadIdx.x / kQuads; r < n_heads; r += kRowsPass) {
    float mx = kNegInf;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, w_max[w * kDecodeHeads + r]);
    float den = 0.0f, v[4] = {};
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float scale = exp2f(w_max[w * kDecodeHeads + r] - mx);  // 0 for a warp that saw no key
      den += scale * w_sum[w * kDecodeHeads + r];
      const float4 ow = *reinterpret_cast<const float4*>(w_o + (w * kDecodeHeads + r) * SO + d);
      v[0] += scale * ow.x, v[1] += scale * ow.y, v[2] += scale * ow.z, v[3] += scale * ow.w;
    }
    const float inv = 1.0f / den;
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] *= inv;
    if (d >= p.v_dim) continue;
    const int64_t row = static_cast<int64_t>(t) * p.heads + h0 + r;
    if (direct) {
      bf16* dst = p.out + row * p.v_dim + d;
      if (vec_out)
        *reinterpret_cast<uint2*>(dst) = make_uint2(pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]));
      else
        for (int e = 0; e < 4 && d + e < p.v_dim; ++e) dst[e] = __float2bfloat16(v[e]);
    } else {
      float* dst = split.part_o + (part_row + r) * p.v_dim + d;
      if (vec_out)
        *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
      else
        for (int e = 0; e < 4 && d + e < p.v_dim; ++e) dst[e] = v[e];
      if (d == 0) split.part_lse[part_row + r] = mx + log2f(den);
    }
  }
  if (direct || split.counters == nullptr) return;

  // The last live split of this (token, head block) to finish merges them all.
  if (!last_block_arrives(split.counters + static_cast<int64_t>(t) * gridDim.y + blockIdx.y, n_live)) return;
  merge_live_splits<kDecodeHeads>(split, n_live, static_cast<int64_t>(t) * p.heads + h0,
                                  static_cast<int64_t>(b.num_tokens) * p.heads, n_heads, p.v_dim, p.out,
                                  reinterpret_cast<float*>(smem));
}

template <int D, int kStages>
void decode_with(const GqaParams& p, const SplitKv& split, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(kDecodeHeads + 2 * kStages * kTile) * (D + 8) * sizeof(bf16) +
                      (p.rope.k_new != nullptr ? D * sizeof(float) : 0);
  CUDA_CHECK(cudaFuncSetAttribute(gqa_decode_kernel<D, kStages>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  const int group = p.heads / p.kv_heads;
  dim3 grid(p.batch.num_seqs, p.kv_heads * ceil_div(group, kDecodeHeads), split.splits);
  launch_dependent("gqa_decode_kernel", gqa_decode_kernel<D, kStages>, grid, kDecodeThreads, smem, s, p, split);
}

// ---------------------------------------------------------------- split merge

// One block per (token, head) row: warp 0 lists the splits that saw keys with their weights
// (list_live_splits), then each thread merges 4 output columns over just those splits.
template <bool kVec>
__global__ void combine_splits_kernel(SplitKv split, int rows, int dim, bf16* out) {
  allow_next_kernel();  // before the wait: see dependent_launch.cuh
  wait_for_previous_kernels();
  extern __shared__ float weight[];  // [splits] weights of the live splits, then [splits] their indices
  int* live = reinterpret_cast<int*>(weight + split.splits);
  __shared__ int n_live;
  __shared__ float inv_den;
  const int64_t row = blockIdx.x;
  if (threadIdx.x < 32) {
    float inv = 0.0f;
    const int n = list_live_splits(split, rows, row, weight, live, inv);
    if (threadIdx.x == 0) n_live = n, inv_den = inv;
  }
  __syncthreads();
  const int per_thread = kVec ? 4 : 1;
  for (int d = threadIdx.x * per_thread; d < dim; d += blockDim.x * per_thread) {
    float acc[4] = {};
    merge_live_columns<kVec>(split, rows, row, dim, d, weight, live, n_live, acc);
    for (int j = 0; j < per_thread; ++j) out[row * dim + d + j] = __float2bfloat16(acc[j] * inv_den);
  }
}

}  // namespace

void launch_gqa_prefill(const GqaParams& p, int max_query_len, cudaStream_t s) {
  const int d = max(p.head_dim, p.v_dim);
  if (d <= 64) return prefill_with<64, 64>(p, max_query_len, s);
  if (d <= 128) return prefill_with<128, 128>(p, max_query_len, s);
  if (p.head_dim <= 192 && p.v_dim <= 128) return prefill_with<192, 128>(p, max_query_len, s);
  return prefill_with<256, 256>(p, max_query_len, s);
}

void launch_gqa_decode(const GqaParams& p, const SplitKv& split, cudaStream_t s) {
  const int d = max(p.head_dim, p.v_dim);
  if (d <= 64) return decode_with<64, kDecodeStages>(p, split, s);
  if (d <= 128) return decode_with<128, kDecodeStages>(p, split, s);
  return decode_with<256, kDecodeStages>(p, split, s);
}

void launch_combine_splits(const SplitKv& split, int tokens, int heads, int dim, bf16* out, cudaStream_t s) {
  const int rows = tokens * heads;
  const size_t smem = split.splits * (sizeof(float) + sizeof(int));
  const auto kernel = dim % 4 == 0 ? combine_splits_kernel<true> : combine_splits_kernel<false>;
  launch_dependent("combine_splits_kernel", kernel, rows, 128, {smem, kDecodeChainCarveout}, s, split, rows, dim, out);
}

}  // namespace dsinfer::cuda
