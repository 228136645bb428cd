// Absorbed MLA attention over the latent cache (the FlashMLA idea): the rows of one block are
// the heads of one query token, so every 64-token tile of cache rows [latent | rope] read into
// shared memory serves all of them. Scores S = [q_lat | q_rope] . [c | k_rope]^T and the output
// O = softmax(S) . c both run on tensor cores (mma.sync); the latent c is both key and value.
// 8 warps: RG row groups of 16 heads times 8 / RG column groups that split the keys of S and
// the latent columns of O, so a warp holds at most 16 x 128 output floats. An FP8 cache
// (--kv-dtype fp8) is dequantized into the same bf16 tile as it loads.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/latent_fp8.cuh"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kKeys = 64;  // cache rows per tile
constexpr int kWarps = 8;

struct MlaLayout {
  int lora_pad, rope_pad, stride;  // columns of q and cache tiles: [lora_pad | rope_pad], row stride
  int rows;                        // heads per block (16 * RG)
  // Byte offsets in dynamic shared memory.
  size_t q, c, s, p, stats, total;
};

__host__ __device__ inline MlaLayout mla_layout(int lora, int rope, int rows) {
  MlaLayout l;
  l.lora_pad = (lora + 15) / 16 * 16;
  l.rope_pad = (rope + 15) / 16 * 16;
  l.stride = l.lora_pad + l.rope_pad + 8;  // +16 bytes: conflict-free ldmatrix rows
  l.rows = rows;
  l.q = 0;
  l.c = l.q + static_cast<size_t>(rows) * l.stride * sizeof(bf16);
  l.s = l.c + static_cast<size_t>(kKeys) * l.stride * sizeof(bf16);
  l.p = l.s + static_cast<size_t>(rows) * (kKeys + 4) * sizeof(float);
  l.stats = l.p + static_cast<size_t>(rows) * (kKeys + 8) * sizeof(bf16);
  l.total = l.stats + 3 * static_cast<size_t>(rows) * sizeof(float);
  return l;
}

// Cache rows [k0, min(k0 + 64, k_end)) of an FP8 cache (p.cache_fp8) into the bf16 tile, zeros
// past k_end and in the padding columns. The latent part 16 values a thread (8 loads in flight
// before any is converted) where lora % 16 == 0, else a value a thread; the bf16 rope part as
// load_tile copies it.
__device__ __forceinline__ void load_fp8_tile(bf16* tile, const MlaLayout& L, const MlaParams& p, const DeviceBatch& b,
                                              int seq, int k0, int k_end) {
  const LatentFp8Layout& l = p.fp8;
  auto row_of = [&](int r) -> const uint8_t* {
    return k0 + r < k_end ? p.cache_fp8 + static_cast<int64_t>(cache_slot(b, seq, k0 + r)) * l.row_bytes : nullptr;
  };
  constexpr int kBatch = 8;
  if (l.lora % 16 == 0) {
    const int chunks = L.lora_pad / 16, total = kKeys * chunks;
    for (int i0 = threadIdx.x; i0 < total; i0 += kBatch * blockDim.x) {
      uint4 raw[kBatch];
      float scale[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = i0 + u * blockDim.x, c = i % chunks;
        const uint8_t* row = i < total ? row_of(i / chunks) : nullptr;
        raw[u] = row != nullptr ? *reinterpret_cast<const uint4*>(row + c * 16) : make_uint4(0, 0, 0, 0);
        scale[u] = row != nullptr ? latent_scale(row, l, c * 16 / kLatentFp8Group) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = i0 + u * blockDim.x;
        if (i >= total) break;
        uint4 lo, hi;
        dequantize16(raw[u], scale[u], lo, hi);
        uint4* dst = reinterpret_cast<uint4*>(tile + (i / chunks) * L.stride + (i % chunks) * 16);
        dst[0] = lo;
        dst[1] = hi;
      }
    }
  } else {
    for (int i = threadIdx.x; i < kKeys * L.lora_pad; i += blockDim.x) {
      const int r = i / L.lora_pad, c = i % L.lora_pad;
      const uint8_t* row = row_of(r);
      tile[r * L.stride + c] = __float2bfloat16(row != nullptr && c < l.lora ? latent_value(row, l, c) : 0.0f);
    }
  }
  const bool rope_vec = l.rope_offset % 16 == 0 && p.rope % 8 == 0;
  load_tile(tile, L.stride, L.lora_pad, kKeys, L.rope_pad / 8, p.rope, rope_vec, [&](int r) -> const bf16* {
    const uint8_t* row = row_of(r);
    return row != nullptr ? reinterpret_cast<const bf16*>(row + l.rope_offset) : nullptr;
  });
}

template <int RG>
__global__ void __launch_bounds__(kWarps * 32, 1) mla_kernel(MlaParams p, SplitKv split) {
  constexpr int CG = kWarps / RG;             // column groups
  constexpr int M = 16 * RG;                  // heads per block
  constexpr int NT = kKeys / CG / 8;          // n8 key tiles of S per warp
  constexpr int MAX_DT = kMlaMaxLora / 8 / CG;  // 8-wide latent column tiles of O per warp (even)
  const DeviceBatch& b = p.batch;
  const MlaLayout L = mla_layout(p.lora, p.rope, M);
  const int t = b.num_tokens - 1 - blockIdx.x;  // later tokens have more keys: start them first
  const int h0 = blockIdx.y * M;
  const int seq = b.token_seq[t];
  int k_begin, k_end;
  split_range(split, b.positions[t] + 1, blockIdx.z, k_begin, k_end);
  const int64_t part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + t) * p.heads;
  const int n_heads = min(M, p.heads - h0);

  if (k_begin >= k_end) return write_empty_split(split, part_row + h0, n_heads);

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem + L.q);
  bf16* sc = reinterpret_cast<bf16*>(smem + L.c);
  float* ss = reinterpret_cast<float*>(smem + L.s);
  bf16* sp = reinterpret_cast<bf16*>(smem + L.p);
  float* row_max = reinterpret_cast<float*>(smem + L.stats);
  float* row_sum = row_max + M;
  float* row_alpha = row_sum + M;
  constexpr int kSs = kKeys + 4, kSp = kKeys + 8;

  auto q_row = [&](const bf16* base, int width, int r) -> const bf16* {
    return r < n_heads ? base + (static_cast<int64_t>(t) * p.heads + h0 + r) * width : nullptr;
  };
  load_tile(sq, L.stride, 0, M, L.lora_pad / 8, p.lora, p.vec, [&](int r) { return q_row(p.q_lat, p.lora, r); });
  load_tile(sq, L.stride, L.lora_pad, M, L.rope_pad / 8, p.rope, p.vec, [&](int r) { return q_row(p.q_rope, p.rope, r); });
  cp_async_commit();
  for (int r = threadIdx.x; r < M; r += blockDim.x) {
    row_max[r] = kNegInf;
    row_sum[r] = 0.0f;
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rg = warp % RG, cg = warp / RG;
  const int r0 = rg * 16;
  const int dt_count = L.lora_pad / 8;
  const int dt_per = (dt_count + 2 * CG - 1) / (2 * CG) * 2;  // even: B tiles are loaded in pairs
  const int dt_begin = cg * dt_per, dt_end = min(dt_count, dt_begin + dt_per);
  const int k_steps = (L.lora_pad + L.rope_pad) / 16;
  float o[MAX_DT][4] = {};

  for (int k0 = k_begin; k0 < k_end; k0 += kKeys) {
    if (p.cache_fp8 != nullptr) {
      load_fp8_tile(sc, L, p, b, seq, k0, k_end);
    } else {
      auto cache_row = [&](int r) -> const bf16* {
        return k0 + r < k_end ? p.cache + static_cast<int64_t>(cache_slot(b, seq, k0 + r)) * p.cache_width : nullptr;
      };
      load_tile(sc, L.stride, 0, kKeys, L.lora_pad / 8, p.lora, p.vec, cache_row);
      load_tile(sc, L.stride, L.lora_pad, kKeys, L.rope_pad / 8, p.rope, p.vec, [&](int r) -> const bf16* {
        const bf16* row = cache_row(r);
        return row ? row + p.lora : nullptr;
      });
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // S for rows [r0, r0 + 16) and keys [cg * 8 NT, (cg + 1) * 8 NT).
    float s[NT][4] = {};
    for (int kk = 0; kk < k_steps; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, sq + (r0 + lane % 16) * L.stride + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        uint32_t bk[2];
        ldmatrix_x2(bk, sc + ((cg * NT + nt) * 8 + lane % 8) * L.stride + kk * 16 + ((lane / 8) % 2) * 8);
        mma_bf16(s[nt], a, bk[0], bk[1]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = r0 + lane / 4 + (e < 2 ? 0 : 8), key = (cg * NT + nt) * 8 + 2 * (lane % 4) + (e & 1);
        ss[row * kSs + key] = k0 + key < k_end ? s[nt][e] * p.scale_log2 : kNegInf;
      }
    __syncthreads();

    // Online softmax, one warp per row; every tile has a live key, so maxima stay finite.
    for (int r = warp; r < M; r += kWarps) {
      const float v0 = ss[r * kSs + lane], v1 = ss[r * kSs + lane + 32];
      const float m_old = row_max[r], m_new = fmaxf(m_old, warp_max(fmaxf(v0, v1)));
      const float p0 = exp2f(v0 - m_new), p1 = exp2f(v1 - m_new);
      const float sum = warp_sum(p0 + p1);
      sp[r * kSp + lane] = __float2bfloat16(p0);
      sp[r * kSp + lane + 32] = __float2bfloat16(p1);
      if (lane == 0) {
        const float alpha = exp2f(m_old - m_new);
        row_alpha[r] = alpha;
        row_sum[r] = row_sum[r] * alpha + sum;
        row_max[r] = m_new;
      }
    }
    __syncthreads();

    // O[rows, my latent columns] = O * alpha + P . c
    const float alpha_a = row_alpha[r0 + lane / 4], alpha_b = row_alpha[r0 + lane / 4 + 8];
    scale_rows(o, alpha_a, alpha_b);
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, sp + (r0 + lane % 16) * kSp + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int i = 0; i < MAX_DT; i += 2) {
        const int dt = dt_begin + i;
        if (dt < dt_end) {
          uint32_t bv[4];
          ldmatrix_x4_trans(bv, sc + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * L.stride + dt * 8 + (lane / 16) * 8);
          mma_bf16(o[i], a, bv[0], bv[1]);
          mma_bf16(o[i + 1], a, bv[2], bv[3]);
        }
      }
    }
    __syncthreads();  // the next tile overwrites sc, ss and sp
  }

#pragma unroll
  for (int i = 0; i < MAX_DT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = r0 + lane / 4 + (e < 2 ? 0 : 8);
      const int d = (dt_begin + i) * 8 + 2 * (lane % 4) + (e & 1);
      if (row >= n_heads || dt_begin + i >= dt_end || d >= p.lora) continue;
      const float v = o[i][e] / row_sum[row];
      if (split.splits == 1)
        p.out[(static_cast<int64_t>(t) * p.heads + h0 + row) * p.lora + d] = __float2bfloat16(v);
      else
        split.part_o[(part_row + h0 + row) * p.lora + d] = v;
    }
  if (split.splits > 1)
    for (int r = threadIdx.x; r < n_heads; r += blockDim.x)
      split.part_lse[part_row + h0 + r] = row_max[r] + log2f(row_sum[r]);
}

template <int RG>
void mla_with(const MlaParams& p, const SplitKv& split, cudaStream_t s) {
  const MlaLayout L = mla_layout(p.lora, p.rope, 16 * RG);
  CUDA_CHECK(cudaFuncSetAttribute(mla_kernel<RG>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(L.total)));
  dim3 grid(p.batch.num_tokens, ceil_div(p.heads, 16 * RG), split.splits);
  mla_kernel<RG><<<grid, kWarps * 32, L.total, s>>>(p, split);
  CUDA_CHECK_LAUNCH("mla_kernel");
}

}  // namespace

int mla_heads_per_block(int heads) { return heads >= 64 ? 64 : heads >= 32 ? 32 : 16; }

void launch_mla(const MlaParams& p, const SplitKv& split, cudaStream_t s) {
  switch (mla_heads_per_block(p.heads)) {
    case 64: return mla_with<4>(p, split, s);
    case 32: return mla_with<2>(p, split, s);
    default: return mla_with<1>(p, split, s);
  }
}

}  // namespace dsinfer::cuda
