// CudaBackend's per-head products of absorbed MLA (W_UK folded into the query, W_UV applied to
// the attention output) through batched float32 cuBLAS.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

void CudaBackend::head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) {
  expect(x, DType::BF16, "head_matmul", "input");
  expect(w, DType::F32, "head_matmul", "weights");
  expect(out, DType::BF16, "head_matmul", "output");
  const int64_t t = x.dim(0), heads = w.dim(0), n = w.dim(1), k = w.dim(2);
  const int64_t in_dim = transpose ? n : k, out_dim = transpose ? k : n;
  expect_shape(x, {t, heads, in_dim}, "head_matmul", "input");
  expect_shape(out, {t, heads, out_dim}, "head_matmul", "output");
  if (t == 0) return;
  // The weights are float32 (as the model uploads them), so the product runs in float32:
  // x widened to f32, one strided-batched SGEMM over the heads, the result rounded to bf16.
  ScratchCarver carve;
  const size_t x_at = carve.add(x.numel() * sizeof(float)), out_at = carve.add(out.numel() * sizeof(float));
  char* ws = static_cast<char*>(head_ws_.get(carve.total()));
  float* xf = reinterpret_cast<float*>(ws + x_at);
  float* of = reinterpret_cast<float*>(ws + out_at);
  launch_bf16_to_f32(x.ptr<bf16>(), xf, x.numel(), stream_);
  // Column-major per head h: out_h [out_dim, T] (ld H * out_dim) = op(w_h) x_h, where w_h [N, K]
  // row-major is [K, N] column-major: op T gives out[n] = sum_k w[n, k] x[k], op N gives
  // out[k] = sum_n w[n, k] x[n].
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasSgemmStridedBatched(blas_, transpose ? CUBLAS_OP_N : CUBLAS_OP_T, CUBLAS_OP_N,
                                         static_cast<int>(out_dim), static_cast<int>(t), static_cast<int>(in_dim), &alpha,
                                         w.ptr<float>(), static_cast<int>(k), n * k, xf, static_cast<int>(heads * in_dim),
                                         in_dim, &beta, of, static_cast<int>(heads * out_dim), out_dim,
                                         static_cast<int>(heads)));
  launch_f32_to_bf16(of, out.ptr<bf16>(), out.numel(), stream_);
}

}  // namespace dsinfer::cuda
