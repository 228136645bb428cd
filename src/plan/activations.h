// The activation workspace of one engine step, per GPU: what a profile forward pass of the
// step's token budget would peak at, plus the runtime's fixed allocations.
#pragma once
#include <cstdint>
#include <string>

#include "model/model_config.h"
#include "plan/layout.h"

namespace dsinfer::plan {

// CUDA context, cuBLASLt workspace and NCCL buffers: fixed, whatever the model.
inline constexpr int64_t kRuntimeOverheadBytes = int64_t(512) << 20;
// Scratch an MLA layer's expanded prefill may take where the absorbed form takes q_lat and its
// latent output (per-head keys and values of the step's contexts, in bf16; the tensors both forms
// hold come on top): the engine expands a chunk over a cached prefix while its keys fit the larger
// of the two, so the workspace reserves it. 512 MiB is V2-Lite's keys for 32k tokens of context.
inline constexpr int64_t kMlaExpandedScratchBytes = int64_t(512) << 20;

struct ActivationEstimate {
  int64_t step_tokens = 0;      // tokens one step processes (the engine's per-step budget)
  int64_t residual_bytes = 0;   // hidden state and residual, held across the layer
  int64_t attention_bytes = 0;  // q, k, v (MLA: latent and its decompressed k/v) and the output
  int64_t mlp_bytes = 0;        // the larger of the dense MLP and the MoE (router, expert buffers)
  int64_t logits_bytes = 0;     // float32 logits of the sequences sampled this step
  int64_t runtime_bytes = kRuntimeOverheadBytes;
  int64_t mtp_bytes = 0;        // the MTP layer's passes' own scratch (with_mtp_scratch)
  // Layers run one after another, so only the larger of attention and MLP is live at once.
  int64_t total() const;
};

// The estimate with the scratch of speculative decoding's MTP passes added: they run one layer
// and the head after the step, beside the step's scratch (whose hidden states they read), so as
// much again as the step's, less the runtime's fixed part.
ActivationEstimate with_mtp_scratch(ActivationEstimate a);

// step_tokens: tokens per step per data-parallel replica; sampled: sequences sampled per step.
// `all_pairs`: expert parallelism without an all-to-all (dsinfer's engine, docs/parallel.md):
// every GPU holds every token's pairs at full width, where one with an all-to-all holds its share.
ActivationEstimate estimate_activations(const ModelConfig& c, const Layout& l, int64_t step_tokens, int64_t sampled,
                                        bool all_pairs = false);

}  // namespace dsinfer::plan
