// CudaBackend's matrix products: linear through cuBLASLt (bf16 x bf16 -> bf16 or f32).
// head_matmul is in cuda_head_matmul.cpp.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

const bf16* CudaBackend::bf16_weight(const Weight& w) {
  if (w.w.dtype == DType::BF16) return w.w.ptr<bf16>();
  // FP8 (block-scaled), F16 and F32 weights: converted to bf16 right before their product.
  const int64_t rows = w.w.numel() / w.w.shape.back();
  bf16* out = static_cast<bf16*>(weight_ws_.get(static_cast<size_t>(w.w.numel()) * sizeof(bf16)));
  launch_weight_to_bf16(device_weight(w), rows, out, stream_);
  return out;
}

void CudaBackend::linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) {
  expect(x, DType::BF16, "linear", "input");
  if (out.dtype != DType::BF16) expect(out, DType::F32, "linear", "output");
  const int64_t m = x.rows(), k = x.shape.back(), n = w.out_features();
  if (w.w.shape.size() != 2 || w.in_features() != k || out.shape.back() != n || out.rows() != m ||
      (bias && bias->w.numel() != n))
    fail("linear: input ", shape_str(x.shape), " x weight ", shape_str(w.w.shape), " -> output ", shape_str(out.shape),
         " do not match");
  // A bf16 bias on a bf16 output rides in the GEMM's epilogue; other combinations take a kernel.
  const bool fused = bias && bias->w.dtype == DType::BF16 && out.dtype == DType::BF16;
  gemm_->matmul(x.ptr<bf16>(), bf16_weight(w), out.data, out.dtype, m, n, k, fused ? bias->w.ptr<bf16>() : nullptr);
  if (bias && !fused) launch_add_bias(out.data, out.dtype, m, device_weight(*bias), stream_);
}

}  // namespace dsinfer::cuda
