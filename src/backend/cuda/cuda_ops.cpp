// CudaBackend's pointwise and data-movement ops: argument checks, then one kernel each.
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

void CudaBackend::embedding(const ForwardBatch& batch, const Weight& table, int64_t first_id, Tensor out) {
  const DeviceBatch& db = device_batch(batch);
  expect(out, DType::BF16, "embedding", "output");
  expect_shape(out, {batch.num_tokens(), table.in_features()}, "embedding", "output");
  launch_embedding(db, device_weight(table), first_id, table.out_features(), out.ptr<bf16>(), stream_);
}

void CudaBackend::rmsnorm(const Tensor& x, const Weight& w, float eps, Tensor out) {
  expect(x, DType::BF16, "rmsnorm", "input");
  expect(out, DType::BF16, "rmsnorm", "output");
  const int64_t h = x.shape.back();
  if (out.numel() != x.numel() || w.w.numel() != h)
    fail("rmsnorm: input ", shape_str(x.shape), ", weight ", shape_str(w.w.shape), ", output ", shape_str(out.shape));
  launch_rmsnorm(x.ptr<bf16>(), device_weight(w), eps, x.rows(), h, out.ptr<bf16>(), stream_);
}

void CudaBackend::add(Tensor x, const Tensor& y) {
  expect(x, DType::BF16, "add", "x");
  expect(y, DType::BF16, "add", "y");
  if (x.numel() != y.numel()) fail("add: ", shape_str(x.shape), " + ", shape_str(y.shape));
  launch_add(x.ptr<bf16>(), y.ptr<bf16>(), x.numel(), stream_);
}

void CudaBackend::add_rmsnorm(Tensor x, const Tensor& y, const Weight& w, float eps, Tensor out) {
  expect(x, DType::BF16, "add_rmsnorm", "x");
  expect(y, DType::BF16, "add_rmsnorm", "y");
  expect(out, DType::BF16, "add_rmsnorm", "output");
  const int64_t h = x.shape.back();
  if (y.numel() != x.numel() || out.numel() != x.numel() || w.w.numel() != h)
    fail("add_rmsnorm: x ", shape_str(x.shape), ", y ", shape_str(y.shape), ", weight ", shape_str(w.w.shape),
         ", output ", shape_str(out.shape));
  if (out.data == x.data || out.data == y.data) fail("add_rmsnorm: the output must not alias x or y");
  launch_add_rmsnorm(x.ptr<bf16>(), y.ptr<bf16>(), device_weight(w), eps, x.rows(), h, out.ptr<bf16>(), stream_);
}

void CudaBackend::silu_mul(const Tensor& gate, const Tensor& up, Tensor out) {
  expect(gate, DType::BF16, "silu_mul", "gate");
  expect(up, DType::BF16, "silu_mul", "up");
  expect(out, DType::BF16, "silu_mul", "output");
  if (gate.numel() != up.numel() || out.numel() != gate.numel())
    fail("silu_mul: gate ", shape_str(gate.shape), ", up ", shape_str(up.shape), ", output ", shape_str(out.shape));
  launch_silu_mul(gate.ptr<bf16>(), up.ptr<bf16>(), out.ptr<bf16>(), gate.numel(), stream_);
}

void CudaBackend::rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) {
  const DeviceBatch& db = device_batch(batch);
  expect(x, DType::BF16, "rope", "x");
  expect(p.inv_freq, DType::F32, "rope", "inv_freq");
  if (x.shape.size() != 3 || x.dim(0) != batch.num_tokens() || rot_dim % 2 || offset < 0 || offset + rot_dim > x.dim(2) ||
      p.inv_freq.numel() < rot_dim / 2)
    fail("rope: x ", shape_str(x.shape), ", dims [", offset, ", ", offset + rot_dim, "), ", p.inv_freq.numel(),
         " frequencies, ", batch.num_tokens(), " tokens");
  launch_rope(db, x.ptr<bf16>(), static_cast<int>(x.dim(1)), x.dim(2), offset, rot_dim, p.inv_freq.ptr<float>(),
              p.attention_factor, p.style, stream_);
}

void CudaBackend::cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) {
  const DeviceBatch& db = device_batch(batch);
  expect(src, DType::BF16, "cache_write", "source");
  expect(cache, DType::BF16, "cache_write", "cache");
  const int64_t width = src.shape.back();
  if (src.rows() != batch.num_tokens() || cache.shape.back() != width)
    fail("cache_write: source ", shape_str(src.shape), " into cache ", shape_str(cache.shape));
  for (int s : batch.slots)  // -1: a padding token, written nowhere
    if (s < -1 || s >= cache.dim(0)) fail("cache_write: slot ", s, " outside the cache's ", cache.dim(0), " slots");
  launch_cache_write(db, src.ptr<bf16>(), width, cache.ptr<bf16>(), stream_);
}

RopeCacheParams CudaBackend::rope_cache_params(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v,
                                               const KvLayer& kv, const RopeParams& p) {
  expect(q, DType::BF16, "rope_and_cache", "q");
  expect(k, DType::BF16, "rope_and_cache", "k");
  expect(v, DType::BF16, "rope_and_cache", "v");
  expect(kv.k, DType::BF16, "rope_and_cache", "k cache");
  expect(kv.v, DType::BF16, "rope_and_cache", "v cache");
  const int64_t t = batch.num_tokens(), d = q.dim(2), hk = k.dim(1);
  if (q.shape.size() != 3 || k.shape.size() != 3 || v.shape.size() != 3 || q.dim(0) != t || k.dim(0) != t ||
      v.dim(0) != t || k.dim(2) != d || v.dim(1) != hk || d % 2 || p.inv_freq.numel() < d / 2 ||
      kv.k.shape.back() != hk * d || kv.v.shape.back() != hk * v.dim(2))
    fail("rope_and_cache: q ", shape_str(q.shape), ", k ", shape_str(k.shape), ", v ", shape_str(v.shape), ", caches ",
         shape_str(kv.k.shape), " and ", shape_str(kv.v.shape), ", ", p.inv_freq.numel(), " frequencies, ", t, " tokens");
  for (int s : batch.slots)  // -1: a padding token, written nowhere
    if (s < -1 || s >= kv.k.dim(0)) fail("rope_and_cache: slot ", s, " outside the cache's ", kv.k.dim(0), " slots");
  return RopeCacheParams{q.ptr<bf16>(), k.ptr<bf16>(), v.ptr<bf16>(), kv.k.ptr<bf16>(), kv.v.ptr<bf16>(),
                         static_cast<int>(q.dim(1)), static_cast<int>(hk), static_cast<int>(d),
                         static_cast<int>(v.dim(2)), p.inv_freq.ptr<float>(), p.attention_factor,
                         p.style == RopeStyle::Neox};
}

void CudaBackend::rope_and_cache(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                                 const RopeParams& p) {
  const DeviceBatch& db = device_batch(batch);
  launch_rope_and_cache(db, rope_cache_params(batch, q, k, v, kv, p), stream_);
}

MlaRopeCacheParams CudaBackend::mla_rope_cache_params(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                                      const Weight& kv_norm, float eps, const RopeParams& p,
                                                      Tensor q_nope, Tensor q_rope, Tensor cache) {
  for (const Tensor* x : std::initializer_list<const Tensor*>{&q, &kv, &q_nope, &q_rope})
    expect(*x, DType::BF16, "mla_rope_and_cache", "tensor");
  const int64_t t = batch.num_tokens(), heads = q.dim(1), nope = q_nope.dim(2), rope = q_rope.dim(2),
                lora = kv.shape.back() - rope;
  const bool fp8 = cache.dtype == DType::U8;  // --kv-dtype fp8
  if (!fp8) expect(cache, DType::BF16, "mla_rope_and_cache", "cache");
  if (q.shape.size() != 3 || q.dim(0) != t || q.dim(2) != nope + rope || q_nope.shape != Shape{t, heads, nope} ||
      q_rope.shape != Shape{t, heads, rope} || kv.rows() != t || lora <= 0 || rope % 2 ||
      (!fp8 && cache.shape.back() != kv.shape.back()) || kv_norm.w.numel() != lora || p.inv_freq.numel() < rope / 2)
    fail("mla_rope_and_cache: q ", shape_str(q.shape), ", kv ", shape_str(kv.shape), ", q_nope ", shape_str(q_nope.shape),
         ", q_rope ", shape_str(q_rope.shape), ", cache ", shape_str(cache.shape), ", norm of ", kv_norm.w.numel(), ", ",
         p.inv_freq.numel(), " frequencies, ", t, " tokens");
  for (int s : batch.slots)  // -1: a padding token, written nowhere
    if (s < -1 || s >= cache.dim(0)) fail("mla_rope_and_cache: slot ", s, " outside the cache's ", cache.dim(0), " slots");
  MlaRopeCacheParams r{};
  r.q = q.ptr<bf16>();
  r.kv = kv.ptr<bf16>();
  r.norm = device_weight(kv_norm);
  r.eps = eps;
  r.q_nope = q_nope.ptr<bf16>();
  r.q_rope = q_rope.ptr<bf16>();
  if (fp8) {
    r.fp8 = latent_fp8_layout(static_cast<int>(lora), static_cast<int>(rope));
    check_latent_fp8_cache(cache, r.fp8, "mla_rope_and_cache");
    r.cache_fp8 = cache.ptr<uint8_t>();
  } else {
    r.cache = cache.ptr<bf16>();
  }
  r.heads = static_cast<int>(heads);
  r.nope = static_cast<int>(nope);
  r.rope = static_cast<int>(rope);
  r.lora = static_cast<int>(lora);
  r.inv_freq = p.inv_freq.ptr<float>();
  r.attention_factor = p.attention_factor;
  r.neox = p.style == RopeStyle::Neox;
  return r;
}

void CudaBackend::mla_rope_and_cache(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                     const Weight& kv_norm, float eps, const RopeParams& p, Tensor q_nope, Tensor q_rope,
                                     Tensor cache) {
  const DeviceBatch& db = device_batch(batch);
  launch_mla_rope_and_cache(db, mla_rope_cache_params(batch, q, kv, kv_norm, eps, p, q_nope, q_rope, cache), stream_);
}

// 1-4 tokens in one launch with W_UK's product (H200, V2-Lite batch 1: see docs/cuda.md); more
// tokens, or shapes the skinny head product does not take, run the two ops.
void CudaBackend::mla_rope_cache_absorb(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                        const Weight& kv_norm, float eps, const RopeParams& p, const Tensor& w_uk,
                                        Tensor q_nope, Tensor q_rope, Tensor q_lat, Tensor cache) {
  const DeviceBatch& db = device_batch(batch);
  MlaRopeCacheParams r = mla_rope_cache_params(batch, q, kv, kv_norm, eps, p, q_nope, q_rope, cache);
  const int64_t t = batch.num_tokens();
  const bool one_launch = t >= 1 && t <= kGemvMaxRows && w_uk.dtype == DType::BF16 &&
                          w_uk.device.kind == DeviceKind::CUDA && w_uk.shape == Shape{r.heads, r.nope, r.lora} &&
                          q_lat.dtype == DType::BF16 && q_lat.shape == Shape{t, r.heads, r.lora} &&
                          head_gemv_fits(t, r.nope, r.lora, q.data, w_uk.data);
  if (!one_launch)
    return Backend::mla_rope_cache_absorb(batch, q, kv, kv_norm, eps, p, w_uk, q_nope, q_rope, q_lat, cache);
  r.q_nope = nullptr;  // read in place
  launch_mla_absorb(db, r, w_uk.ptr<bf16>(), q_lat.ptr<bf16>(), stream_);
}

void CudaBackend::dequantize_latent(const Tensor& rows, int kv_lora_rank, Tensor out) {
  const LatentFp8Layout l = check_dequantize_latent(rows, kv_lora_rank, out);
  expect(out, DType::BF16, "dequantize_latent", "output");
  launch_dequantize_latent(rows.ptr<uint8_t>(), l, rows.rows(), out.ptr<bf16>(), stream_);
}

void CudaBackend::argmax_rows(const Tensor& logits, Tensor ids) {
  expect(logits, DType::F32, "argmax_rows", "logits");
  expect(ids, DType::I32, "argmax_rows", "ids");
  if (ids.numel() != logits.dim(0)) fail("argmax_rows: ", ids.numel(), " ids for ", shape_str(logits.shape));
  bind();
  launch_argmax_rows(logits.ptr<float>(), logits.dim(0), logits.dim(1), ids.ptr<int>(), stream_);
}

void CudaBackend::gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) {
  expect(out, x.dtype, "gather_rows", "output");
  expect(x, out.dtype, "gather_rows", "input");
  if (out.dim(0) != static_cast<int64_t>(rows.size()))
    fail("gather_rows: ", rows.size(), " rows of ", shape_str(x.shape), " into ", shape_str(out.shape));
  if (rows.empty()) return;  // a step whose sequences all go on with their prompts samples nothing
  const int64_t row_bytes = static_cast<int64_t>(x.nbytes() / x.dim(0));
  if (static_cast<int64_t>(out.nbytes() / out.dim(0)) != row_bytes || row_bytes % 2)
    fail("gather_rows: ", rows.size(), " rows of ", shape_str(x.shape), " into ", shape_str(out.shape));
  for (int r : rows)
    if (r < 0 || r >= x.dim(0)) fail("gather_rows: row ", r, " outside ", x.dim(0), " rows");
  // The model gathers the logit rows of the batch, already on the device since begin_forward.
  const int* dev_rows = batch_ && rows == logit_rows_ ? db_.logit_rows : upload_ints(rows, index_dev_);
  launch_gather_rows(x.data, dev_rows, static_cast<int>(rows.size()), row_bytes, out.data, stream_);
}

void CudaBackend::copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) {
  expect(dst, src.dtype, "copy_columns", "destination");
  expect(src, dst.dtype, "copy_columns", "source");
  const int64_t repeat = check_copy_columns(src, src_off, dst, dst_off, n);
  const int64_t src_w = src.shape.back(), dst_w = dst.shape.back(), rows = dst.rows();
  if (rows == 0 || n == 0) return;
  const int64_t es = static_cast<int64_t>(dtype_size(src.dtype));
  const char* from = static_cast<const char*>(src.data) + src_off * es;
  char* to = static_cast<char*>(dst.data) + dst_off * es;
  if (repeat == 1)  // a plain 2D copy
    CUDA_CHECK(cudaMemcpy2DAsync(to, dst_w * es, from, src_w * es, n * es, rows, cudaMemcpyDeviceToDevice, stream_));
  else
    launch_copy_columns(from, src_w * es, to, dst_w * es, rows, n * es, repeat, stream_);
}

void CudaBackend::gather_context(const ForwardBatch& batch, const Tensor& cache, Tensor out) {
  const DeviceBatch& db = device_batch(batch);
  expect(cache, out.dtype, "gather_context", "cache");
  expect(out, cache.dtype, "gather_context", "output");
  const int64_t row_bytes = check_gather_context(batch, cache, out) * static_cast<int64_t>(dtype_size(cache.dtype));
  if (row_bytes % 16 || !aligned16(cache.data) || !aligned16(out.data))
    fail("gather_context: rows of ", row_bytes, " bytes (a multiple of 16 on the GPU)");
  for (const SeqSlice& s : batch.seqs)
    for (int b : s.block_table)
      if (b < 0 || (static_cast<int64_t>(b) + 1) * batch.block_size > cache.dim(0))
        fail("gather_context: block ", b, " outside the cache's ", cache.dim(0), " slots");
  launch_gather_context(db, cache.data, row_bytes, out.data, stream_);
}

}  // namespace dsinfer::cuda
