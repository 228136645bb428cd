// Pipeline stages, layout validity, per-GPU shares, and the layout search.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "plan/communication.h"
#include "plan/model_catalog.h"
#include "plan/params.h"
#include "plan/planner.h"
#include "plan/weight_totals.h"

namespace dsinfer::plan {
namespace {

TEST(PlanLayout, PipelineStages) {
  const std::vector<Stage> two = pipeline_stages(61, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].num_layers, 30);
  EXPECT_EQ(two[1].num_layers, 31);
  EXPECT_EQ(two[1].first_layer, 30);
  EXPECT_TRUE(two[0].first && !two[0].last && two[1].last);
  const std::vector<Stage> four = pipeline_stages(61, 4);
  EXPECT_EQ(four[0].num_layers, 15);
  EXPECT_EQ(four[1].num_layers, 16);
  EXPECT_EQ(four[3].first_layer + four[3].num_layers, 61);
  EXPECT_EQ(pipeline_stages(28, 1)[0].num_layers, 28);
}

TEST(PlanLayout, Problems) {
  const ModelConfig v3 = load_plan_model("deepseek-v3").config;
  const ModelConfig q15 = load_plan_model("deepseek-r1-distill-qwen-1.5b").config;
  EXPECT_EQ(layout_problem(v3, Layout{8, 2, 1, 1}, 8), "");
  EXPECT_EQ(layout_problem(v3, Layout{8, 1, 2, 16}, 8), "");
  EXPECT_NE(layout_problem(v3, Layout{3, 1, 1, 1}, 8).find("128 attention heads"), std::string::npos);
  EXPECT_NE(layout_problem(v3, Layout{16, 1, 1, 1}, 8).find("node"), std::string::npos);
  EXPECT_NE(layout_problem(v3, Layout{2, 1, 1, 4}, 8).find("tp x dp"), std::string::npos);
  EXPECT_NE(layout_problem(q15, Layout{8, 1, 1, 1}, 8).find("12 attention heads"), std::string::npos);
  EXPECT_NE(layout_problem(q15, Layout{1, 1, 2, 2}, 8).find("mixture-of-experts"), std::string::npos);
  for (const Layout& l : layouts_for(v3, 16, 8)) {
    EXPECT_EQ(l.num_gpus(), 16);
    EXPECT_EQ(layout_problem(v3, l, 8), "");
  }
}

TEST(PlanLayout, WeightsPerGpu) {
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  const WeightTotals w = WeightTotals::build(q7, {WeightDtype::BF16});
  const ModelConfig& c = q7.config;
  const Stage all{0, 28, true, true};
  const double bytes = double(weight_bytes(q7, {WeightDtype::BF16}));
  const double norms = 2.0 * (28 * 2 * 3584 + 3584);  // replicated; everything else (biases too) is split
  EXPECT_DOUBLE_EQ(w.stage(all).stored_bytes.per_gpu(c, Layout{}), bytes);
  EXPECT_DOUBLE_EQ(w.stage(all).stored_bytes.per_gpu(c, Layout{2, 1, 1, 1}), (bytes - norms) / 2 + norms);
  // Two stages: the first holds the embedding, the second lm_head; together, everything once.
  const std::vector<Stage> st = pipeline_stages(28, 2);
  EXPECT_DOUBLE_EQ(w.stage(st[0]).stored_bytes.per_gpu(c, Layout{1, 2, 1, 1}) +
                       w.stage(st[1]).stored_bytes.per_gpu(c, Layout{1, 2, 1, 1}),
                   bytes);
}

TEST(PlanLayout, TiedHeadIsCopiedToTheLastStage) {
  PlanModel m = load_plan_model("deepseek-r1-distill-qwen-1.5b");
  m.config.tie_word_embeddings = true;
  const WeightTotals w = WeightTotals::build(m, {WeightDtype::BF16});
  const std::vector<Stage> st = pipeline_stages(28, 2);
  const double table = 2.0 * 151936 * 1536;
  const double both = w.stage(st[0]).stored_bytes.per_gpu(m.config, Layout{1, 2, 1, 1}) +
                      w.stage(st[1]).stored_bytes.per_gpu(m.config, Layout{1, 2, 1, 1});
  EXPECT_DOUBLE_EQ(both, double(weight_bytes(m, {WeightDtype::BF16})) + table);
}

TEST(PlanLayout, ExpertParallelHoldsWholeExperts) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  const ModelConfig& c = v3.config;
  EXPECT_DOUBLE_EQ(shard_share(Shard::RoutedExpert, c, Layout{8, 1, 1, 1}), 1.0 / 8);
  EXPECT_DOUBLE_EQ(shard_share(Shard::RoutedExpert, c, Layout{8, 1, 2, 16}), 16.0 / 256);
  // 256 experts over 6 GPUs: the busiest holds 43.
  EXPECT_DOUBLE_EQ(shard_share(Shard::RoutedExpert, c, Layout{2, 1, 3, 6}), 43.0 / 256);
}

TEST(PlanLayout, CommunicationPerToken) {
  const ModelConfig v3 = load_plan_model("deepseek-v3").config;
  EXPECT_DOUBLE_EQ(comm_per_token(v3, Layout{}).total(), 0);
  const CommPerToken tp8 = comm_per_token(v3, Layout{8, 1, 1, 1});
  // 61 layers x 2 all-reduces x 2 x 7/8 of a bf16 hidden state, plus 7/8 of the fp32 logits.
  EXPECT_DOUBLE_EQ(tp8.tp_bytes, 61 * 2 * (2 * 7.0 / 8) * 7168 * 2 + 7.0 / 8 * 129280 * 4);
  EXPECT_DOUBLE_EQ(comm_per_token(v3, Layout{8, 2, 1, 1}).pp_bytes, 2 * 7168 * 2);
  // 58 MoE layers, 8 experts, dispatch + combine in bf16, 15/16 remote, shared by the TP group of 8.
  EXPECT_DOUBLE_EQ(comm_per_token(v3, Layout{8, 1, 2, 16}).ep_bytes, 58 * 8 * 7168 * 2 * 2 * (15.0 / 16) / 8);
}

TEST(PlanLayoutSearch, FewestGpusThatFit) {
  PlanOptions o;
  o.gpu = find_gpu("H100-SXM");
  EXPECT_EQ(best_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o).layout.num_gpus(), 1);
  // 131 GiB of bf16 weights: two 80 GiB GPUs, one TP group.
  const PlanResult llama = best_plan(load_plan_model("deepseek-r1-distill-llama-70b"), o);
  EXPECT_TRUE(llama.fits);
  EXPECT_EQ(llama.layout, (Layout{2, 1, 1, 1}));
  // V3 in FP8 (628 GiB) needs a node of 8 H200s; in bf16 (1250 GiB), 3 nodes of H100s.
  o.gpu = find_gpu("H200");
  EXPECT_EQ(best_plan(load_plan_model("deepseek-v3"), o).layout.num_gpus(), 8);
  o.gpu = find_gpu("H100-SXM");
  o.weights = WeightDtype::BF16;
  const PlanResult bf16 = best_plan(load_plan_model("deepseek-v3"), o);
  EXPECT_TRUE(bf16.fits);
  EXPECT_EQ(bf16.layout.num_gpus(), 24);
}

TEST(PlanLayoutSearch, PinsAreKept) {
  PlanOptions o;
  o.gpu = find_gpu("H100-SXM");
  o.tp = 2;
  o.pp = 2;
  const PlanResult r = best_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o);
  EXPECT_EQ(r.layout, (Layout{2, 2, 1, 1}));
  o.tp = 3;
  EXPECT_THROW(best_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o), Error);
  o.tp = 0;
  o.pp = 0;
  o.num_gpus = 4;
  EXPECT_EQ(best_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o).layout.num_gpus(), 4);
}

}  // namespace
}  // namespace dsinfer::plan
