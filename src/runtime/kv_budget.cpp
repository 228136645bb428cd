#include "runtime/kv_budget.h"

#include "core/error.h"
#include "plan/activations.h"
#include "plan/kv_cache.h"

namespace dsinfer {

KvBudget plan_kv_cache(const Model& model, const Backend& backend, double memory_utilization, int step_tokens,
                       int logit_rows, int block_size) {
  if (memory_utilization <= 0.0 || memory_utilization > 1.0)
    fail("memory utilization must be in (0, 1] (got ", memory_utilization, ")");
  const MemoryInfo mem = backend.memory_info();
  const int64_t weights = static_cast<int64_t>(model.weight_bytes());
  // The engine's expert parallelism has no all-to-all: each rank's buffers hold every pair.
  const plan::ActivationEstimate step =
      plan::estimate_activations(model.config(), model.layout(), step_tokens, logit_rows, /*all_pairs=*/true);
  const int64_t workspace = (model.has_mtp() ? plan::with_mtp_scratch(step) : step).total();
  KvBudget b;
  b.bytes = plan::kv_cache_bytes_available(static_cast<double>(mem.total), memory_utilization, weights, workspace);
  const double gib = 1024.0 * 1024.0 * 1024.0;
  b.derivation = cat(memory_utilization, " x ", mem.total / gib, " GiB - weights ", weights / gib, " GiB - workspace ",
                     workspace / gib, " GiB = ", b.bytes / gib, " GiB");
  if (b.bytes <= 0) fail("no memory left for the KV cache on ", backend.name(), ": ", b.derivation);
  b.tokens = plan::kv_cache_max_tokens(b.bytes, static_cast<int64_t>(model.kv_spec().bytes_per_token()), block_size);
  return b;
}

}  // namespace dsinfer
