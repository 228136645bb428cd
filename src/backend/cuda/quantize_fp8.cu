// DeepSeek's activation recipe for the block-scaled FP8 GEMM: every token's row is cut in
// groups of 128 columns, and each group is stored as e4m3 with one float32 scale, so that an
// outlier only coarsens the 128 values that share its group; for the grouped MoE GEMM the rows
// are gathered in expert order by the same pass. Also the copy that gives the weights' block
// scales the row pitch cuBLASLt wants.
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/fp8_act_recipe.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_gemm_fp8.h"

namespace dsinfer::cuda {
namespace {

constexpr int kGroup = kActGroup;
constexpr int kLanesPerGroup = 16;  // each lane holds 8 columns: one 16-byte load
constexpr int kThreads = 256;

// Half a warp per (token, group): lane l holds columns 8l..8l+7, so each half-warp reads 256
// contiguous bytes and writes 128. Output row t comes from input row src_rows[t] (t itself when
// src_rows is null); rows at or past *n_valid (m when null) and rows m..m_pad-1 are padding:
// zeros with scale 1. With `up` the values quantized are silu(x) * up, rounded to bf16 as
// silu_mul rounds them (a gated MLP's activation, computed here instead of in a launch of its
// own). kChained: launched as a dependent of x's producer, it lets the next kernel (a skinny
// product, whose weight loads need nothing of it) start before its own wait.
template <bool kChained>
__global__ void quantize_fp8_act_kernel(const bf16* x, const bf16* up, const int* src_rows, const int* n_valid,
                                        int64_t m, int64_t m_pad, int64_t groups, uint8_t* xq, float* scales) {
  if constexpr (kChained) {
    allow_next_kernel();
    wait_for_previous_kernels();
  }
  const int64_t item = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kLanesPerGroup;
  const int lane = threadIdx.x % kLanesPerGroup;
  const int64_t t = item / groups, g = item % groups;
  const bool active = item < m_pad * groups;
  const int64_t at = (t * groups + g) * kGroup + lane * 8;
  const int64_t valid = n_valid ? min(static_cast<int64_t>(*n_valid), m) : m;
  float v[8] = {};
  if (active && t < valid) {
    const int64_t src = src_rows ? src_rows[t] : t, at_src = (src * groups + g) * kGroup + lane * 8;
    bf16x8_to_float(*reinterpret_cast<const uint4*>(x + at_src), v);
    if (up != nullptr) {
      float u[8];
      bf16x8_to_float(*reinterpret_cast<const uint4*>(up + at_src), u);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = __bfloat162float(__float2bfloat16(silu_times(v[i], u[i])));
    }
  }
  // Every lane of the warp takes part in the shuffles (inactive ones with zeros).
  const float scale = group_scale(v);
  if (!active) return;
  const uint2 packed = quantize8(v, scale);
  *reinterpret_cast<uint2*>(xq + at) = packed;
  if (lane == 0) scales[g * m_pad + t] = scale;  // [groups, m_pad]: tokens contiguous
}

__global__ void pad_rows_kernel(const float* src, int64_t rows, int64_t cols, int64_t pitch, float* dst) {
  const int64_t n = rows * pitch;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / pitch, c = i % pitch;
    dst[i] = c < cols ? src[r * cols + c] : 1.0f;  // the padding scales no element
  }
}

void quantize(const bf16* x, const bf16* up, const int* src_rows, const int* n_valid, int64_t m, int64_t m_pad,
              int64_t k, uint8_t* xq, float* scales, cudaStream_t s, bool chained = false) {
  if (k % kGroup != 0) fail("FP8 activation quantization: K = ", k, " is not a multiple of ", kGroup);
  if (m_pad < m) fail("FP8 activation quantization: ", m, " tokens padded to ", m_pad);
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(up) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(xq) % 8 != 0)
    fail("FP8 activation quantization: input or output is not aligned for vector access");
  if (m_pad == 0) return;
  const int64_t threads = m_pad * (k / kGroup) * kLanesPerGroup;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  if (chained)
    return launch_dependent("quantize_fp8_act_kernel", quantize_fp8_act_kernel<true>, blocks, kThreads, 0, s, x, up,
                            src_rows, n_valid, m, m_pad, k / kGroup, xq, scales);
  quantize_fp8_act_kernel<false>
      <<<blocks, kThreads, 0, s>>>(x, up, src_rows, n_valid, m, m_pad, k / kGroup, xq, scales);
  CUDA_CHECK_LAUNCH("quantize_fp8_act_kernel");
}

}  // namespace

void launch_quantize_fp8_act(const bf16* x, int64_t m, int64_t m_pad, int64_t k, uint8_t* xq, float* scales,
                             cudaStream_t s) {
  quantize(x, nullptr, nullptr, nullptr, m, m_pad, k, xq, scales, s);
}

void launch_quantize_fp8_act_chained(const bf16* x, int64_t m, int64_t k, uint8_t* xq, float* scales, cudaStream_t s) {
  quantize(x, nullptr, nullptr, nullptr, m, m, k, xq, scales, s, /*chained=*/true);
}

void launch_silu_mul_quantize_fp8_act(const bf16* gate, const bf16* up, int64_t m, int64_t m_pad, int64_t k,
                                      uint8_t* xq, float* scales, cudaStream_t s) {
  quantize(gate, up, nullptr, nullptr, m, m_pad, k, xq, scales, s);
}

void launch_silu_mul_quantize_fp8_act_chained(const bf16* gate, const bf16* up, int64_t m, int64_t k, uint8_t* xq,
                                              float* scales, cudaStream_t s) {
  quantize(gate, up, nullptr, nullptr, m, m, k, xq, scales, s, /*chained=*/true);
}

void launch_gather_quantize_fp8_act(const bf16* x, const int* src_rows, const int* n_valid, int64_t m, int64_t k,
                                    uint8_t* xq, float* scales, cudaStream_t s) {
  quantize(x, nullptr, src_rows, n_valid, m, m, k, xq, scales, s);
}

void launch_pad_rows_f32(const float* src, int64_t rows, int64_t cols, int64_t pitch, float* dst, cudaStream_t s) {
  const int64_t n = rows * pitch;
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096));
  pad_rows_kernel<<<blocks, 256, 0, s>>>(src, rows, cols, pitch, dst);
  CUDA_CHECK_LAUNCH("pad_rows_kernel");
}

}  // namespace dsinfer::cuda
