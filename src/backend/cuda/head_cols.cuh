// The transposed per-head product of absorbed MLA at decode sizes, as a block's device function:
// head_cols_kernel (gemv.cu) runs it, and so does the launch that also does MLA's rope-and-cache
// work (mla_absorb.cu).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"

namespace dsinfer::cuda {

constexpr int kHeadSlices = 16;  // row slices of a block (kHeadSlices warps)
constexpr int kHeadUnroll = 8;   // loads a thread keeps in flight

// out[t, h, c] = sum_n w[h, n, c] x[t, h, n] for the M tokens, head h and the 256 columns of block
// column bx: thread (slice s, piece p) sums 8 columns over rows s, s + 16, ...; the slices add
// through shared memory. x[t, h] starts at x + (t * heads + h) * x_stride. w is loaded before the
// dependent wait (no kernel writes weights), x after it.
template <int M>
__device__ void head_cols_block(const bf16* w, const bf16* x, int64_t x_stride, bf16* out, int heads, int n, int k,
                                int h, int bx) {
  __shared__ float red[kHeadSlices][32][9];  // padded against bank conflicts
  const int s = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pieces = k / 8, p = bx * 32 + lane;
  const bool live = p < pieces;
  const uint4* wh = reinterpret_cast<const uint4*>(w) + static_cast<int64_t>(h) * n * pieces + p;
  uint4 wv[kHeadUnroll];
  auto load = [&](int r0) {
#pragma unroll
    for (int u = 0; u < kHeadUnroll; ++u) {
      const int r = r0 + u * kHeadSlices;
      if (live && r < n) wv[u] = __ldcs(wh + static_cast<int64_t>(r) * pieces);
    }
  };
  load(s);
  dependent_kernel_start();
  float acc[M][8] = {};
  for (int r0 = s; r0 < n; r0 += kHeadSlices * kHeadUnroll) {
    if (r0 != s) load(r0);
#pragma unroll
    for (int u = 0; u < kHeadUnroll; ++u) {
      const int r = r0 + u * kHeadSlices;
      if (!live || r >= n) continue;
      const __nv_bfloat162* pw = reinterpret_cast<const __nv_bfloat162*>(&wv[u]);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float xv = __bfloat162float(x[(static_cast<int64_t>(m) * heads + h) * x_stride + r]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float2 f = __bfloat1622float2(pw[i]);
          acc[m][2 * i] = fmaf(f.x, xv, acc[m][2 * i]);
          acc[m][2 * i + 1] = fmaf(f.y, xv, acc[m][2 * i + 1]);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int i = 0; i < 8; ++i) red[s][lane][i] = acc[m][i];
    __syncthreads();
    if (threadIdx.x < 256) {
      const int pl = threadIdx.x / 8, i = threadIdx.x % 8, pc = bx * 32 + pl;
      float v = 0.0f;
#pragma unroll
      for (int j = 0; j < kHeadSlices; ++j) v += red[j][pl][i];
      if (pc < pieces) out[(static_cast<int64_t>(m) * heads + h) * k + pc * 8 + i] = __float2bfloat16(v);
    }
    __syncthreads();
  }
}

}  // namespace dsinfer::cuda
