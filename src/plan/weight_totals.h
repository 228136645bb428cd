// The tensor inventory summed per layer and per kind of sharding, in one weight format:
// everything layout arithmetic needs, so trying a layout costs O(layers), not O(tensors).
#pragma once
#include <array>
#include <vector>

#include "plan/layout.h"
#include "plan/tensor_inventory.h"

namespace dsinfer::plan {

// One number per Shard kind.
struct ShardSums {
  std::array<double, 4> v{};
  double& operator[](Shard s) { return v[static_cast<int>(s)]; }
  double operator[](Shard s) const { return v[static_cast<int>(s)]; }
  ShardSums& operator+=(const ShardSums& o);
  // What one GPU holds of these sums under the layout.
  double per_gpu(const ModelConfig& c, const Layout& l) const;
};

struct WeightSums {
  ShardSums stored_bytes;   // held in GPU memory
  ShardSums read_bytes;     // read by a forward step (everything but the embedding table)
  ShardSums matmul_params;  // weights a token multiplies (linear layers, kv_b_proj, router, lm_head)
  WeightSums& operator+=(const WeightSums& o);
};

struct WeightTotals {
  WeightFormat format;
  std::vector<WeightSums> layers;  // decoder layers
  WeightSums embedding;            // first stage
  WeightSums head;                 // last stage: final norm and lm_head
  ShardSums tied_head_copy;        // a tied lm_head's bytes, stored by a last stage that is not the first
  WeightSums mtp;                  // the MTP layer (mtp_tensors), when it is loaded: last stage

  static WeightTotals build(const PlanModel& m, const WeightFormat& f);
  // The sums of the tensors a pipeline stage holds.
  WeightSums stage(const Stage& s) const;
};

}  // namespace dsinfer::plan
