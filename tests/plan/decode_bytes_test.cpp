// The bytes a decode step reads on one device (dsinfer bench's roofline) against figures derived
// by hand.
#include <gtest/gtest.h>

#include "plan/decode_bytes.h"
#include "plan/model_catalog.h"

namespace dsinfer::plan {
namespace {

TEST(PlanDecodeBytes, DenseReadsEveryWeightButTheEmbeddingAndTheCache) {
  const ModelConfig q7 = load_plan_model("deepseek-r1-distill-qwen-7b").config;
  // bf16: 2 x (7,615,616,512 params - the 152,064 x 3,584 embedding table); the KV cache:
  // 28 layers x (k + v) x 4 heads x 128 x 2 bytes = 57,344 bytes a token.
  const double weights = 2.0 * (7615616512.0 - 152064.0 * 3584), per_token = 28.0 * 2 * 4 * 128 * 2;
  EXPECT_NEAR(decode_step_bytes(q7, 1, 544, 2), weights + 544 * per_token, 1e-4 * weights);
  EXPECT_NEAR(decode_step_bytes(q7, 64, 1120, 2), weights + 64 * 1120 * per_token, 1e-4 * weights);
  // f32 cache values (the CPU reference) double the cache's bytes, not the weights'.
  EXPECT_NEAR(decode_step_bytes(q7, 64, 1120, 4), weights + 2 * 64 * 1120 * per_token, 1e-4 * weights);
}

TEST(PlanDecodeBytes, MoeReadsTheExpertsTheBatchChooses) {
  const ModelConfig v2l = load_plan_model("deepseek-v2-lite").config;
  const double b1 = decode_step_bytes(v2l, 1, 512, 2), b64 = decode_step_bytes(v2l, 64, 512, 2);
  // One token reads attention, the dense first MLP, 2 shared + 6 of 64 routed experts a layer and
  // the head: about 4.9 GB of the 31.4 GB of weights; 64 tokens choose nearly every expert.
  EXPECT_GT(b1, 4.5e9);
  EXPECT_LT(b1, 5.5e9);
  EXPECT_GT(b64, 30e9);
  EXPECT_LT(b64, 33e9);
}

// On 4 GPUs each reads a quarter of the split weights and of the key/value heads (1 of 4), and
// all of the replicated norms: just over a quarter of the step.
TEST(PlanDecodeBytes, TensorParallelRanksReadTheirShare) {
  const ModelConfig q7 = load_plan_model("deepseek-r1-distill-qwen-7b").config;
  Layout four;
  four.tp = 4;
  const double whole = decode_step_bytes(q7, 8, 1024, 2), quarter = decode_step_bytes(q7, 8, 1024, 2, four);
  EXPECT_GT(quarter, whole / 4);
  EXPECT_LT(quarter, 1.01 * whole / 4);
}

}  // namespace
}  // namespace dsinfer::plan
