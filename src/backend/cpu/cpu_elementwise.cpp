// Element-wise and data-movement ops of the CPU backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <unistd.h>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace dsinfer {

void CpuBackend::copy_to_device(const void* host, Tensor dst) { std::memcpy(dst.data, host, dst.nbytes()); }
void CpuBackend::copy_to_host(const Tensor& src, void* host) { std::memcpy(host, src.data, src.nbytes()); }
void CpuBackend::fill_zero(Tensor t) { std::memset(t.data, 0, t.nbytes()); }

Weight CpuBackend::upload_weight(const Weight& host, std::vector<Buffer>&) { return host; }

void CpuBackend::embedding(const ForwardBatch& batch, const Weight& table, Tensor out) {
  const int64_t vocab = table.out_features(), h = table.in_features();
  const int n = batch.num_tokens();
  for (int t = 0; t < n; ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= vocab)
      fail("token id ", batch.tokens[t], " at position ", t, " is outside the vocabulary of ", vocab);
#pragma omp parallel for if (n * h > kParallelWork)
  for (int t = 0; t < n; ++t) weight_row_to_f32(table, batch.tokens[t], out.ptr<float>() + t * h);
}

void CpuBackend::rmsnorm(const Tensor& x, const Weight& w, float eps, Tensor out) {
  const int64_t h = x.shape.back(), rows = x.rows();
  std::vector<float> gamma(h);
  weight_row_to_f32(w, 0, gamma.data());
#pragma omp parallel for if (rows * h > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xi = x.ptr<float>() + r * h;
    float* yi = out.ptr<float>() + r * h;
    float ss = dot_f32(xi, xi, h);
    float inv = 1.0f / std::sqrt(ss / static_cast<float>(h) + eps);
    for (int64_t i = 0; i < h; ++i) yi[i] = gamma[i] * (xi[i] * inv);
  }
}

void CpuBackend::add(Tensor x, const Tensor& y) {
  const int64_t n = x.numel();
  float* a = x.ptr<float>();
  const float* b = y.ptr<float>();
#pragma omp parallel for if (n > 8 * kParallelWork)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

// The reference keeps the two steps apart; only a device that saves memory traffic fuses them.
void CpuBackend::add_rmsnorm(Tensor x, const Tensor& y, const Weight& w, float eps, Tensor out) {
  add(x, y);
  rmsnorm(x, w, eps, out);
}

void CpuBackend::silu_mul(const Tensor& gate, const Tensor& up, Tensor out) {
  const int64_t n = gate.numel();
  const float* g = gate.ptr<float>();
  const float* u = up.ptr<float>();
  float* o = out.ptr<float>();
#pragma omp parallel for if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void CpuBackend::rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) {
  const int n = batch.num_tokens();
  const int64_t heads = x.dim(1), stride = x.dim(2);
  const int half = rot_dim / 2;
  const float* inv_freq = p.inv_freq.ptr<float>();
#pragma omp parallel for if (n * heads * rot_dim > kParallelWork)
  for (int t = 0; t < n; ++t) {
    std::vector<float> c(half), s(half);
    // Same order as transformers: angle = float(pos) * inv_freq in float32, then cos/sin * scaling.
    for (int i = 0; i < half; ++i) {
      float ang = static_cast<float>(batch.positions[t]) * inv_freq[i];
      c[i] = std::cos(ang) * p.attention_factor;
      s[i] = std::sin(ang) * p.attention_factor;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.ptr<float>() + (t * heads + h) * stride + offset;
      for (int i = 0; i < half; ++i) {
        int a = p.style == RopeStyle::Neox ? i : 2 * i;
        int b = p.style == RopeStyle::Neox ? i + half : 2 * i + 1;
        float x1 = v[a], x2 = v[b];
        v[a] = x1 * c[i] - x2 * s[i];
        v[b] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

void CpuBackend::cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) {
  const int64_t width = src.shape.back();
  for (int t = 0; t < batch.num_tokens(); ++t) {
    const int slot = batch.slots[t];
    if (slot == -1) continue;  // a padding token, written nowhere
    if (slot < 0 || slot >= cache.dim(0)) fail("cache_write: slot ", slot, " outside the cache's ", cache.dim(0), " slots");
    std::memcpy(cache.ptr<float>() + static_cast<int64_t>(slot) * width, src.ptr<float>() + t * width,
                width * sizeof(float));
  }
}

void CpuBackend::argmax_rows(const Tensor& logits, Tensor ids) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.ptr<float>() + r * vocab;
    ids.ptr<int>()[r] = static_cast<int>(std::max_element(row, row + vocab) - row);
  }
}

void CpuBackend::gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) {
  const int64_t width = x.numel() / x.dim(0);
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(out.ptr<float>() + i * width, x.ptr<float>() + rows[i] * width, width * sizeof(float));
}

void CpuBackend::copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) {
  const int64_t src_w = src.shape.back(), dst_w = dst.shape.back(), rows = dst.rows();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst.ptr<float>() + r * dst_w + dst_off, src.ptr<float>() + r * src_w + src_off, n * sizeof(float));
}

MemoryInfo CpuBackend::memory_info() const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return {static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * page, static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * page};
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace dsinfer
