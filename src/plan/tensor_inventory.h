// Every tensor a checkpoint stores for a model (MTP layers aside), derived from its config:
// the single source for parameter counts, weight bytes, per-GPU shares and linear FLOPs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan_model.h"

namespace dsinfer::plan {

enum class TensorRole {
  Linear,      // a projection the quantized formats quantize
  Embedding,   // embed_tokens: a lookup, no FLOPs, kept in 16 bit
  LmHead,      // the output projection, kept in 16 bit (DeepSeek's FP8 release does the same)
  Norm,        // RMSNorm weights
  Bias,        // linear biases, kept in 16 bit
  Router,      // MoE gate weight, kept in 16 bit
  RouterBias,  // e_score_correction_bias, float32 in every checkpoint
  Absorbed,    // MLA's kv_b_proj: the engine folds it at load into per-head W_UK and W_UV for the
               // absorbed decode (and the expanded prefill) in the activations' dtype, 16 bit
               // whatever the weights' format (32 for a float32 checkpoint); vLLM does too, beside
               // an FP8 kv_b_proj it keeps for prefill. Its bytes are the loaded ones, not the file's.
};

// Whether a group's values multiply activations: they count in FLOPs and matmul parameters.
bool is_product(TensorRole r);

// How a tensor is divided among the GPUs of one pipeline stage.
enum class Shard {
  Replicated,    // each GPU holds all of it: norms, router, MLA's down-projections
  Split,         // divided across the TP group: column/row-parallel linears, vocab-parallel tables
  KvHeads,       // K/V projections: divided across min(tp, kv_heads), replicated beyond
  RoutedExpert,  // a routed expert: divided across the TP group when ep == 1, whole on one of ep GPUs else
};

struct TensorGroup {
  std::string name;  // upstream name; N stands for the layer, E for the expert
  int64_t rows = 0, cols = 1;
  int64_t count = 1;  // identical tensors in the group (one per routed expert)
  TensorRole role = TensorRole::Linear;
  Shard shard = Shard::Replicated;
  bool stored = true;  // false for a tied lm_head: computed with, but not stored twice
  int64_t elements() const { return rows * cols * count; }
};

// Tensors of decoder layer `layer` (attention, norms, dense MLP or MoE).
std::vector<TensorGroup> layer_tensors(const PlanModel& m, int layer);
// embed_tokens, held by the first pipeline stage.
std::vector<TensorGroup> embedding_tensors(const PlanModel& m);
// Final norm and lm_head, held by the last pipeline stage.
std::vector<TensorGroup> head_tensors(const PlanModel& m);
// DeepSeek-V3's multi-token-prediction layer (layer N = num_hidden_layers; none when config.json
// declares no num_nextn_predict_layers): a decoder layer of its own plus enorm, hnorm, eh_proj
// and shared_head.norm. The checkpoint's copies of the embedding and head (embed_tokens,
// shared_head.head) are left out: the engine uses the main model's.
std::vector<TensorGroup> mtp_tensors(const PlanModel& m);
// All of the above but the MTP layer, in checkpoint order.
std::vector<TensorGroup> all_tensors(const PlanModel& m);

// Bytes of a group in a weight format: Linear tensors take the format, the rest (kv_b_proj's
// W_UK and W_UV too) stay in 16 bit (32 for a float32 checkpoint), e_score_correction_bias in 32.
int64_t tensor_bytes(const TensorGroup& t, const WeightFormat& f);

}  // namespace dsinfer::plan
