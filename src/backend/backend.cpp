// The defaults of the optional Backend features: a device without recorded passes runs them,
// one without fused products runs them one by one.
#include "backend/backend.h"

#include "core/error.h"

namespace dsinfer {

bool Backend::record(int, const std::function<void()>& pass) {
  pass();
  return false;
}

bool Backend::replay(int) { return false; }

void Backend::all_gather(const Tensor&, Tensor) {
  fail("all_gather: backend ", name(), " is in no tensor-parallel group");
}

void Backend::rope_and_cache(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                             const RopeParams& p) {
  const int64_t t = batch.num_tokens();
  rope(batch, q, 0, static_cast<int>(q.dim(2)), p);
  rope(batch, k, 0, static_cast<int>(k.dim(2)), p);
  cache_write(batch, k.reshape({t, k.dim(1) * k.dim(2)}), kv.k);
  cache_write(batch, v.reshape({t, v.dim(1) * v.dim(2)}), kv.v);
}

void Backend::rope_cache_attention(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                                   const RopeParams& p, int kv_heads, float scale, Tensor out) {
  rope_and_cache(batch, q, k, v, kv, p);
  attention(batch, q, kv, kv_heads, static_cast<int>(q.dim(2)), static_cast<int>(v.dim(2)), scale, out);
}

void Backend::mla_rope_cache_absorb(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                    const Weight& kv_norm, float eps, const RopeParams& p, const Tensor& w_uk,
                                    Tensor q_nope, Tensor q_rope, Tensor q_lat, Tensor cache) {
  mla_rope_and_cache(batch, q, kv, kv_norm, eps, p, q_nope, q_rope, cache);
  head_matmul(q_nope, w_uk, /*transpose=*/true, q_lat);
}

void Backend::mla_attention_uv(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                               const Tensor& latent_cache, int kv_lora_rank, float scale, const Tensor& w_uv,
                               Tensor out_lat, Tensor out) {
  mla_attention(batch, q_lat, q_rope, latent_cache, kv_lora_rank, scale, out_lat);
  head_matmul(out_lat, w_uv, /*transpose=*/false, out);
}

std::vector<Weight> Backend::upload_weights(const std::vector<Weight>& host, std::vector<Buffer>& keep) {
  std::vector<Weight> out;
  for (const Weight& w : host) out.push_back(upload_weight(w, keep));
  return out;
}

void Backend::linear_many(const Tensor& x, const std::vector<LinearOut>& outs) {
  for (const LinearOut& o : outs) linear(x, *o.weight, o.bias, o.out);
}

void Backend::linear_silu_mul(const Tensor& x, const Weight& gate, const Weight& up, Tensor act, Tensor up_out) {
  linear_many(x, {{&gate, nullptr, act}, {&up, nullptr, up_out}});
  silu_mul(act, up_out, act);
}

void Backend::gated_mlp(const Tensor& x, const Weight& gate, const Weight& up, const Weight& down, Tensor act,
                        Tensor up_out, Tensor out) {
  linear_silu_mul(x, gate, up, act, up_out);
  linear(act, down, nullptr, out);
}

void Backend::moe_experts_residual(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                   const std::vector<ExpertWeights>& experts, const SharedExperts& shared,
                                   Tensor out, const ResidualNorm& r) {
  if (shared.weights) fail("moe_experts_residual: shared experts given as weights to a device that does not fuse them");
  moe_experts(x, ids, weights, experts, out);
  if (shared.out) {
    join_branch();
    add(out, *shared.out);
  }
  add_rmsnorm(r.x, out, *r.norm, r.eps, r.normed);
}

void Backend::moe_gate_route(const Tensor& x, const Weight& gate, const Weight* bias, const MoeRouting& r,
                             Tensor logits, Tensor ids, Tensor weights) {
  linear(x, gate, nullptr, logits);
  moe_route(logits, bias, r, ids, weights);
}

int64_t check_copy_columns(const Tensor& src, int src_off, const Tensor& dst, int dst_off, int n) {
  const int64_t src_w = src.shape.back(), dst_w = dst.shape.back(), rows = src.rows();
  if (rows == 0 && dst.rows() == 0) return 1;
  if (src.dtype != dst.dtype || rows == 0 || dst.rows() % rows != 0 || src_off < 0 || dst_off < 0 || n < 0 ||
      src_off + n > src_w || dst_off + n > dst_w)
    fail("copy_columns: ", n, " columns from ", dtype_name(src.dtype), " ", shape_str(src.shape), " at ", src_off,
         " to ", dtype_name(dst.dtype), " ", shape_str(dst.shape), " at ", dst_off);
  return dst.rows() / rows;
}

int64_t check_gather_context(const ForwardBatch& batch, const Tensor& cache, const Tensor& out) {
  const int64_t width = cache.shape.back();
  if (out.dtype != cache.dtype || out.rows() != batch.context_starts().back() || out.shape.back() != width)
    fail("gather_context: ", batch.context_starts().back(), " context rows of ", dtype_name(cache.dtype), " ",
         shape_str(cache.shape), " into ", dtype_name(out.dtype), " ", shape_str(out.shape));
  return width;
}

void check_latent_fp8_cache(const Tensor& cache, const LatentFp8Layout& l, const char* op) {
  if (cache.dtype != DType::U8 || cache.shape.size() != 2 || cache.shape[1] != l.row_bytes)
    fail(op, ": an FP8 latent cache of ", l.lora, " + ", l.rope, " values has U8 rows of ", l.row_bytes, " bytes, not ",
         dtype_name(cache.dtype), " ", shape_str(cache.shape));
}

LatentFp8Layout check_dequantize_latent(const Tensor& rows, int kv_lora_rank, const Tensor& out) {
  const int width = out.shape.empty() ? 0 : static_cast<int>(out.shape.back());
  if (kv_lora_rank <= 0 || width < kv_lora_rank || out.rows() != rows.rows())
    fail("dequantize_latent: ", shape_str(rows.shape), " rows of ", kv_lora_rank, " latent values into ",
         shape_str(out.shape));
  const LatentFp8Layout l = latent_fp8_layout(kv_lora_rank, width - kv_lora_rank);
  check_latent_fp8_cache(rows, l, "dequantize_latent");
  return l;
}

}  // namespace dsinfer
