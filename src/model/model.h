// Model: a causal language model over backend ops. It knows nothing of requests: it runs one
// packed ForwardBatch against a paged KvCache and returns the logits of the requested rows.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/shard.h"
#include "model/weight_quantization.h"
#include "plan/layout.h"

namespace dsinfer {

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  virtual KvCacheSpec kv_spec() const = 0;
  // Bytes of the weights on the device (on each device of a tensor-parallel group).
  virtual size_t weight_bytes() const = 0;
  // How the model is split over devices (TensorParallelModel: tp, and ep = tp under expert
  // parallelism), each holding weight_bytes() and a cache of kv_spec(); as `dsinfer plan` counts.
  virtual plan::Layout layout() const { return {}; }
  // Why the model can run no more steps (a tensor-parallel group stopped after a rank failed);
  // empty while it can. Safe to call from any thread (a server's health check).
  virtual std::string failure() const { return {}; }
  // Runs the batch, writing its new keys/values into `cache`. Returns logits [logit_rows, vocab]
  // (act dtype F32) on the backend's device, valid until the next call. Not thread-safe.
  virtual Tensor forward(const ForwardBatch& batch, KvCache& cache) = 0;
  // Decode batches of up to max_batch sequences over `cache` run from recorded passes (CUDA
  // graphs) where the backend records them, recorded now; 0 turns that off. `drafts`: so do
  // speculative decoding's verification steps (StepGraphs), recorded now too.
  virtual void record_decode_steps(int max_batch, KvCache& cache, bool drafts = false) = 0;

  // DeepSeek's multi-token-prediction (MTP) layer, speculative decoding's drafter when the model
  // loaded it (ModelOptions::mtp): its cache is the KV cache's last layer.
  virtual bool has_mtp() const { return false; }
  // Runs the MTP layer over `batch`, whose token i follows position batch.positions[i] (the layer
  // at position p sees the token of p + 1), from row hidden_rows[i] of the final hidden states
  // (after the final norm) of the tokens of the last forward() (call it after that forward, before
  // the next), or with `chained`, of the layer's own output at the logit rows of the last
  // mtp_forward (a draft after a draft). Writes the layer's cache entries; returns the logits
  // [logit rows, vocab] (F32), which guess the token after each logit row's next one, valid
  // until the next call.
  virtual Tensor mtp_forward(const ForwardBatch& batch, const std::vector<int>& hidden_rows, KvCache& cache,
                             bool chained = false);
};

// How the MLA layers of a DeepSeek model attend in steps with a prompt (decode steps always take
// the absorbed form): absorbed (W_UK folded into the query, over the latent cache), expanded
// (per-head keys and values made from the latent, then flash attention), or auto: expanded where
// it does fewer FLOPs and fits the absorbed form's scratch (mla_attention.h).
enum class MlaPrefill { Auto, Absorbed, Expanded };
MlaPrefill parse_mla_prefill(const std::string& s);  // "auto", "absorbed" or "expanded"

// What the KV cache stores: the activation dtype (auto: f32 on the CPU, bf16 on a GPU), or for
// MLA models the FP8 latent row (core/latent_fp8.h: e4m3 with a scale per 128 values, the rope
// key in bf16), 57 % of bf16's bytes for DeepSeek-V3.
enum class KvCacheDtype { Auto, Fp8 };
KvCacheDtype parse_kv_cache_dtype(const std::string& s);  // "auto" or "fp8"

struct ModelOptions {
  MlaPrefill mla_prefill = MlaPrefill::Auto;
  // This model's rank in a tensor-parallel group, whose backend is that rank of the group's
  // backends (model/shard.h).
  Shard shard;
  // Expert parallelism: a rank of a group holds 1/size of the routed experts whole, instead of
  // 1/size of every expert's features (moe.h).
  bool expert_parallel = false;
  // Load the checkpoint's multi-token-prediction layer (DeepSeek-V3 / R1's layer
  // num_hidden_layers) for Model::mtp_forward; throws when the model has none.
  bool mtp = false;
  // Linear weights stored in 16 or 32 bit become FP8 block-scaled as they load
  // (model/weight_quantization.h); load_model runs the config quantized_config gives.
  Quantization quantization = Quantization::None;
  KvCacheDtype kv_dtype = KvCacheDtype::Auto;
};

// Throws, naming what is wrong, for a batch no model may run: empty, or with a token outside
// [0, vocab). Models check it before any device work (a tensor-parallel group before its ranks
// start, so that a bad batch fails alone and leaves the group whole).
void check_batch(const ForwardBatch& batch, int vocab);

// Loads a Hugging Face model directory onto the backend; throws on unsupported architectures,
// missing or malformed tensors.
std::unique_ptr<Model> load_model(const ModelDir& dir, Backend& backend, const ModelOptions& options = {});
// A model over tensors from anywhere (a checkpoint, or dummy weights); the ranks of a
// tensor-parallel group share one store.
std::unique_ptr<Model> load_model(const ModelConfig& config, std::shared_ptr<const TensorStore> store, Backend& backend,
                                  const ModelOptions& options = {});

}  // namespace dsinfer
