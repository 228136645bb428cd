// CudaBackend's per-head products of absorbed MLA (W_UK folded into the query, W_UV applied to
// the attention output): one strided-batched bf16 cuBLAS GEMM over the heads, float32
// accumulation. The model uploads w_uk / w_uv in the activation dtype (bf16), so no operand is
// converted and the product runs on tensor cores. At decode sizes (up to 4 tokens) a skinny
// kernel (gemv.cu) streams w once instead: V2-Lite's 16 x 128 x 512 took cuBLAS ~5 us each way.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

void CudaBackend::head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) {
  expect(x, DType::BF16, "head_matmul", "input");
  expect(w, DType::BF16, "head_matmul", "weights");
  expect(out, DType::BF16, "head_matmul", "output");
  if (w.shape.size() != 3) fail("head_matmul: weights ", shape_str(w.shape), " are not [heads, N, K]");
  const int64_t t = x.dim(0), heads = w.dim(0), n = w.dim(1), k = w.dim(2);
  const int64_t in_dim = transpose ? n : k, out_dim = transpose ? k : n;
  expect_shape(x, {t, heads, in_dim}, "head_matmul", "input");
  expect_shape(out, {t, heads, out_dim}, "head_matmul", "output");
  if (t == 0) return;
  if (head_gemv_fits(t, n, k, x.data, w.data))
    return launch_head_gemv(x.ptr<bf16>(), w.ptr<bf16>(), transpose, t, heads, n, k, out.ptr<bf16>(), stream_);
  // Column-major per head h: out_h [out_dim, T] (ld H * out_dim) = op(w_h) x_h, where w_h [N, K]
  // row-major is [K, N] column-major: op T gives out[n] = sum_k w[n, k] x[k], op N gives
  // out[k] = sum_n w[n, k] x[n].
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      blas_, transpose ? CUBLAS_OP_N : CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out_dim), static_cast<int>(t),
      static_cast<int>(in_dim), &alpha, w.data, CUDA_R_16BF, static_cast<int>(k), n * k, x.data, CUDA_R_16BF,
      static_cast<int>(heads * in_dim), in_dim, &beta, out.data, CUDA_R_16BF, static_cast<int>(heads * out_dim), out_dim,
      static_cast<int>(heads), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace dsinfer::cuda
