// RMSNorm and rotary embeddings on bf16 activations, computed in float32.
#include <algorithm>
#include <initializer_list>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_rope_cache.cuh"
#include "backend/cuda/rotary.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kNormThreads = 256;

// Eight bf16 values as one 16-byte word: the vector paths move rows in these.
struct Pack8 {
  float v[8];
};

__device__ __forceinline__ Pack8 unpack8(const uint4& u) {
  Pack8 p;
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    p.v[2 * i] = f.x;
    p.v[2 * i + 1] = f.y;
  }
  return p;
}

__device__ __forceinline__ uint4 pack8(const Pack8& p) {
  uint4 u;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(p.v[2 * i], p.v[2 * i + 1]);
  return u;
}

// Weight elements [i, i + 8) of a norm's weight (bf16 in one load, other dtypes one by one).
__device__ __forceinline__ Pack8 weight8(const DeviceWeight& w, int64_t i) {
  if (w.dtype == DType::BF16) return unpack8(*reinterpret_cast<const uint4*>(static_cast<const bf16*>(w.data) + i));
  Pack8 p;
#pragma unroll
  for (int j = 0; j < 8; ++j) p.v[j] = weight_at(w, 0, i + j);
  return p;
}

// One block per row: with `add`, x += y first (rounded to bf16, as a bf16 residual stream is);
// then out = rmsnorm(x) * w. Rows move as 16-byte words when `vec` (h % 8 == 0, aligned), so a
// row of a few thousand values takes one or two loads per thread rather than a dozen
// dependent ones. Each thread re-reads only the words it wrote, so x and out may alias
// without `add`, and the add needs no barrier before the second pass.
template <bool kAdd, bool kVec>
__global__ void __launch_bounds__(kNormThreads) norm_kernel(bf16* x, const bf16* y, DeviceWeight w, float eps,
                                                            int64_t h, bf16* out) {
  dependent_kernel_start();
  bf16* xr = x + blockIdx.x * h;
  const bf16* yr = kAdd ? y + blockIdx.x * h : nullptr;
  bf16* outr = out + blockIdx.x * h;
  float ss = 0.0f;
  if constexpr (kVec) {
    uint4* x4 = reinterpret_cast<uint4*>(xr);
    for (int64_t c = threadIdx.x; c < h / 8; c += blockDim.x) {
      Pack8 v = unpack8(x4[c]);
      if constexpr (kAdd) {
        const Pack8 d = unpack8(reinterpret_cast<const uint4*>(yr)[c]);
#pragma unroll
        for (int j = 0; j < 8; ++j) v.v[j] += d.v[j];
        const uint4 rounded = pack8(v);
        x4[c] = rounded;
        v = unpack8(rounded);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += v.v[j] * v.v[j];
    }
  } else {
    for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
      float v = __bfloat162float(xr[i]);
      if constexpr (kAdd) {
        const bf16 r = __float2bfloat16(v + __bfloat162float(yr[i]));
        xr[i] = r;
        v = __bfloat162float(r);
      }
      ss += v * v;
    }
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(h) + eps);
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x; c < h / 8; c += blockDim.x) {
      Pack8 v = unpack8(reinterpret_cast<const uint4*>(xr)[c]);
      const Pack8 g = weight8(w, 8 * c);
#pragma unroll
      for (int j = 0; j < 8; ++j) v.v[j] = g.v[j] * (v.v[j] * inv);
      reinterpret_cast<uint4*>(outr)[c] = pack8(v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
      outr[i] = __float2bfloat16(weight_at(w, 0, i) * (__bfloat162float(xr[i]) * inv));
  }
}

// The same for rows of at most kNormWordThreads 16-byte words, each thread holding one word of
// the row in registers from load to store: the norm's weight word is loaded before the dependent
// wait (no kernel writes weights), and the row is not read twice. A decode step's norm is a
// latency chain between two products; this one is a load, a block sum and a store after the wait.
constexpr int kNormWordThreads = 1024;

template <bool kAdd>
__global__ void __launch_bounds__(kNormWordThreads) norm_word_kernel(bf16* x, const bf16* y, DeviceWeight w, float eps,
                                                                     int64_t h, bf16* out) {
  const int64_t words = h / 8, c = threadIdx.x, at = blockIdx.x * words + c;
  const bool live = c < words;
  Pack8 g = {};
  if (live) g = weight8(w, 8 * c);
  dependent_kernel_start();
  Pack8 v = {};
  if (live) {
    v = unpack8(reinterpret_cast<const uint4*>(x)[at]);
    if constexpr (kAdd) {
      const Pack8 d = unpack8(reinterpret_cast<const uint4*>(y)[at]);
#pragma unroll
      for (int j = 0; j < 8; ++j) v.v[j] += d.v[j];
      const uint4 rounded = pack8(v);
      reinterpret_cast<uint4*>(x)[at] = rounded;
      v = unpack8(rounded);
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) ss += v.v[j] * v.v[j];
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(h) + eps);
  if (!live) return;
#pragma unroll
  for (int j = 0; j < 8; ++j) v.v[j] = g.v[j] * (v.v[j] * inv);
  reinterpret_cast<uint4*>(out)[at] = pack8(v);
}

bool rows_vectorizable(int64_t h, std::initializer_list<const void*> ptrs, const DeviceWeight& w) {
  if (h % 8 != 0) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return w.dtype != DType::BF16 || aligned16(w.data);
}

template <bool kAdd>
void launch_norm(bf16* x, const bf16* y, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out,
                 cudaStream_t s) {
  if (rows == 0) return;
  const unsigned grid = static_cast<unsigned>(rows);
  const bool vec = rows_vectorizable(h, {x, y, out}, w);
  if (vec && h / 8 <= kNormWordThreads) {
    const int threads = static_cast<int>(ceil_div(h / 8, int64_t{32}) * 32);
    launch_dependent("norm_word_kernel", norm_word_kernel<kAdd>, grid, threads, 0, s, x, y, w, eps, h, out);
  } else if (vec) {
    launch_dependent("norm_kernel", norm_kernel<kAdd, true>, grid, kNormThreads, 0, s, x, y, w, eps, h, out);
  } else {
    launch_dependent("norm_kernel", norm_kernel<kAdd, false>, grid, kNormThreads, 0, s, x, y, w, eps, h, out);
  }
}

// One block per token: cos and sin of its position once in shared memory, then every head.
// As transformers: angle = float(pos) * inv_freq in float32, cos/sin scaled by attention_factor.
__global__ void rope_kernel(DeviceBatch b, bf16* x, int heads, int64_t stride, int offset, int rot_dim,
                            const float* inv_freq, float attention_factor, bool neox) {
  dependent_kernel_start();
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  const int t = blockIdx.x, half = rot_dim / 2;
  rope_table(cs, half, static_cast<float>(b.positions[t]), inv_freq, attention_factor);
  __syncthreads();
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    bf16* v = x + (static_cast<int64_t>(t) * heads + h) * stride + offset;
    rotate_pair(v, v, i, half, cs, neox);
  }
}

// One block per token: cos and sin once, then every rotated pair of q and k; k's rotated pairs
// and all of v also go straight to the token's cache rows, so GQA's rope and cache writes are
// one launch instead of four.
__global__ void rope_cache_kernel(DeviceBatch b, RopeCacheParams p) {
  dependent_kernel_start();
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  const int t = blockIdx.x, half = p.d / 2;
  rope_table(cs, half, static_cast<float>(b.positions[t]), p.inv_freq, p.attention_factor);
  __syncthreads();
  const int64_t slot = b.slots[t];
  for (int j = threadIdx.x; j < (p.hq + p.hk) * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    const bool is_k = h >= p.hq;
    const int hh = is_k ? h - p.hq : h;
    bf16* row =
        is_k ? p.k + (static_cast<int64_t>(t) * p.hk + hh) * p.d : p.q + (static_cast<int64_t>(t) * p.hq + hh) * p.d;
    rotate_pair(row, row, i, half, cs, p.neox);
    if (is_k && slot >= 0) {
      const int ia = p.neox ? i : 2 * i, ib = p.neox ? i + half : 2 * i + 1;
      bf16* cache_row = p.k_cache + (slot * p.hk + hh) * p.d;
      cache_row[ia] = row[ia];
      cache_row[ib] = row[ib];
    }
  }
  if (slot < 0) return;
  const int64_t width = static_cast<int64_t>(p.hk) * p.dv;
  for (int64_t e = threadIdx.x; e < width; e += blockDim.x) p.v_cache[slot * width + e] = p.v[t * width + e];
}

// MLA: q's nope part copied and its rope part rotated into their own tensors; the cache row at the
// token's slot gets the latent's rmsnorm and the rotated key part. Replaces two ropes, a norm, a
// cache write and four column copies. A token's work is spread over blocks, a thread per value
// or pair (one block walking a decode token's ~2600 values of q took ~11 us): block (t, 0)
// writes token t's cache row, blocks (t, 1..) take its q.
__global__ void __launch_bounds__(kNormThreads) mla_rope_cache_kernel(DeviceBatch b, MlaRopeCacheParams p) {
  dependent_kernel_start();
  const int t = blockIdx.x;
  if (blockIdx.y > 0) {
    const int j = (blockIdx.y - 1) * kNormThreads + threadIdx.x;
    if (j < p.heads * mla_query_values_per_head(p)) mla_query_value(b, p, t, j);
    return;
  }
  mla_cache_row(b, p, t);
}

}  // namespace

void launch_rmsnorm(const bf16* x, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out,
                    cudaStream_t s) {
  launch_norm<false>(const_cast<bf16*>(x), nullptr, w, eps, rows, h, out, s);  // x is only read
}

void launch_add_rmsnorm(bf16* x, const bf16* y, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out,
                        cudaStream_t s) {
  launch_norm<true>(x, y, w, eps, rows, h, out, s);
}

void launch_rope(const DeviceBatch& b, bf16* x, int heads, int64_t head_stride, int offset, int rot_dim,
                 const float* inv_freq, float attention_factor, RopeStyle style, cudaStream_t s) {
  if (b.num_tokens == 0) return;
  const size_t smem = static_cast<size_t>(rot_dim) * sizeof(float);
  // A thread per rotated pair (up to a full block): a decode step has one block per token, and
  // a few pairs per thread keep its dependent loads few.
  const int threads = std::min(1024, ceil_div(heads * (rot_dim / 2), 32) * 32);
  launch_dependent("rope_kernel", rope_kernel, b.num_tokens, std::max(threads, 32), smem, s, b, x, heads, head_stride,
                   offset, rot_dim, inv_freq, attention_factor, style == RopeStyle::Neox);
}

void launch_rope_and_cache(const DeviceBatch& b, const RopeCacheParams& p, cudaStream_t s) {
  if (b.num_tokens == 0) return;
  const size_t smem = static_cast<size_t>(p.d) * sizeof(float);
  const int threads = std::min(1024, ceil_div((p.hq + p.hk) * (p.d / 2), 32) * 32);
  launch_dependent("rope_cache_kernel", rope_cache_kernel, b.num_tokens, std::max(threads, 32), smem, s, b, p);
}

void launch_mla_rope_and_cache(const DeviceBatch& b, const MlaRopeCacheParams& p, cudaStream_t s) {
  if (b.num_tokens == 0) return;
  const dim3 grid(b.num_tokens, 1 + ceil_div(p.heads * mla_query_values_per_head(p), kNormThreads));
  launch_dependent("mla_rope_cache_kernel", mla_rope_cache_kernel, grid, kNormThreads, 0, s, b, p);
}

}  // namespace dsinfer::cuda
