// RMSNorm and rotary embeddings on bf16 activations, computed in float32.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {
namespace {

constexpr int kNormThreads = 256;

// One block per row. x and out may alias: every element is read (for the sum) before the
// reduction's barrier, and afterwards each thread rewrites only the elements it reads.
__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(const bf16* x, DeviceWeight w, float eps, int64_t h,
                                                               bf16* out) {
  __shared__ float partial[kNormThreads / 32];
  const bf16* xr = x + blockIdx.x * h;
  bf16* yr = out + blockIdx.x * h;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
    const float v = __bfloat162float(xr[i]);
    ss += v * v;
  }
  ss = warp_sum(ss);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kNormThreads / 32; ++i) total += partial[i];
  const float inv = rsqrtf(total / static_cast<float>(h) + eps);
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
    yr[i] = __float2bfloat16(weight_at(w, 0, i) * (__bfloat162float(xr[i]) * inv));
}

// One block per row: x += y (rounded to bf16, as a bf16 residual stream is), then the norm of
// the updated row. Each thread re-reads only the elements it wrote, so no barrier is needed
// between the add and the second pass.
__global__ void __launch_bounds__(kNormThreads) add_rmsnorm_kernel(bf16* x, const bf16* y, DeviceWeight w, float eps,
                                                                   int64_t h, bf16* out) {
  __shared__ float partial[kNormThreads / 32];
  bf16* xr = x + blockIdx.x * h;
  const bf16* yr = y + blockIdx.x * h;
  bf16* outr = out + blockIdx.x * h;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
    const bf16 v = __float2bfloat16(__bfloat162float(xr[i]) + __bfloat162float(yr[i]));
    xr[i] = v;
    const float f = __bfloat162float(v);
    ss += f * f;
  }
  ss = warp_sum(ss);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kNormThreads / 32; ++i) total += partial[i];
  const float inv = rsqrtf(total / static_cast<float>(h) + eps);
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
    outr[i] = __float2bfloat16(weight_at(w, 0, i) * (__bfloat162float(xr[i]) * inv));
}

// One block per token: cos and sin of its position once in shared memory, then every head.
// As transformers: angle = float(pos) * inv_freq in float32, cos/sin scaled by attention_factor.
__global__ void rope_kernel(DeviceBatch b, bf16* x, int heads, int64_t stride, int offset, int rot_dim,
                            const float* inv_freq, float attention_factor, bool neox) {
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  const int t = blockIdx.x, half = rot_dim / 2;
  const float pos = static_cast<float>(b.positions[t]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * inv_freq[i];
    cs[i] = cosf(ang) * attention_factor;
    cs[half + i] = sinf(ang) * attention_factor;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    bf16* v = x + (static_cast<int64_t>(t) * heads + h) * stride + offset;
    const int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
    const float x1 = __bfloat162float(v[ia]), x2 = __bfloat162float(v[ib]);
    v[ia] = __float2bfloat16(x1 * cs[i] - x2 * cs[half + i]);
    v[ib] = __float2bfloat16(x2 * cs[i] + x1 * cs[half + i]);
  }
}

}  // namespace

void launch_rmsnorm(const bf16* x, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out, cudaStream_t s) {
  if (rows == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, s>>>(x, w, eps, h, out);
  CUDA_CHECK_LAUNCH("rmsnorm_kernel");
}

void launch_add_rmsnorm(bf16* x, const bf16* y, const DeviceWeight& w, float eps, int64_t rows, int64_t h, bf16* out,
                        cudaStream_t s) {
  if (rows == 0) return;
  add_rmsnorm_kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, s>>>(x, y, w, eps, h, out);
  CUDA_CHECK_LAUNCH("add_rmsnorm_kernel");
}

void launch_rope(const DeviceBatch& b, bf16* x, int heads, int64_t head_stride, int offset, int rot_dim,
                 const float* inv_freq, float attention_factor, RopeStyle style, cudaStream_t s) {
  if (b.num_tokens == 0) return;
  const size_t smem = static_cast<size_t>(rot_dim) * sizeof(float);
  rope_kernel<<<b.num_tokens, 128, smem, s>>>(b, x, heads, head_stride, offset, rot_dim, inv_freq, attention_factor,
                                                style == RopeStyle::Neox);
  CUDA_CHECK_LAUNCH("rope_kernel");
}

}  // namespace dsinfer::cuda
