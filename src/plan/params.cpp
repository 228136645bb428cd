#include "plan/params.h"

#include "plan/tensor_inventory.h"

namespace dsinfer::plan {

ParamCounts count_params(const PlanModel& m) {
  ParamCounts p;
  const ModelConfig& c = m.config;
  for (const TensorGroup& t : all_tensors(m)) {
    if (!t.stored) continue;
    p.total += t.elements();
    if (t.role == TensorRole::Embedding || t.role == TensorRole::LmHead) p.embedding += t.elements();
    if (t.shard == Shard::RoutedExpert) {
      p.routed_experts += t.elements();
      p.active += t.rows * t.cols * c.num_experts_per_tok;
    } else {
      p.active += t.elements();
    }
  }
  return p;
}

int64_t weight_bytes(const PlanModel& m, const WeightFormat& f) {
  int64_t bytes = 0;
  for (const TensorGroup& t : all_tensors(m))
    if (t.stored) bytes += tensor_bytes(t, f);
  return bytes;
}

}  // namespace dsinfer::plan
