// RMSNorm of whole rows by one block, shared by the norm kernels (norm_rope.cu) and the skinny
// product that ends a decoder block (gemv.cu), whose last block normalizes the residual stream
// itself instead of leaving it to a separate launch.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/device_common.cuh"

namespace dsinfer::cuda {

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

// v[r] summed over the calling block (a multiple of 32 threads, all of which call it and get the
// totals). Called once per launch: the shared partials are not guarded for a second call.
template <int R>
__device__ __forceinline__ void block_sums(float (&v)[R]) {
  __shared__ float partial[32][R];
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    v[r] = warp_sum(v[r]);
    if (threadIdx.x % 32 == 0) partial[warp][r] = v[r];
  }
  __syncthreads();
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float total = 0.0f;
    for (int i = 0; i < warps; ++i) total += partial[i][r];
    v[r] = total;
  }
}

__device__ __forceinline__ float block_sum(float v) {
  float s[1] = {v};
  block_sums(s);
  return s[0];
}

// R rows of h values (rows h apart; h % 8 == 0, every pointer 16-byte aligned), normalized by
// the calling block (all its threads call it). With y, x += y first, rounded to bf16 as a bf16
// residual stream is; then out = rmsnorm(x) * w. y is read past L1, so it may be what other
// blocks of the same kernel wrote. Each thread re-reads only the words it wrote, so without y,
// x and out may alias, and the add needs no barrier before the second pass.
template <int R>
__device__ void rmsnorm_rows(bf16* x, const bf16* y, const DeviceWeight& w, float eps, int64_t h, bf16* out) {
  const int64_t words = h / 8;
  float ss[R] = {};
#pragma unroll
  for (int r = 0; r < R; ++r) {
    uint4* xr = reinterpret_cast<uint4*>(x + r * h);
    const uint4* yr = y != nullptr ? reinterpret_cast<const uint4*>(y + r * h) : nullptr;
    for (int64_t c = threadIdx.x; c < words; c += blockDim.x) {
      Pack8 v = unpack8(xr[c]);
      if (y != nullptr) {
        const Pack8 d = unpack8(__ldcg(yr + c));
#pragma unroll
        for (int j = 0; j < 8; ++j) v.v[j] += d.v[j];
        const uint4 rounded = pack8(v);
        xr[c] = rounded;
        v = unpack8(rounded);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss[r] += v.v[j] * v.v[j];
    }
  }
  block_sums(ss);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float inv = rsqrtf(ss[r] / static_cast<float>(h) + eps);
    const uint4* xr = reinterpret_cast<const uint4*>(x + r * h);
    uint4* outr = reinterpret_cast<uint4*>(out + r * h);
    for (int64_t c = threadIdx.x; c < words; c += blockDim.x) {
      Pack8 v = unpack8(xr[c]);
      const Pack8 g = weight8(w, 8 * c);
#pragma unroll
      for (int j = 0; j < 8; ++j) v.v[j] = g.v[j] * (v.v[j] * inv);
      outr[c] = pack8(v);
    }
  }
}

}  // namespace dsinfer::cuda
