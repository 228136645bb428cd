// Sizing the KV cache from the device's memory, with the same formula `dsinfer plan` uses:
// total * utilization - weights - activation workspace, in whole blocks. A tensor-parallel model's
// figures are one device's (its share of the weights and of the workspace, on rank 0's device).
#pragma once
#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "model/model.h"

namespace dsinfer {

struct KvBudget {
  int64_t tokens = 0;
  int64_t bytes = 0;
  std::string derivation;  // the figures behind it, for the log
};

// `logit_rows`: the most rows of logits a step samples (its sequences, or with drafts every token).
KvBudget plan_kv_cache(const Model& model, const Backend& backend, double memory_utilization, int step_tokens,
                       int logit_rows, int block_size);

}  // namespace dsinfer
