// dsinfer plan: ModelConfig + GPU + options -> parameters, memory, speed, layout, cost, and
// whether it fits (with what to change when it does not). Pure functions; no GPU is touched.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plan/activations.h"
#include "plan/communication.h"
#include "plan/flops.h"
#include "plan/hardware_catalog.h"
#include "plan/layout.h"
#include "plan/params.h"
#include "plan/plan_model.h"
#include "plan/roofline.h"

namespace dsinfer::plan {

// The most GPUs the automatic layout search tries.
inline constexpr int kMaxSearchGpus = 1024;

struct PlanOptions {
  std::optional<WeightDtype> weights;  // none: as the checkpoint stores them
  KvDtype kv = KvDtype::BF16;
  int64_t context = 4096;      // tokens per sequence (prompt + output)
  int64_t batch = 1;           // concurrent sequences
  int64_t prompt_len = 0;      // for prefill and TTFT; 0: the whole context
  int64_t step_tokens = 8192;  // the engine's token budget per step (chunked prefill)
  GpuSpec gpu = find_gpu("H100-SXM");
  int num_gpus = 0;            // 0: the fewest that fit
  int tp = 0, pp = 0, ep = 0;  // 0: chosen by the search
  double mem_util = 0.9;       // fraction of GPU memory the engine may use
  std::optional<double> price_per_gpu_hour;
  // The MTP layer loaded for speculative decoding: on the last pipeline stage, its weights, a layer
  // of KV cache and the scratch of its passes.
  bool mtp = false;
};

// Memory of one GPU of the stage whose KV capacity is smallest.
struct GpuMemory {
  double capacity_bytes = 0, usable_bytes = 0;  // datasheet; capacity x mem_util
  int64_t weight_bytes = 0;
  ActivationEstimate activations;
  int64_t kv_bytes_available = 0;  // usable - weights - activations (negative: short by that much)
  int64_t kv_bytes_per_token = 0;  // this GPU's layers and heads
  int64_t kv_max_tokens = 0;       // in whole blocks
};

struct PlanResult {
  std::string model_name;
  ModelConfig config;
  PlanOptions options;   // as given, prompt_len resolved
  WeightFormat weights;  // resolved (as-stored made concrete)
  ParamCounts params;
  int64_t weight_bytes = 0;        // all stored weights in the format
  int64_t kv_bytes_per_token = 0;  // model-wide: all layers, unsharded
  Layout layout;
  GpuMemory memory;
  int64_t kv_max_tokens = 0;       // whole deployment (every replica)
  int64_t kv_max_sequences = 0;    // of `context` tokens, whole deployment
  TokenFlops decode_flops, prefill_flops;
  DecodeEstimate decode;
  PrefillEstimate prefill;
  CommPerToken comm;
  std::optional<double> usd_per_million_output_tokens;
  bool fits = false;
  std::vector<std::string> problems;  // why it does not fit
  std::vector<std::string> advice;    // changes that make it fit
  std::vector<std::string> warnings;
};

// Chooses the layout (the fewest GPUs that fit, then the fastest decode) and explains a
// failure to fit. Throws dsinfer::Error on impossible options (a pinned invalid layout...).
PlanResult make_plan(const PlanModel& m, const PlanOptions& o);
// The plan make_plan chooses, without the advice.
PlanResult best_plan(const PlanModel& m, const PlanOptions& o);
// The plan for one given layout, without advice.
PlanResult plan_for_layout(const PlanModel& m, const PlanOptions& o, const Layout& l);
// The weight format the options select for the model.
WeightFormat resolve_weights(const PlanModel& m, const PlanOptions& o);

}  // namespace dsinfer::plan
