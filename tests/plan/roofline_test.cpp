// FLOPs per token and roofline step times against figures derived by hand.
#include <gtest/gtest.h>

#include "plan/flops.h"
#include "plan/hardware_catalog.h"
#include "plan/model_catalog.h"
#include "plan/params.h"
#include "plan/plan_json.h"
#include "plan/roofline.h"

namespace dsinfer::plan {
namespace {

TEST(PlanFlops, DeepSeekV3Decode) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  const TokenFlops f = decode_flops_per_token(v3, 4096);
  // 2 x (active 37,552,297,472 - embed_tokens 926,679,040 - norms 1,006,592 - router biases 14,848)
  EXPECT_DOUBLE_EQ(f.linear, 73249193984.0);
  // Absorbed MLA: 61 layers x 2 x 128 heads x 4096 x (576 scored + 512 summed)
  EXPECT_DOUBLE_EQ(f.attention, 61.0 * 2 * 128 * 4096 * (576 + 512));
}

TEST(PlanFlops, DeepSeekV3Prefill) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  const TokenFlops f = prefill_flops_per_token(v3, 4095);
  // Decompressed MLA over the causal average (4095 + 1) / 2 = 2048: q.k of 192, p.v of 128.
  EXPECT_DOUBLE_EQ(f.attention, 61.0 * 2 * 128 * 2048 * (192 + 128));
  EXPECT_DOUBLE_EQ(f.linear, decode_flops_per_token(v3, 1).linear);
}

TEST(PlanFlops, QwenDecode) {
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  const TokenFlops f = decode_flops_per_token(q7, 4096);
  EXPECT_DOUBLE_EQ(f.attention, 28.0 * 2 * 2 * 28 * 4096 * 128);
  // Dense: every weight but the embedding table and the norms (biases add, negligible, not multiplied).
  const int64_t norms = 28 * 2 * 3584 + 3584, biases = 28 * (3584 + 2 * 512);
  EXPECT_DOUBLE_EQ(f.linear, 2.0 * (7615616512 - 152064LL * 3584 - norms - biases));
}

TEST(PlanRoofline, MemoryBoundDecode) {
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  const WeightTotals w = WeightTotals::build(q7, {WeightDtype::BF16});
  const GpuSpec& h100 = find_gpu("H100-SXM");
  const DecodeEstimate d = estimate_decode(q7.config, w, Layout{}, h100, KvDtype::BF16, 1, 4096);
  // Every weight but the embedding table is read once; the token reads 4096 cached tokens.
  const double weights = 2.0 * (7615616512 - 152064LL * 3584), kv = 4096.0 * 57344;
  EXPECT_DOUBLE_EQ(d.step.weight_bytes, weights);
  EXPECT_DOUBLE_EQ(d.step.kv_bytes, kv);
  EXPECT_NEAR(d.step.seconds, (weights + kv) / 3.35e12, 1e-12);
  EXPECT_EQ(bound_name(d.step), "memory");
  EXPECT_NEAR(d.tokens_per_s, 3.35e12 / (weights + kv), 1e-6);
  EXPECT_NEAR(d.tokens_per_s, 233.03, 0.01);
}

TEST(PlanRoofline, ComputeBoundAtLargeBatchAndPrefill) {
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  const WeightTotals w = WeightTotals::build(q7, {WeightDtype::BF16});
  const GpuSpec& h100 = find_gpu("H100-SXM");
  const DecodeEstimate d = estimate_decode(q7.config, w, Layout{}, h100, KvDtype::BF16, 512, 128);
  EXPECT_EQ(bound_name(d.step), "compute");
  EXPECT_NEAR(d.step.seconds, 512 * decode_flops_per_token(q7, 128).total() / 989.5e12, 1e-12);
  const PrefillEstimate p = estimate_prefill(q7.config, w, Layout{}, h100, KvDtype::BF16, 4096, 8192);
  EXPECT_EQ(p.chunks, 1);
  EXPECT_EQ(bound_name(p.chunk), "compute");
  EXPECT_NEAR(p.ttft_s, 4096 * prefill_flops_per_token(q7, 4096).total() / 989.5e12, 1e-9);
  EXPECT_NEAR(p.tokens_per_s, 4096 / p.ttft_s, 1e-6);
  // A prompt longer than the step budget goes in chunks, re-reading the weights each time.
  EXPECT_EQ(estimate_prefill(q7.config, w, Layout{}, h100, KvDtype::BF16, 20000, 8192).chunks, 3);
}

TEST(PlanRoofline, MoeReadsOnlyTheExpertsItsTokensPick) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  const WeightTotals w = WeightTotals::build(v3, {WeightDtype::BF16});
  const GpuSpec& h200 = find_gpu("H200");
  const DecodeEstimate one = estimate_decode(v3.config, w, Layout{}, h200, KvDtype::BF16, 1, 1);
  const double routed = 2.0 * 58 * 256 * 3 * 7168 * 2048;
  const double all = double(weight_bytes(v3, {WeightDtype::BF16})) - 2.0 * 129280 * 7168;  // no embedding
  // One token picks 8 of 256 experts in each MoE layer.
  EXPECT_NEAR(one.step.weight_bytes, all - routed + routed * 8 / 256, 1.0);
  // A large batch touches nearly all of them.
  const DecodeEstimate many = estimate_decode(v3.config, w, Layout{}, h200, KvDtype::BF16, 1024, 1);
  EXPECT_NEAR(many.step.weight_bytes, all, all * 1e-6);
}

TEST(PlanRoofline, ComputePeakFollowsTheWeightFormat) {
  const GpuSpec& h100 = find_gpu("H100-SXM");
  const GpuSpec& a100 = find_gpu("A100-80");
  EXPECT_DOUBLE_EQ(peak_flops(h100, WeightDtype::BF16), 989.5e12);
  EXPECT_DOUBLE_EQ(peak_flops(h100, WeightDtype::FP8Block), 1979e12);
  EXPECT_DOUBLE_EQ(peak_flops(h100, WeightDtype::Int8Channel), 1979e12);
  EXPECT_DOUBLE_EQ(peak_flops(h100, WeightDtype::Int4Group), 989.5e12);  // W4A16
  EXPECT_DOUBLE_EQ(peak_flops(a100, WeightDtype::FP8Block), 312e12);     // no FP8 units: W8A16
}

}  // namespace
}  // namespace dsinfer::plan
