// GQA attention over the paged KV cache.
// Prefill: flash-attention 2 on tensor cores. A block owns 64 query tokens of one sequence and
// one query head; its 4 warps own 16 rows each. K/V tiles of 64 keys are gathered from the cache
// pages into shared memory (double-buffered cp.async), S = Q K^T and O += P V run as mma.sync
// with the online softmax in registers, so no S x S matrix ever exists.
// Decode: one query token per sequence. A block owns (sequence, kv head, split of the context)
// and up to 16 query heads of the kv head's group as the rows of its mma tiles, so each K/V row
// read from memory serves the whole group; splits of long contexts are merged by
// combine_splits_kernel.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kTile = 64;         // query rows and keys per tile
constexpr int kPrefillThreads = 128;
constexpr int kDecodeThreads = 128;
constexpr int kDecodeHeads = kDecodeHeadsPerBlock;  // the 16 rows of an mma tile

// ---------------------------------------------------------------- prefill

template <int D>  // padded head dim, a multiple of 16 >= head_dim and v_dim
__global__ void __launch_bounds__(kPrefillThreads) gqa_prefill_kernel(GqaParams p) {
  constexpr int S = D + 8;  // smem row stride: 16 extra bytes put ldmatrix rows on distinct banks
  const DeviceBatch& b = p.batch;
  const int seq = blockIdx.y, h = blockIdx.z;
  const int tile = gridDim.x - 1 - blockIdx.x;  // the tiles with the most keys start first
  const int q_len = b.query_len[seq], q0 = tile * kTile;
  if (q0 >= q_len) return;
  const int first = b.query_start[seq] + q0, rows = min(kTile, q_len - q0);
  const int kvh = h / (p.heads / p.kv_heads);
  const int64_t k_width = static_cast<int64_t>(p.kv_heads) * p.head_dim, v_width = static_cast<int64_t>(p.kv_heads) * p.v_dim;
  const int key_end = b.positions[first + rows - 1] + 1;  // positions grow within a sequence
  const int n_tiles = ceil_div(key_end, kTile);

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + kTile * S;      // [2][kTile][S]
  bf16* sv = sk + 2 * kTile * S;  // [2][kTile][S]

  load_tile(sq, S, 0, kTile, D / 8, p.head_dim, p.vec, [&](int r) -> const bf16* {
    return r < rows ? p.q + (static_cast<int64_t>(first + r) * p.heads + h) * p.head_dim : nullptr;
  });
  auto load_kv = [&](int j) {
    const int k0 = j * kTile;
    bf16* kt = sk + (j & 1) * kTile * S;
    bf16* vt = sv + (j & 1) * kTile * S;
    load_tile(kt, S, 0, kTile, D / 8, p.head_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < key_end ? p.k_cache + cache_slot(b, seq, k0 + r) * k_width + kvh * p.head_dim : nullptr;
    });
    load_tile(vt, S, 0, kTile, D / 8, p.v_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < key_end ? p.v_cache + cache_slot(b, seq, k0 + r) * v_width + kvh * p.v_dim : nullptr;
    });
    cp_async_commit();
  };
  load_kv(0);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row_a = warp * 16 + lane / 4, row_b = row_a + 8;
  // Rows past the sequence's end borrow the last row's position: finite, and never stored.
  const int pos_a = b.positions[first + min(row_a, rows - 1)];
  const int pos_b = b.positions[first + min(row_b, rows - 1)];
  float o[D / 8][4] = {};
  float m_a = kNegInf, m_b = kNegInf, l_a = 0.0f, l_b = 0.0f;

  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait_all();
    __syncthreads();  // tile j landed everywhere, and every warp is done with tile j - 1's buffer
    if (j + 1 < n_tiles) load_kv(j + 1);
    const bf16* kt = sk + (j & 1) * kTile * S;
    const bf16* vt = sv + (j & 1) * kTile * S;

    float s[8][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, sq + (warp * 16 + lane % 16) * S + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int nt = 0; nt < 8; nt += 2) {
        uint32_t bk[4];
        ldmatrix_x4(bk, kt + (nt * 8 + (lane / 16) * 8 + lane % 8) * S + kk * 16 + ((lane / 8) % 2) * 8);
        mma_bf16(s[nt], a, bk[0], bk[1]);
        mma_bf16(s[nt + 1], a, bk[2], bk[3]);
      }
    }

    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = j * kTile + nt * 8 + 2 * (lane % 4) + (e & 1);
        const bool upper = e < 2;
        const float v = key <= (upper ? pos_a : pos_b) ? s[nt][e] * p.scale_log2 : kNegInf;
        s[nt][e] = v;
        if (upper) mx_a = fmaxf(mx_a, v); else mx_b = fmaxf(mx_b, v);
      }
    // The 4 lanes holding one row are lanes 4r..4r+3.
    for (int off = 1; off < 4; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    const float alpha_a = exp2f(m_a - mx_a), alpha_b = exp2f(m_b - mx_b);
    m_a = mx_a;
    m_b = mx_b;
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - m_a);
      s[nt][1] = exp2f(s[nt][1] - m_a);
      s[nt][2] = exp2f(s[nt][2] - m_b);
      s[nt][3] = exp2f(s[nt][3] - m_b);
      sum_a += s[nt][0] + s[nt][1];
      sum_b += s[nt][2] + s[nt][3];
    }
    l_a = l_a * alpha_a + sum_a;  // this lane's share of the row sum; lanes add up at the end
    l_b = l_b * alpha_b + sum_b;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= alpha_a;
      o[dt][1] *= alpha_a;
      o[dt][2] *= alpha_b;
      o[dt][3] *= alpha_b;
    }

#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      // The accumulator layout of S is the A-operand layout of P: no shuffles needed.
      const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2) {
        uint32_t bv[4];
        ldmatrix_x4_trans(bv, vt + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * S + dt * 8 + (lane / 16) * 8);
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
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = e < 2 ? row_a : row_b, d = dt * 8 + 2 * (lane % 4) + (e & 1);
      if (row < rows && d < p.v_dim)
        p.out[(static_cast<int64_t>(first + row) * p.heads + h) * p.v_dim + d] =
            __float2bfloat16(o[dt][e] * (e < 2 ? inv_a : inv_b));
    }
}

template <int D>
void prefill_with(const GqaParams& p, int max_query_len, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(5 * kTile) * (D + 8) * sizeof(bf16);
  CUDA_CHECK(cudaFuncSetAttribute(gqa_prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dim3 grid(ceil_div(max_query_len, kTile), p.batch.num_seqs, p.heads);
  gqa_prefill_kernel<D><<<grid, kPrefillThreads, smem, s>>>(p);
  CUDA_CHECK_LAUNCH("gqa_prefill_kernel");
}

// ---------------------------------------------------------------- decode

// Rows are the (up to 16) query heads of one kv head's group for the sequence's one token; each
// of the 4 warps takes 16 of every tile's 64 keys with its own online softmax, and the warps'
// states are merged at the end. The products run on tensor cores, so the kernel is bound by
// its K/V reads, like the weights' GEMVs.
template <int D>
__global__ void __launch_bounds__(kDecodeThreads) gqa_decode_kernel(GqaParams p, SplitKv split) {
  constexpr int S = D + 8;
  constexpr int kWarps = kDecodeThreads / 32;
  const DeviceBatch& b = p.batch;
  const int seq = blockIdx.x, group = p.heads / p.kv_heads;
  if (b.query_len[seq] == 0) return;  // a sequence with no token in this step
  const int head_chunks = ceil_div(group, kDecodeHeads);
  const int kvh = blockIdx.y / head_chunks, g0 = (blockIdx.y % head_chunks) * kDecodeHeads;
  const int n_heads = min(kDecodeHeads, group - g0), h0 = kvh * group + g0;
  const int t = b.query_start[seq];
  int k_begin, k_end;
  split_range(split, b.positions[t] + 1, blockIdx.z, k_begin, k_end);
  const int64_t k_width = static_cast<int64_t>(p.kv_heads) * p.head_dim, v_width = static_cast<int64_t>(p.kv_heads) * p.v_dim;
  const int64_t part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + t) * p.heads + h0;

  if (k_begin >= k_end) {  // this split lies past the sequence's end
    for (int i = threadIdx.x; i < n_heads * p.v_dim; i += blockDim.x) split.part_o[part_row * p.v_dim + i] = 0.0f;
    if (threadIdx.x < n_heads) split.part_lse[part_row + threadIdx.x] = kNegInf;
    return;
  }

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);  // [16][S]
  bf16* sk = sq + kDecodeHeads * S;          // [2][kTile][S], double-buffered
  bf16* sv = sk + 2 * kTile * S;             // [2][kTile][S]
  load_tile(sq, S, 0, kDecodeHeads, D / 8, p.head_dim, p.vec, [&](int r) -> const bf16* {
    return r < n_heads ? p.q + (static_cast<int64_t>(t) * p.heads + h0 + r) * p.head_dim : nullptr;
  });
  auto load_kv = [&](int k0, int buf) {
    load_tile(sk + buf * kTile * S, S, 0, kTile, D / 8, p.head_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < k_end ? p.k_cache + cache_slot(b, seq, k0 + r) * k_width + kvh * p.head_dim : nullptr;
    });
    load_tile(sv + buf * kTile * S, S, 0, kTile, D / 8, p.v_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < k_end ? p.v_cache + cache_slot(b, seq, k0 + r) * v_width + kvh * p.v_dim : nullptr;
    });
    cp_async_commit();
  };
  load_kv(k_begin, 0);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float o[D / 8][4] = {};
  float m_a = kNegInf, m_b = kNegInf, l_a = 0.0f, l_b = 0.0f;
  for (int k0 = k_begin, it = 0; k0 < k_end; k0 += kTile, ++it) {
    cp_async_wait_all();
    __syncthreads();  // tile `it` landed everywhere, and every warp is done with tile it - 1
    if (k0 + kTile < k_end) load_kv(k0 + kTile, (it + 1) & 1);  // streams in while this tile is used
    const bf16* kt = sk + (it & 1) * kTile * S + warp * 16 * S;  // this warp's 16 keys
    const bf16* vt = sv + (it & 1) * kTile * S + warp * 16 * S;

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
#pragma unroll
    for (int dt = 0; dt < D / 8; dt += 2) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        o[dt + j][0] *= alpha_a;
        o[dt + j][1] *= alpha_a;
        o[dt + j][2] *= alpha_b;
        o[dt + j][3] *= alpha_b;
      }
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
  float* w_o = w_sum + kWarps * kDecodeHeads;     // [kWarps][16][D]
  const int row_a = lane / 4, row_b = row_a + 8;
  if (lane % 4 == 0) {
    w_max[warp * kDecodeHeads + row_a] = m_a;
    w_max[warp * kDecodeHeads + row_b] = m_b;
    w_sum[warp * kDecodeHeads + row_a] = l_a;
    w_sum[warp * kDecodeHeads + row_b] = l_b;
  }
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      w_o[(warp * kDecodeHeads + (e < 2 ? row_a : row_b)) * D + dt * 8 + 2 * (lane % 4) + (e & 1)] = o[dt][e];
  __syncthreads();
  for (int i = threadIdx.x; i < n_heads * p.v_dim; i += blockDim.x) {
    const int r = i / p.v_dim, d = i % p.v_dim;
    float mx = kNegInf;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, w_max[w * kDecodeHeads + r]);
    float num = 0.0f, den = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float scale = exp2f(w_max[w * kDecodeHeads + r] - mx);  // 0 for a warp that saw no key
      num += scale * w_o[(w * kDecodeHeads + r) * D + d];
      den += scale * w_sum[w * kDecodeHeads + r];
    }
    if (split.splits == 1) {
      p.out[(static_cast<int64_t>(t) * p.heads + h0 + r) * p.v_dim + d] = __float2bfloat16(num / den);
    } else {
      split.part_o[(part_row + r) * p.v_dim + d] = num / den;
      if (d == 0) split.part_lse[part_row + r] = mx + log2f(den);
    }
  }
}

template <int D>
void decode_with(const GqaParams& p, const SplitKv& split, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(kDecodeHeads + 4 * kTile) * (D + 8) * sizeof(bf16);
  CUDA_CHECK(cudaFuncSetAttribute(gqa_decode_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const int group = p.heads / p.kv_heads;
  dim3 grid(p.batch.num_seqs, p.kv_heads * ceil_div(group, kDecodeHeads), split.splits);
  gqa_decode_kernel<D><<<grid, kDecodeThreads, smem, s>>>(p, split);
  CUDA_CHECK_LAUNCH("gqa_decode_kernel");
}

// ---------------------------------------------------------------- split merge

__global__ void combine_splits_kernel(SplitKv split, int rows, int dim, bf16* out) {
  const int64_t row = blockIdx.x;
  float mx = kNegInf;
  for (int z = 0; z < split.splits; ++z) mx = fmaxf(mx, split.part_lse[z * static_cast<int64_t>(rows) + row]);
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (int z = 0; z < split.splits; ++z) {
      const int64_t r = z * static_cast<int64_t>(rows) + row;
      const float w = exp2f(split.part_lse[r] - mx);  // 0 for empty splits
      num += w * split.part_o[r * dim + d];
      den += w;
    }
    out[row * dim + d] = __float2bfloat16(num / den);
  }
}

}  // namespace

void launch_gqa_prefill(const GqaParams& p, int max_query_len, cudaStream_t s) {
  const int d = max(p.head_dim, p.v_dim);
  if (d <= 64) return prefill_with<64>(p, max_query_len, s);
  if (d <= 128) return prefill_with<128>(p, max_query_len, s);
  return prefill_with<256>(p, max_query_len, s);
}

void launch_gqa_decode(const GqaParams& p, const SplitKv& split, cudaStream_t s) {
  const int d = max(p.head_dim, p.v_dim);
  if (d <= 64) return decode_with<64>(p, split, s);
  if (d <= 128) return decode_with<128>(p, split, s);
  return decode_with<256>(p, split, s);
}

void launch_combine_splits(const SplitKv& split, int tokens, int heads, int dim, bf16* out, cudaStream_t s) {
  const int rows = tokens * heads;
  combine_splits_kernel<<<rows, 128, 0, s>>>(split, rows, dim, out);
  CUDA_CHECK_LAUNCH("combine_splits_kernel");
}

}  // namespace dsinfer::cuda
