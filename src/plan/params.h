// Parameter counts and weight bytes: sums over the tensor inventory.
#pragma once
#include <cstdint>

#include "plan/plan_model.h"

namespace dsinfer::plan {

struct ParamCounts {
  int64_t total = 0;      // elements the checkpoint stores (MTP layers and FP8 scales excluded)
  int64_t active = 0;     // used by one token: routed experts count num_experts_per_tok of n_routed_experts
  int64_t embedding = 0;  // embed_tokens (+ lm_head when untied)
  int64_t routed_experts = 0;  // all routed experts' weights
};

ParamCounts count_params(const PlanModel& m);
// Bytes of all stored weights in the format (scale tensors included).
int64_t weight_bytes(const PlanModel& m, const WeightFormat& f);

}  // namespace dsinfer::plan
