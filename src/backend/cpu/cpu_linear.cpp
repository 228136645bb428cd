// Matrix products of the CPU backend: weights are converted to float32 one row at a time.
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace dsinfer {

void CpuBackend::linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) {
  const int64_t m = x.rows(), k = x.shape.back(), n = w.out_features();
  if (w.in_features() != k || out.shape.back() != n)
    fail("linear: input ", shape_str(x.shape), " x weight ", shape_str(w.w.shape), " -> output ", shape_str(out.shape),
         " do not match");
  std::vector<float> b(bias ? n : 0);
  if (bias) weight_row_to_f32(*bias, 0, b.data());
  const float* xp = x.ptr<float>();
  float* op = out.ptr<float>();
#pragma omp parallel if (m * n * k > kParallelWork)
  {
    std::vector<float> row(w.w.dtype == DType::F32 ? 0 : k);
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      const float* wr;
      if (w.w.dtype == DType::F32) {
        wr = w.w.ptr<float>() + j * k;
      } else {
        weight_row_to_f32(w, j, row.data());
        wr = row.data();
      }
      const float bj = bias ? b[j] : 0.0f;
      for (int64_t i = 0; i < m; ++i) op[i * n + j] = dot_f32(xp + i * k, wr, k) + bj;
    }
  }
}

void CpuBackend::head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) {
  // The model uploads the per-head matrices in the activation dtype, F32 here.
  if (w.dtype != DType::F32 || x.dtype != DType::F32 || out.dtype != DType::F32)
    fail("head_matmul (CPU): input ", dtype_name(x.dtype), ", weights ", dtype_name(w.dtype), ", output ",
         dtype_name(out.dtype), "; expected F32");
  const int64_t t_count = x.dim(0), heads = w.dim(0), n = w.dim(1), k = w.dim(2);
  const int64_t in_dim = transpose ? n : k, out_dim = transpose ? k : n;
  const float* wp = w.ptr<float>();
#pragma omp parallel for collapse(2) if (t_count * heads * n * k > kParallelWork)
  for (int64_t t = 0; t < t_count; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float* xi = x.ptr<float>() + (t * heads + h) * in_dim;
      float* o = out.ptr<float>() + (t * heads + h) * out_dim;
      const float* wh = wp + h * n * k;
      if (!transpose) {
        for (int64_t r = 0; r < n; ++r) o[r] = dot_f32(wh + r * k, xi, k);
      } else {
        for (int64_t c = 0; c < k; ++c) o[c] = 0.0f;
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = 0; c < k; ++c) o[c] += wh[r * k + c] * xi[r];
      }
    }
}

}  // namespace dsinfer
