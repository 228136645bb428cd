// Parameter counts against hand-derived figures (each derivation in the comment).
#include <gtest/gtest.h>

#include "plan/model_catalog.h"
#include "plan/params.h"

namespace dsinfer::plan {
namespace {

int64_t total(const std::string& name) { return count_params(load_plan_model(name)).total; }

TEST(PlanParams, DeepSeekV3Total) {
  // embed + lm_head 2 x 129280 x 7168 = 1,853,358,080; final norm 7,168
  // attention/layer: q_a 1536x7168 + q_a_norm 1536 + q_b 128*192x1536 + kv_a 576x7168 + kv_a_norm 512
  //   + kv_b 128*256x512 + o 7168x128*128 = 187,107,328; layer norms 14,336
  // 3 dense layers: + 3 x 7168 x 18432 each; 58 MoE layers: + 257 experts x 3 x 7168 x 2048
  //   + gate 256x7168 + e_score_correction_bias 256 each
  EXPECT_EQ(total("deepseek-v3"), 671026419200);
  EXPECT_EQ(total("deepseek-r1"), 671026419200);
}

TEST(PlanParams, DeepSeekV3Active) {
  // total - 58 layers x (256 - 8) experts x 44,040,192 = 37,552,297,472 (embeddings included)
  const ParamCounts p = count_params(load_plan_model("deepseek-v3"));
  EXPECT_EQ(p.active, 37552297472);
  EXPECT_NEAR(p.active / 1e9, 37.6, 0.05);
  EXPECT_EQ(p.embedding, 1853358080);
  EXPECT_EQ(p.routed_experts, int64_t(58) * 256 * 3 * 7168 * 2048);
}

TEST(PlanParams, DistillQwen7B) {
  // 2 x 152064 x 3584 + 3584 + 28 x (q 3584^2+3584 + k,v 2 x (512x3584+512) + o 3584^2
  //   + mlp 3 x 3584 x 18944 + norms 2 x 3584)
  EXPECT_EQ(total("deepseek-r1-distill-qwen-7b"), 7615616512);
  const ParamCounts p = count_params(load_plan_model("deepseek-r1-distill-qwen-7b"));
  EXPECT_EQ(p.active, p.total);  // dense
}

TEST(PlanParams, EveryCatalogModel) {
  // Published sizes of the Hugging Face checkpoints (MTP layers excluded).
  EXPECT_EQ(total("deepseek-r1-distill-qwen-1.5b"), 1777088000);
  EXPECT_EQ(total("deepseek-r1-distill-qwen-14b"), 14770033664);
  EXPECT_EQ(total("deepseek-r1-distill-qwen-32b"), 32763876352);
  EXPECT_EQ(total("deepseek-r1-distill-llama-8b"), 8030261248);
  EXPECT_EQ(total("deepseek-r1-distill-llama-70b"), 70553706496);
  // V2-Lite: no q_lora (q_proj 16*192x2048), 1 dense + 26 MoE layers of 64 experts + 2 shared.
  EXPECT_EQ(total("deepseek-v2-lite"), 15706484224);
  EXPECT_EQ(total("deepseek-v2"), 235741434880);
}

TEST(PlanParams, V2LiteActive) {
  // 26 MoE layers use 6 of 64 experts of 3 x 2048 x 1408 each.
  const ParamCounts p = count_params(load_plan_model("deepseek-v2-lite"));
  EXPECT_EQ(p.active, p.total - int64_t(26) * (64 - 6) * 3 * 2048 * 1408);
}

}  // namespace
}  // namespace dsinfer::plan
