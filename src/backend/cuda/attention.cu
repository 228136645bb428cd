// GQA attention over the paged KV cache.
// Prefill: flash-attention 2 on tensor cores. A block owns 64 query tokens of one sequence and
// one query head; its 4 warps own 16 rows each. K/V tiles of 64 keys are gathered from the cache
// pages into shared memory (double-buffered cp.async), S = Q K^T and O += P V run as mma.sync
// with the online softmax in registers, so no S x S matrix ever exists.
// Decode: one query token per sequence. A block owns (sequence, kv head, split of the context)
// and up to 8 query heads of the kv head's group, so each K/V row read from memory serves the
// whole group; splits of long contexts are merged by combine_splits_kernel.
#include <cfloat>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kTile = 64;         // query rows and keys per tile
constexpr int kPrefillThreads = 128;
constexpr int kDecodeThreads = 128;
constexpr int kDecodeHeads = 8;   // query heads per decode block

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

__device__ __forceinline__ void bf16x8_to_f32(const bf16* src, float (&out)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  const __nv_bfloat162* v = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(v[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// DC: 16-byte chunks per row (a power of two, 8 * DC >= head_dim, v_dim). DC lanes share a key
// when scoring; for P V thread (c, ks) owns dims [8c, 8c + 8) of every key ks (mod KS).
template <int DC>
__global__ void __launch_bounds__(kDecodeThreads) gqa_decode_kernel(GqaParams p, SplitKv split) {
  constexpr int D8 = DC * 8, KS = kDecodeThreads / DC;
  const DeviceBatch& b = p.batch;
  const int seq = blockIdx.x, group = p.heads / p.kv_heads;
  if (b.query_len[seq] == 0) return;  // a sequence with no token in this step
  const int head_chunks = ceil_div(group, kDecodeHeads);
  const int kvh = blockIdx.y / head_chunks, g0 = (blockIdx.y % head_chunks) * kDecodeHeads;
  const int n_heads = min(kDecodeHeads, group - g0), h0 = kvh * group + g0;
  const int t = b.query_start[seq];
  const int k_begin = blockIdx.z * split.chunk, k_end = min(b.positions[t] + 1, k_begin + split.chunk);
  const int64_t k_width = static_cast<int64_t>(p.kv_heads) * p.head_dim, v_width = static_cast<int64_t>(p.kv_heads) * p.v_dim;
  const int64_t part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + t) * p.heads + h0;

  if (k_begin >= k_end) {  // this split lies past the sequence's end
    for (int i = threadIdx.x; i < n_heads * p.v_dim; i += blockDim.x) split.part_o[part_row * p.v_dim + i] = 0.0f;
    if (threadIdx.x < n_heads) split.part_lse[part_row + threadIdx.x] = kNegInf;
    return;
  }

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sk = reinterpret_cast<bf16*>(smem);  // [2][kTile][D8], double-buffered
  bf16* sv = sk + 2 * kTile * D8;            // [2][kTile][D8]
  float* sp = reinterpret_cast<float*>(sv + 2 * kTile * D8);  // [kDecodeHeads][kTile] scores -> probabilities
  float* sm = sp + kDecodeHeads * kTile;                      // running max (log2 units)
  float* sl = sm + kDecodeHeads;                              // running sum
  float* salpha = sl + kDecodeHeads;                          // this tile's rescale factor

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int c = tid % DC, ks = tid / DC;
  float q[kDecodeHeads][8];
#pragma unroll
  for (int g = 0; g < kDecodeHeads; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = c * 8 + e;
      q[g][e] = g < n_heads && d < p.head_dim
                    ? __bfloat162float(p.q[(static_cast<int64_t>(t) * p.heads + h0 + g) * p.head_dim + d]) * p.scale_log2
                    : 0.0f;
    }
  if (tid < kDecodeHeads) {
    sm[tid] = kNegInf;
    sl[tid] = 0.0f;
  }
  float acc[kDecodeHeads][8] = {};

  auto load_kv = [&](int k0, int buf) {
    load_tile(sk + buf * kTile * D8, D8, 0, kTile, DC, p.head_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < k_end ? p.k_cache + cache_slot(b, seq, k0 + r) * k_width + kvh * p.head_dim : nullptr;
    });
    load_tile(sv + buf * kTile * D8, D8, 0, kTile, DC, p.v_dim, p.vec, [&](int r) -> const bf16* {
      return k0 + r < k_end ? p.v_cache + cache_slot(b, seq, k0 + r) * v_width + kvh * p.v_dim : nullptr;
    });
    cp_async_commit();
  };
  load_kv(k_begin, 0);
  for (int k0 = k_begin, it = 0; k0 < k_end; k0 += kTile, ++it) {
    cp_async_wait_all();
    __syncthreads();  // tile `it` landed everywhere, and every thread is done with tile it - 1
    if (k0 + kTile < k_end) load_kv(k0 + kTile, (it + 1) & 1);  // streams in while this tile is used
    const bf16* kt = sk + (it & 1) * kTile * D8;
    const bf16* vt = sv + (it & 1) * kTile * D8;

    for (int key = ks; key < kTile; key += KS) {  // same trip count on every lane of a warp
      float kf[8];
      bf16x8_to_f32(kt + key * D8 + c * 8, kf);
      float sc[kDecodeHeads];
#pragma unroll
      for (int g = 0; g < kDecodeHeads; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot += q[g][e] * kf[e];
#pragma unroll
        for (int off = 1; off < DC; off <<= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        sc[g] = dot;
      }
      if (c == 0)
#pragma unroll
        for (int g = 0; g < kDecodeHeads; ++g) sp[g * kTile + key] = k0 + key < k_end ? sc[g] : kNegInf;
    }
    __syncthreads();

    for (int g = warp; g < kDecodeHeads; g += kDecodeThreads / 32) {
      const float v0 = sp[g * kTile + lane], v1 = sp[g * kTile + lane + 32];
      const float m_old = sm[g], m_new = fmaxf(m_old, warp_max(fmaxf(v0, v1)));
      const float p0 = exp2f(v0 - m_new), p1 = exp2f(v1 - m_new);
      const float sum = warp_sum(p0 + p1);
      sp[g * kTile + lane] = p0;
      sp[g * kTile + lane + 32] = p1;
      if (lane == 0) {
        const float alpha = exp2f(m_old - m_new);
        salpha[g] = alpha;
        sl[g] = sl[g] * alpha + sum;
        sm[g] = m_new;
      }
    }
    __syncthreads();

#pragma unroll
    for (int g = 0; g < kDecodeHeads; ++g)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] *= salpha[g];
    for (int key = ks; key < kTile; key += KS) {  // keys past k_end have p = 0 and zero rows
      float vf[8];
      bf16x8_to_f32(vt + key * D8 + c * 8, vf);
#pragma unroll
      for (int g = 0; g < kDecodeHeads; ++g) {
        const float pg = sp[g * kTile + key];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] += pg * vf[e];
      }
    }
  }
  __syncthreads();  // the reduction below reuses the tiles' memory

  // Sum the key subsets: lanes of one warp with the same c by shuffles, then the warps in smem
  // (reusing the K/V tiles, which are no longer read).
#pragma unroll
  for (int g = 0; g < kDecodeHeads; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e)
#pragma unroll
      for (int off = DC; off < 32; off <<= 1) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], off);
  constexpr int kWarps = kDecodeThreads / 32;
  float* red = reinterpret_cast<float*>(smem);  // [kWarps][kDecodeHeads][D8]
  if (lane < DC)
#pragma unroll
    for (int g = 0; g < kDecodeHeads; ++g)
#pragma unroll
      for (int e = 0; e < 8; ++e) red[(warp * kDecodeHeads + g) * D8 + c * 8 + e] = acc[g][e];
  __syncthreads();
  for (int i = tid; i < n_heads * p.v_dim; i += blockDim.x) {
    const int g = i / p.v_dim, d = i % p.v_dim;
    float o = 0.0f;
    for (int w = 0; w < kWarps; ++w) o += red[(w * kDecodeHeads + g) * D8 + d];
    o /= sl[g];
    if (split.splits == 1) {
      p.out[(static_cast<int64_t>(t) * p.heads + h0 + g) * p.v_dim + d] = __float2bfloat16(o);
    } else {
      split.part_o[(part_row + g) * p.v_dim + d] = o;
      if (d == 0) split.part_lse[part_row + g] = sm[g] + log2f(sl[g]);
    }
  }
}

template <int DC>
void decode_with(const GqaParams& p, const SplitKv& split, cudaStream_t s) {
  const size_t smem = 4 * kTile * DC * 8 * sizeof(bf16) + (kDecodeHeads * kTile + 3 * kDecodeHeads) * sizeof(float);
  CUDA_CHECK(cudaFuncSetAttribute(gqa_decode_kernel<DC>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const int group = p.heads / p.kv_heads;
  dim3 grid(p.batch.num_seqs, p.kv_heads * ceil_div(group, kDecodeHeads), split.splits);
  gqa_decode_kernel<DC><<<grid, kDecodeThreads, smem, s>>>(p, split);
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
  const int chunks = ceil_div(max(p.head_dim, p.v_dim), 8);
  if (chunks <= 1) return decode_with<1>(p, split, s);
  if (chunks <= 2) return decode_with<2>(p, split, s);
  if (chunks <= 4) return decode_with<4>(p, split, s);
  if (chunks <= 8) return decode_with<8>(p, split, s);
  if (chunks <= 16) return decode_with<16>(p, split, s);
  return decode_with<32>(p, split, s);
}

void launch_combine_splits(const SplitKv& split, int tokens, int heads, int dim, bf16* out, cudaStream_t s) {
  const int rows = tokens * heads;
  combine_splits_kernel<<<rows, 128, 0, s>>>(split, rows, dim, out);
  CUDA_CHECK_LAUNCH("combine_splits_kernel");
}

}  // namespace dsinfer::cuda
