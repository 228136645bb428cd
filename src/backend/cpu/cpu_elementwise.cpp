// Element-wise and data-movement ops of the CPU backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <unistd.h>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/latent_fp8.h"

namespace dsinfer {

void CpuBackend::copy_to_device(const void* host, Tensor dst) { std::memcpy(dst.data, host, dst.nbytes()); }
void CpuBackend::copy_to_host(const Tensor& src, void* host) { std::memcpy(host, src.data, src.nbytes()); }
void CpuBackend::fill_zero(Tensor t) { std::memset(t.data, 0, t.nbytes()); }

Weight CpuBackend::upload_weight(const Weight& host, std::vector<Buffer>&) { return host; }

void CpuBackend::embedding(const ForwardBatch& batch, const Weight& table, int64_t first_id, Tensor out) {
  const int64_t rows = table.out_features(), h = table.in_features();
  const int n = batch.num_tokens();
#pragma omp parallel for if (n * h > kParallelWork)
  for (int t = 0; t < n; ++t) {
    const int64_t row = batch.tokens[t] - first_id;
    float* y = out.ptr<float>() + t * h;
    if (row >= 0 && row < rows)
      weight_row_to_f32(table, row, y);
    else
      std::fill(y, y + h, 0.0f);
  }
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

namespace {

// cos and sin of a position's angles, as transformers computes them: angle = float(pos) *
// inv_freq in float32, then cos/sin * attention_factor.
void rope_angles(int pos, const RopeParams& p, int half, float* c, float* s) {
  const float* inv_freq = p.inv_freq.ptr<float>();
  for (int i = 0; i < half; ++i) {
    const float ang = static_cast<float>(pos) * inv_freq[i];
    c[i] = std::cos(ang) * p.attention_factor;
    s[i] = std::sin(ang) * p.attention_factor;
  }
}

// out = the rotation of the 2 * half values of in (out may be in).
void rotate(const float* in, float* out, int half, const float* c, const float* s, RopeStyle style) {
  for (int i = 0; i < half; ++i) {
    const int a = style == RopeStyle::Neox ? i : 2 * i, b = style == RopeStyle::Neox ? i + half : 2 * i + 1;
    const float x1 = in[a], x2 = in[b];
    out[a] = x1 * c[i] - x2 * s[i];
    out[b] = x2 * c[i] + x1 * s[i];
  }
}

void check_slot(int slot, const Tensor& cache, const char* op) {
  if (slot < 0 || slot >= cache.dim(0)) fail(op, ": slot ", slot, " outside the cache's ", cache.dim(0), " slots");
}

}  // namespace

void CpuBackend::rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) {
  const int n = batch.num_tokens();
  const int64_t heads = x.dim(1), stride = x.dim(2);
  const int half = rot_dim / 2;
#pragma omp parallel for if (n * heads * rot_dim > kParallelWork)
  for (int t = 0; t < n; ++t) {
    std::vector<float> c(half), s(half);
    rope_angles(batch.positions[t], p, half, c.data(), s.data());
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.ptr<float>() + (t * heads + h) * stride + offset;
      rotate(v, v, half, c.data(), s.data(), p.style);
    }
  }
}

void CpuBackend::mla_rope_and_cache(const ForwardBatch& batch, const Tensor& q, const Tensor& kv, const Weight& kv_norm,
                                    float eps, const RopeParams& p, Tensor q_nope, Tensor q_rope, Tensor cache) {
  const int n = batch.num_tokens();
  const int64_t heads = q.dim(1), nope = q_nope.dim(2), rot = q_rope.dim(2), width = kv.shape.back(),
                lora = width - rot;
  const int half = static_cast<int>(rot / 2);
  std::vector<float> gamma(lora), c(half), s(half), row(width);
  weight_row_to_f32(kv_norm, 0, gamma.data());
  const bool fp8 = cache.dtype == DType::U8;  // FP8 latent rows (core/latent_fp8.h)
  const LatentFp8Layout l = latent_fp8_layout(static_cast<int>(lora), static_cast<int>(rot));
  if (fp8) check_latent_fp8_cache(cache, l, "mla_rope_and_cache");
  for (int t = 0; t < n; ++t) {
    rope_angles(batch.positions[t], p, half, c.data(), s.data());
    for (int64_t h = 0; h < heads; ++h) {
      const float* qh = q.ptr<float>() + (t * heads + h) * (nope + rot);
      std::memcpy(q_nope.ptr<float>() + (t * heads + h) * nope, qh, nope * sizeof(float));
      rotate(qh + nope, q_rope.ptr<float>() + (t * heads + h) * rot, half, c.data(), s.data(), p.style);
    }
    const int slot = batch.slots[t];
    if (slot == -1) continue;  // a padding token, written nowhere
    check_slot(slot, cache, "mla_rope_and_cache");
    const float* x = kv.ptr<float>() + t * width;
    const float inv = 1.0f / std::sqrt(dot_f32(x, x, lora) / static_cast<float>(lora) + eps);
    for (int64_t i = 0; i < lora; ++i) row[i] = gamma[i] * (x[i] * inv);
    rotate(x + lora, row.data() + lora, half, c.data(), s.data(), p.style);
    if (fp8)
      quantize_latent_row(l, row.data(), cache.ptr<uint8_t>() + static_cast<int64_t>(slot) * l.row_bytes);
    else
      std::copy(row.begin(), row.end(), cache.ptr<float>() + static_cast<int64_t>(slot) * width);
  }
}

void CpuBackend::cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) {
  const int64_t width = src.shape.back();
  for (int t = 0; t < batch.num_tokens(); ++t) {
    const int slot = batch.slots[t];
    if (slot == -1) continue;  // a padding token, written nowhere
    check_slot(slot, cache, "cache_write");
    std::memcpy(cache.ptr<float>() + static_cast<int64_t>(slot) * width, src.ptr<float>() + t * width,
                width * sizeof(float));
  }
}

void CpuBackend::argmax_rows(const Tensor& logits, Tensor ids) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.ptr<float>() + r * vocab;
    const bool nan = std::any_of(row, row + vocab, [](float v) { return std::isnan(v); });
    ids.ptr<int>()[r] = nan ? -1 : static_cast<int>(std::max_element(row, row + vocab) - row);
  }
}

void CpuBackend::gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) {
  const int64_t width = x.numel() / x.dim(0);
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(out.ptr<float>() + i * width, x.ptr<float>() + rows[i] * width, width * sizeof(float));
}

void CpuBackend::copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) {
  const int64_t src_w = src.shape.back(), dst_w = dst.shape.back(), rows = dst.rows();
  const int64_t repeat = check_copy_columns(src, src_off, dst, dst_off, n);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst.ptr<float>() + r * dst_w + dst_off, src.ptr<float>() + r / repeat * src_w + src_off,
                n * sizeof(float));
}

void CpuBackend::gather_context(const ForwardBatch& batch, const Tensor& cache, Tensor out) {
  // Rows of bytes: F32 values, or an FP8 cache's U8 rows.
  const int64_t row_bytes = check_gather_context(batch, cache, out) * static_cast<int64_t>(dtype_size(cache.dtype));
  int64_t row = 0;
  for (const SeqSlice& s : batch.seqs)
    for (int p = 0; p < s.context_len; ++p, ++row)
      std::memcpy(out.ptr<char>() + row * row_bytes, cache.ptr<char>() + cache_slot(s, p, batch.block_size) * row_bytes,
                  row_bytes);
}

void CpuBackend::dequantize_latent(const Tensor& rows, int kv_lora_rank, Tensor out) {
  const LatentFp8Layout l = check_dequantize_latent(rows, kv_lora_rank, out);
  for (int64_t r = 0; r < rows.rows(); ++r)
    dequantize_latent_row(l, rows.ptr<uint8_t>() + r * l.row_bytes, out.ptr<float>() + r * l.values());
}

MemoryInfo CpuBackend::memory_info() const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return {static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * page, static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * page};
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

// A group's ranks share the threads: each rank's thread runs its ops on its share of them, where
// every rank taking all of them would oversubscribe the machine.
void CpuBackend::begin_forward(const ForwardBatch&) {
  if (threads_ > 0) omp_set_num_threads(threads_);
}

void CpuBackend::all_reduce_sum(Tensor x) {
  if (!group_) return;
  if (x.dtype != DType::F32 || x.device.kind != DeviceKind::CPU)
    fail("all_reduce_sum: ", dtype_name(x.dtype), " tensor on ", device_name(x.device), " (the CPU group sums F32 host tensors)");
  group_->all_reduce_sum(rank_, x.ptr<float>(), x.numel());
}

void CpuBackend::all_gather(const Tensor& part, Tensor gathered) {
  if (!group_) fail("all_gather: backend cpu is in no tensor-parallel group");
  if (part.dtype != DType::F32 || gathered.dtype != DType::F32 || gathered.numel() != part.numel() * group_->size())
    fail("all_gather: ", dtype_name(part.dtype), " ", shape_str(part.shape), " into ", dtype_name(gathered.dtype), " ",
         shape_str(gathered.shape), " over ", group_->size(), " ranks (F32, [ranks, part])");
  group_->all_gather(rank_, part.ptr<float>(), part.numel(), gathered.ptr<float>());
}

void CpuBackend::abort_group() {
  if (group_) group_->abort();
}

std::vector<std::unique_ptr<Backend>> make_cpu_backend_group(int size) {
  auto group = std::make_shared<HostGroup>(size);
  std::vector<std::unique_ptr<Backend>> ranks;
  const int threads = std::max(1, omp_get_max_threads() / size);  // OMP_NUM_THREADS or the cores
  for (int r = 0; r < size; ++r) ranks.push_back(std::make_unique<CpuBackend>(group, r, threads));
  return ranks;
}

}  // namespace dsinfer
