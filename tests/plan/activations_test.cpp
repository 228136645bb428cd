// The activation workspace of expert parallelism with and without an all-to-all.
#include <gtest/gtest.h>

#include "plan/activations.h"
#include "plan/model_catalog.h"

namespace dsinfer::plan {
namespace {

// With an all-to-all a GPU holds its 1/8 of the pairs at full width; without one (dsinfer's
// engine) every pair: tokens x top-8 x (gate, up, act of 2048 + the 7168-wide output) bf16 values.
TEST(PlanActivations, ExpertParallelWithoutAllToAllHoldsEveryPairAtFullWidth) {
  const ModelConfig v3 = load_plan_model("deepseek-v3").config;
  Layout ep;
  ep.tp = ep.ep = 8;
  const ActivationEstimate a2a = estimate_activations(v3, ep, 8192, 64);
  const ActivationEstimate all = estimate_activations(v3, ep, 8192, 64, /*all_pairs=*/true);
  const int64_t per_pair = 3 * 2048 + 7168;
  EXPECT_EQ(all.mlp_bytes - a2a.mlp_bytes, int64_t{8192} * 8 * (per_pair - per_pair / 8) * 2);
  Layout tp;
  tp.tp = 8;  // without expert parallelism the flag changes nothing
  EXPECT_EQ(estimate_activations(v3, tp, 8192, 64, true).mlp_bytes, estimate_activations(v3, tp, 8192, 64).mlp_bytes);
}

}  // namespace
}  // namespace dsinfer::plan
