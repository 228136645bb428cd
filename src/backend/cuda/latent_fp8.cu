// FP8 latent rows back to bf16 (Backend::dequantize_latent): MLA's expanded prefill reads the
// gathered context this way before making every head's keys and values from it.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/latent_fp8.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 128;

// A block per row: 16 values a thread where the latent part allows it, else one.
__global__ void __launch_bounds__(kThreads) dequantize_latent_kernel(const uint8_t* rows, LatentFp8Layout l, bf16* out) {
  dependent_kernel_start();
  const uint8_t* row = rows + static_cast<int64_t>(blockIdx.x) * l.row_bytes;
  bf16* dst = out + static_cast<int64_t>(blockIdx.x) * (l.lora + l.rope);
  const bool vec = l.lora % 16 == 0 && (l.lora + l.rope) % 8 == 0;
  const int vec_values = vec ? l.lora : 0;
  for (int c = threadIdx.x * 16; c < vec_values; c += kThreads * 16) {
    uint4 lo, hi;
    dequantize16(*reinterpret_cast<const uint4*>(row + c), latent_scale(row, l, c / kLatentFp8Group), lo, hi);
    *reinterpret_cast<uint4*>(dst + c) = lo;
    *reinterpret_cast<uint4*>(dst + c + 8) = hi;
  }
  for (int i = vec_values + threadIdx.x; i < l.lora + l.rope; i += kThreads)
    dst[i] = __float2bfloat16(latent_value(row, l, i));
}

}  // namespace

void launch_dequantize_latent(const uint8_t* rows, const LatentFp8Layout& fp8, int64_t n, bf16* out, cudaStream_t s) {
  if (n == 0) return;
  if (n > 0x7fffffff) fail("dequantize_latent: ", n, " rows exceed one grid");
  launch_dependent("dequantize_latent_kernel", dequantize_latent_kernel, static_cast<int>(n), kThreads, 0, s, rows, fp8,
                   out);
}

}  // namespace dsinfer::cuda
