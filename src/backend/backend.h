// Backend: the op interface every device implements. Model code is written once over these ops;
// a new device or precision is new op implementations, never a new model file.
// Activations are F32 on the CPU reference; a device may choose another activation dtype.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/forward_batch.h"
#include "backend/weight.h"
#include "core/latent_fp8.h"
#include "core/tensor.h"

namespace dsinfer {

enum class RopeStyle {
  Neox,         // rotate_half over the two halves of the rotary dims (Llama, Qwen2)
  Interleaved,  // rotate pairs (2i, 2i+1) (DeepSeek V2/V3, as their complex / interleave form)
};

struct RopeParams {
  Tensor inv_freq;        // F32 [rot_dim / 2] on the device
  float attention_factor = 1.0f;  // YaRN mscale applied to cos and sin
  RopeStyle style = RopeStyle::Neox;
};

struct MoeRouting {
  int top_k = 1, n_group = 1, topk_group = 1;
  bool sigmoid = false;      // scoring: sigmoid (V3) or softmax (V2)
  bool group_limited = false;  // select topk_group groups first
  bool group_by_top2_sum = false;  // V3 group score = sum of its top-2 (noaux_tc), else max
  bool normalize = false;    // norm_topk_prob
  float scaling = 1.0f;      // routed_scaling_factor
};

struct LinearOut {
  const Weight* weight = nullptr;
  const Weight* bias = nullptr;  // none when null
  Tensor out;
};

// The residual step that ends a decoder block: x += the block's output, then normed =
// rmsnorm(x) * norm, the next block's input.
struct ResidualNorm {
  Tensor x;
  const Weight* norm = nullptr;
  float eps = 0.0f;
  Tensor normed;
};

struct ExpertWeights {
  Weight gate, up, down;
};

// A MoE block's shared experts at its end (moe_experts_residual): their output, computed by the
// caller (on a branch), or their weights, for a device that runs them in the routed experts'
// launches (fuses_shared_experts); neither when the model has none.
struct SharedExperts {
  const Tensor* out = nullptr;
  const ExpertWeights* weights = nullptr;
};

// One layer's paged KV cache. GQA: k and v are [slots, kv_heads * head_dim].
// MLA: k is the latent [slots, kv_lora_rank + rope_dim] and v is empty; with --kv-dtype fp8, k is
// U8 [slots, row bytes], FP8 latent rows (core/latent_fp8.h), which the MLA ops read and write.
// Packed (MLA's expanded prefill): k and v are [total context, kv_heads * dim], each sequence's
// keys at positions 0..context_len - 1 back to back (ForwardBatch::context_starts), no pages.
struct KvLayer {
  Tensor k, v;
  bool packed = false;
};

struct MemoryInfo {
  size_t free = 0, total = 0;  // bytes of the device's memory
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  // Activation dtype this backend computes in.
  virtual DType act_dtype() const = 0;

  virtual Buffer alloc(size_t bytes) = 0;
  virtual void copy_to_device(const void* host, Tensor dst) = 0;
  virtual void copy_to_host(const Tensor& src, void* host) = 0;
  virtual void fill_zero(Tensor t) = 0;
  // Makes a host (e.g. memory-mapped) weight usable on this device; `keep` owns any copy made.
  virtual Weight upload_weight(const Weight& host, std::vector<Buffer>& keep) = 0;
  // Uploads weights a layer applies to one input (q/k/v); a device may place them back to back in
  // one allocation, so that together they form one matrix its linear_many can run as a single
  // product. The default uploads each alone.
  virtual std::vector<Weight> upload_weights(const std::vector<Weight>& host, std::vector<Buffer>& keep);
  // Called once per forward with the batch metadata, before any op that uses it.
  virtual void begin_forward(const ForwardBatch& batch) = 0;
  // Waits for queued work.
  virtual void synchronize() = 0;

  // Recorded forward passes (CUDA graphs on a GPU): record(key, pass) runs `pass` and keeps its
  // device work under `key`; replay(key) reruns that work against the metadata of the latest
  // begin_forward, whose batch must have the same tokens and sequences as the recorded one.
  // `pass` must issue the same ops on the same tensors each time it runs; the ops plan their
  // launches without the batch's context lengths while recording. record returns false when the
  // pass could not be recorded (it still ran); replay returns false when there is no valid
  // recording (e.g. a scratch buffer it used has since moved), and the caller runs the pass.
  virtual bool can_record() const { return false; }
  virtual bool record(int key, const std::function<void()>& pass);
  virtual bool replay(int key);
  virtual MemoryInfo memory_info() const = 0;

  // A branch: the ops queued between begin_branch() and end_branch() follow everything queued
  // before begin_branch, but the ops queued after end_branch need not wait for them until
  // join_branch() (a GPU runs the two lines concurrently: one streams the branch's weights while
  // the other's short kernels run). The two lines must touch disjoint tensors until the join, and
  // a branch holds only products, pointwise ops and norms; a backend may run it in line, as the
  // default does (all three do nothing). Branches do not nest; every branch is joined before the
  // forward pass ends.
  virtual void begin_branch() {}
  virtual void end_branch() {}
  virtual void join_branch() {}

  // Tensor parallelism: the backends of one group (make_backend_group) each hold a part of every
  // split product. all_reduce_sum makes x the sum of x over the group's ranks, in place; every
  // rank calls it with the same shape, the calls in the same order. A backend alone (the default)
  // has nothing to add.
  virtual void all_reduce_sum(Tensor x) { (void)x; }
  // gathered [size, part's shape] = every rank's part, in rank order (same shapes everywhere).
  virtual void all_gather(const Tensor& part, Tensor gathered);
  // A rank failed: this rank's collectives fail from now on instead of waiting for it forever.
  virtual void abort_group() {}

  // out[t] = table[tokens[t] - first_id] where the table holds the rows of ids [first_id,
  // first_id + rows), zeros for other tokens: a tensor-parallel rank's slice of the vocabulary,
  // whose sum over the group is the lookup. The whole table has first_id 0 (the model checks
  // that every token lies in its vocabulary).
  virtual void embedding(const ForwardBatch& batch, const Weight& table, int64_t first_id, Tensor out) = 0;
  // out = rmsnorm(x) * w; x and out may alias.
  virtual void rmsnorm(const Tensor& x, const Weight& w, float eps, Tensor out) = 0;
  // x += y
  virtual void add(Tensor x, const Tensor& y) = 0;
  // x += y, then out = rmsnorm(x) * w: the residual add and the next norm in one pass.
  virtual void add_rmsnorm(Tensor x, const Tensor& y, const Weight& w, float eps, Tensor out) = 0;
  // out[M, N] = x[M, K] * W[N, K]^T (+ bias)
  virtual void linear(const Tensor& x, const Weight& w, const Weight* bias, Tensor out) = 0;
  // Several products of the same x (q/k/v, gate/up): each out = x W^T (+ bias). A device may run
  // them as one pass; the default runs each linear.
  virtual void linear_many(const Tensor& x, const std::vector<LinearOut>& outs);
  // out = silu(gate) * up
  virtual void silu_mul(const Tensor& gate, const Tensor& up, Tensor out) = 0;
  // The SiLU-gated MLP's first half: act = silu(x gate^T) * (x up^T), with up_out [T, N] scratch
  // for x up^T. A device may run it as one pass (decode); the default runs linear_many, silu_mul.
  virtual void linear_silu_mul(const Tensor& x, const Weight& gate, const Weight& up, Tensor act, Tensor up_out);
  // The SiLU-gated MLP: out = (silu(x gate^T) * (x up^T)) down^T, with act and up_out [T, N]
  // scratch. A device may fold the activation into either product's pass; the default runs
  // linear_silu_mul, then linear.
  virtual void gated_mlp(const Tensor& x, const Weight& gate, const Weight& up, const Weight& down, Tensor act,
                         Tensor up_out, Tensor out);
  // Rotates dims [offset, offset + rot_dim) of every head of x [T, heads, head_stride] in place,
  // at each token's position.
  virtual void rope(const ForwardBatch& batch, Tensor x, int offset, int rot_dim, const RopeParams& p) = 0;
  // Writes src [T, width] to the cache rows of the batch's slots.
  virtual void cache_write(const ForwardBatch& batch, const Tensor& src, Tensor cache) = 0;
  // GQA's step between projections and attention: rope over every dim of q [T, Hq, D] and
  // k [T, Hk, D], then k and v [T, Hk, Dv] into the cache. A device may do it in one pass; the
  // default runs rope twice and cache_write twice.
  virtual void rope_and_cache(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                              const RopeParams& p);
  // MLA's step between projections and attention, per token: q [T, H, nope + rope] -> q_nope
  // [T, H, nope] and the rotated q_rope [T, H, rope]; kv [T, lora + rope] (the kv_a projection)
  // -> the latent cache row [rmsnorm(kv[:lora]) * kv_norm, rope(kv[lora:])] at the token's slot
  // (none for slot -1). kv is only read.
  virtual void mla_rope_and_cache(const ForwardBatch& batch, const Tensor& q, const Tensor& kv, const Weight& kv_norm,
                                  float eps, const RopeParams& p, Tensor q_nope, Tensor q_rope, Tensor cache) = 0;
  // mla_rope_and_cache, then q_lat [T, H, lora] = q_nope . w_uk per head (w_uk [H, nope, lora]:
  // head_matmul transposed): absorbed decode's query as one op, which a device may run as one
  // pass that reads q's nope part in place and leaves q_nope unwritten.
  virtual void mla_rope_cache_absorb(const ForwardBatch& batch, const Tensor& q, const Tensor& kv,
                                     const Weight& kv_norm, float eps, const RopeParams& p, const Tensor& w_uk,
                                     Tensor q_nope, Tensor q_rope, Tensor q_lat, Tensor cache);
  // Causal GQA attention over the paged cache (the batch's new keys already written):
  // q [T, Hq, D] -> out [T, Hq, Dv].
  virtual void attention(const ForwardBatch& batch, const Tensor& q, const KvLayer& kv, int kv_heads,
                         int head_dim, int v_head_dim, float scale, Tensor out) = 0;
  // rope_and_cache, then attention of q over the cache (head dims q.dim(2) and v.dim(2)). A device
  // may fold both into one pass where it can (decode steps); q and k are then left unrotated. The
  // default runs the two ops.
  virtual void rope_cache_attention(const ForwardBatch& batch, Tensor q, Tensor k, const Tensor& v, const KvLayer& kv,
                                    const RopeParams& p, int kv_heads, float scale, Tensor out);
  // Absorbed MLA attention over the latent cache [slots, kv_lora + rope]:
  // scores = q_lat . c + q_rope . k_rope; out_lat [T, H, kv_lora] = softmax(scores * scale) . c.
  virtual void mla_attention(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                             const Tensor& latent_cache, int kv_lora_rank, float scale, Tensor out_lat) = 0;
  // mla_attention into out_lat, then out [T, H, v] = w_uv[h] out_lat[t, h] per head (head_matmul,
  // w_uv [H, v, kv_lora]): absorbed attention's output as one op, which a device may run as the
  // attention and one pass that merges its splits of the keys and applies w_uv, leaving out_lat
  // unwritten. The default runs the two ops.
  virtual void mla_attention_uv(const ForwardBatch& batch, const Tensor& q_lat, const Tensor& q_rope,
                                const Tensor& latent_cache, int kv_lora_rank, float scale, const Tensor& w_uv,
                                Tensor out_lat, Tensor out);
  // Per-head matrices w [H, N, K]: out[t, h] = w[h] x[t, h] (x [T, H, K] -> out [T, H, N]), or with
  // `transpose` out[t, h] = w[h]^T x[t, h] (x [T, H, N] -> out [T, H, K]).
  virtual void head_matmul(const Tensor& x, const Tensor& w, bool transpose, Tensor out) = 0;
  // Router: logits [T, E] (+ selection bias) -> top-k expert ids I32 [T, k] and weights F32 [T, k].
  virtual void moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) = 0;
  // Expert parallelism: ids I32 [T, k] of all experts become ids among the `count` experts from
  // `first` (id - first), and -1 for the others, which moe_experts skips.
  virtual void moe_local_ids(Tensor ids, int first, int count) = 0;
  // The router's product and the routing: logits F32 [T, E] = x gate^T, then moe_route. A device
  // may run both as one launch; the default runs the two ops.
  virtual void moe_gate_route(const Tensor& x, const Weight& gate, const Weight* bias, const MoeRouting& r,
                              Tensor logits, Tensor ids, Tensor weights);
  // out[t] = sum_j weights[t, j] * expert_{ids[t, j]}(x[t]) with SiLU-gated experts; a pair whose
  // id is outside [0, experts) adds nothing (an expert held by another rank: moe_local_ids).
  virtual void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                           const std::vector<ExpertWeights>& experts, Tensor out) = 0;
  // The end of a MoE block: moe_experts into out, out += the shared experts' output (shared.out:
  // from a branch, joined first; shared.weights: computed here, where fuses_shared_experts says
  // so), then the residual step r with out. A device may do the combine of the experts' outputs,
  // the add and the step in one pass.
  virtual void moe_experts_residual(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                    const std::vector<ExpertWeights>& experts, const SharedExperts& shared,
                                    Tensor out, const ResidualNorm& r);
  // Whether moe_experts_residual takes the shared experts as weights for routing ids [T, k] over
  // these experts, and runs them in the routed experts' launches; the default never does.
  virtual bool fuses_shared_experts(const Tensor& ids, const std::vector<ExpertWeights>& experts,
                                    const ExpertWeights& shared) {
    (void)ids, (void)experts, (void)shared;
    return false;
  }
  // ids[r] = argmax of logits row r (F32 [rows, vocab] -> I32 [rows]; first index on ties), so
  // greedy sampling moves only ids to the host; -1 for a row that holds a NaN (no token is right).
  virtual void argmax_rows(const Tensor& logits, Tensor ids) = 0;
  // out[i] = x[rows[i]]
  virtual void gather_rows(const Tensor& x, const std::vector<int>& rows, Tensor out) = 0;
  // Viewing src as [rows, width] and dst as [rows * k, width] (k >= 1 a whole number, each source
  // row repeated k times in a row): dst[r, dst_off + i] = src[r / k, src_off + i] for i < n.
  virtual void copy_columns(const Tensor& src, int src_off, Tensor dst, int dst_off, int n) = 0;
  // out [total context, width] = each sequence's cache rows at positions 0..context_len - 1, the
  // sequences back to back (ForwardBatch::context_starts), from cache [slots, width].
  virtual void gather_context(const ForwardBatch& batch, const Tensor& cache, Tensor out) = 0;
  // FP8 latent rows U8 [n, row bytes] (core/latent_fp8.h, of kv_lora_rank latent values) -> out
  // [n, kv_lora_rank + rope] in the activation dtype.
  virtual void dequantize_latent(const Tensor& rows, int kv_lora_rank, Tensor out) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
// Argument checks every device shares (they throw naming the op and the shapes): copy_columns
// returns its row repeat k, gather_context the row width.
int64_t check_copy_columns(const Tensor& src, int src_off, const Tensor& dst, int dst_off, int n);
int64_t check_gather_context(const ForwardBatch& batch, const Tensor& cache, const Tensor& out);
// An FP8 latent cache must be U8 rows of l.row_bytes; dequantize_latent's rows and output must
// match (returns their layout). Both throw naming `op` and the shapes.
void check_latent_fp8_cache(const Tensor& cache, const LatentFp8Layout& l, const char* op);
LatentFp8Layout check_dequantize_latent(const Tensor& rows, int kv_lora_rank, const Tensor& out);

// Creates the backend for a device ("cpu", "cuda", "cuda:N"); throws when it is not built in.
std::unique_ptr<Backend> make_backend(Device device);
// A tensor-parallel group of `size` backends, rank r on device `first` + r (CUDA: one GPU each,
// summed through NCCL; CPU: host threads sharing memory). size 1: make_backend(first).
std::vector<std::unique_ptr<Backend>> make_backend_group(Device first, int size);

}  // namespace dsinfer
