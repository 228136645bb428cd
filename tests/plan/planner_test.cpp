// Whole plans: memory accounting, fit and advice, cost, JSON keys, catalogs and errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "plan/hardware_catalog.h"
#include "plan/kv_cache.h"
#include "plan/model_catalog.h"
#include "plan/plan_json.h"
#include "plan/plan_table.h"
#include "plan/planner.h"
#include "plan/tensor_inventory.h"

namespace dsinfer::plan {
namespace {

bool any_contains(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// V3's MTP layer: one MoE layer (attention 187,107,328 + norms 14,336 + 257 experts x 44,040,192
// + gate 1,835,008 + bias 256) + enorm, hnorm, shared_head.norm 3 x 7,168 + eh_proj 7168 x 14336
// = 11,610,068,224 parameters. Loaded (--mtp), the last stage holds it, a layer more of KV cache
// and the MTP passes' scratch; the other stages are as without.
TEST(PlanPlanner, TheMtpLayerOnTheLastStage) {
  const PlanModel v3 = load_plan_model("deepseek-v3");
  int64_t params = 0, bytes = 0;
  for (const TensorGroup& t : mtp_tensors(v3)) params += t.elements(), bytes += tensor_bytes(t, resolve_weights(v3, {}));
  EXPECT_EQ(params, 11610068224);
  PlanOptions o;
  o.gpu = find_gpu("H200");
  o.tp = 8;
  o.pp = 1;
  o.num_gpus = 8;
  const PlanResult plain = make_plan(v3, o);
  o.mtp = true;
  const PlanResult mtp = make_plan(v3, o);
  EXPECT_NEAR(mtp.memory.weight_bytes - plain.memory.weight_bytes, bytes / 8.0, bytes * 0.01);
  EXPECT_EQ(mtp.memory.kv_bytes_per_token, plain.memory.kv_bytes_per_token * 62 / 61);
  EXPECT_EQ(mtp.memory.activations.total() - plain.memory.activations.total(),
            plain.memory.activations.total() - plain.memory.activations.runtime_bytes);
  EXPECT_LT(mtp.kv_max_tokens, plain.kv_max_tokens);
  EXPECT_NE(error_of([] {
              PlanOptions v2;
              v2.mtp = true;
              make_plan(load_plan_model("deepseek-v2-lite"), v2);
            }).find("multi-token-prediction"),
            std::string::npos);
}

// DeepSeek's latent cache comes in blocks of 64 tokens (the GPU's MLA decode tiles), others in 16:
// the capacity and the sequences that fit count whole blocks of the model's size.
TEST(PlanPlanner, BlocksOfTheModelsSize) {
  const PlanModel v2 = load_plan_model("deepseek-v2-lite"), q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  EXPECT_EQ(kv_block_tokens(v2.config), 64);
  EXPECT_EQ(kv_block_tokens(q7.config), 16);
  PlanOptions o;
  o.gpu = find_gpu("H100-SXM");
  o.context = 4100;  // 65 blocks of 64 a sequence, 257 of 16
  const PlanResult r = make_plan(v2, o);
  ASSERT_TRUE(r.fits);
  EXPECT_EQ(r.kv_max_tokens % 64, 0);
  EXPECT_EQ(r.kv_max_tokens, kv_cache_max_tokens(r.memory.kv_bytes_available, r.memory.kv_bytes_per_token, 64));
  EXPECT_EQ(r.kv_max_sequences, r.kv_max_tokens / 64 / 65);
  EXPECT_EQ(to_json(r)["kv_cache"]["block_tokens"], 64);
}

TEST(PlanPlanner, MemoryAddsUp) {
  PlanOptions o;
  o.gpu = find_gpu("L4");
  o.batch = 8;
  const PlanResult r = make_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o);
  ASSERT_TRUE(r.fits);
  const GpuMemory& g = r.memory;
  EXPECT_DOUBLE_EQ(g.capacity_bytes, 24.0 * (1 << 30));
  EXPECT_EQ(g.weight_bytes, r.weight_bytes);  // one GPU holds everything
  EXPECT_EQ(g.kv_bytes_available,
            kv_cache_bytes_available(g.capacity_bytes, 0.9, g.weight_bytes, g.activations.total()));
  EXPECT_EQ(r.kv_max_tokens, kv_cache_max_tokens(g.kv_bytes_available, 57344, 16));
  EXPECT_EQ(r.kv_max_sequences, r.kv_max_tokens / 16 / 256);  // 4096 tokens = 256 blocks
  EXPECT_GE(r.kv_max_sequences, 8);
  // Workspace: 8192 tokens x (2 x 3584 residual + 3 x 18944 MLP) x 2 bytes + 8 x 152064 fp32 logits + 512 MiB.
  const ActivationEstimate& a = g.activations;
  EXPECT_EQ(a.step_tokens, 8192);
  EXPECT_EQ(a.residual_bytes, 8192LL * 2 * 3584 * 2);
  EXPECT_EQ(a.mlp_bytes, 8192LL * 3 * 18944 * 2);
  EXPECT_EQ(a.logits_bytes, 8LL * 152064 * 4);
  EXPECT_EQ(a.total(), a.residual_bytes + a.mlp_bytes + a.logits_bytes + (512LL << 20));
}

TEST(PlanPlanner, CostPerMillionTokens) {
  PlanOptions o;
  o.price_per_gpu_hour = 2.0;
  o.batch = 16;
  const PlanResult r = make_plan(load_plan_model("deepseek-r1-distill-llama-8b"), o);
  ASSERT_TRUE(r.usd_per_million_output_tokens);
  EXPECT_NEAR(*r.usd_per_million_output_tokens, 2.0 * r.layout.num_gpus() / 3600 / r.decode.tokens_per_s * 1e6, 1e-9);
  EXPECT_FALSE(make_plan(load_plan_model("deepseek-r1-distill-llama-8b"), PlanOptions{}).usd_per_million_output_tokens);
}

TEST(PlanPlanner, DoesNotFitAndSaysWhatToChange) {
  PlanOptions o;
  o.gpu = find_gpu("T4");
  const PlanModel q7 = load_plan_model("deepseek-r1-distill-qwen-7b");
  EXPECT_EQ(make_plan(q7, o).layout.num_gpus(), 2);  // left to itself, the search takes two
  o.num_gpus = 1;
  const PlanResult r = make_plan(q7, o);
  EXPECT_FALSE(r.fits);
  EXPECT_TRUE(any_contains(r.problems, "exceed the 14.40 GiB usable"));
  EXPECT_TRUE(any_contains(r.advice, "--weights-dtype fp8: fits on 1 x T4"));
  EXPECT_TRUE(any_contains(r.advice, "--num-gpus 2"));
}

TEST(PlanPlanner, PinnedGpuCountTooSmall) {
  PlanOptions o;
  o.gpu = find_gpu("H100-SXM");
  o.num_gpus = 8;
  o.weights = WeightDtype::BF16;
  const PlanResult r = make_plan(load_plan_model("deepseek-v3"), o);
  EXPECT_FALSE(r.fits);
  EXPECT_EQ(r.layout.num_gpus(), 8);
  EXPECT_TRUE(any_contains(r.advice, "--weights-dtype int4"));  // fp8's 78 GiB per GPU is over 72
  EXPECT_TRUE(any_contains(r.advice, "--num-gpus 24"));
}

TEST(PlanPlanner, TooManySequencesAdvisesBatchAndContext) {
  PlanOptions o;
  o.gpu = find_gpu("L4");
  o.num_gpus = 1;
  o.batch = 64;
  const PlanResult r = make_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), o);
  EXPECT_FALSE(r.fits);
  EXPECT_TRUE(any_contains(r.problems, "fewer than --batch 64"));
  EXPECT_TRUE(any_contains(r.advice, cat("--batch ", r.kv_max_sequences, ":")));
  const int64_t context = r.memory.kv_max_tokens / 16 / 64 * 16;
  EXPECT_LT(context, 4096);
  EXPECT_TRUE(any_contains(r.advice, cat("--context ", context, ": fits --batch 64")));
  EXPECT_TRUE(any_contains(r.advice, "--kv-dtype int4"));  // fp8 and int8 halve it: not enough
}

TEST(PlanPlanner, Warnings) {
  PlanOptions o;
  o.context = 200000;
  o.prompt_len = 300000;
  const PlanResult r = make_plan(load_plan_model("deepseek-r1-distill-qwen-1.5b"), o);
  EXPECT_TRUE(any_contains(r.warnings, "max_position_embeddings"));
  EXPECT_TRUE(any_contains(r.warnings, "--prompt-len 300000 exceeds"));
}

TEST(PlanPlanner, BadOptionsAreNamed) {
  const PlanModel m = load_plan_model("deepseek-r1-distill-qwen-1.5b");
  PlanOptions o;
  o.batch = 0;
  EXPECT_NE(error_of([&] { make_plan(m, o); }).find("--batch"), std::string::npos);
  o = PlanOptions{};
  o.mem_util = 1.5;
  EXPECT_NE(error_of([&] { make_plan(m, o); }).find("--mem-util"), std::string::npos);
  o = PlanOptions{};
  o.ep = 4;
  EXPECT_NE(error_of([&] { make_plan(m, o); }).find("matches --ep 4"), std::string::npos);
}

TEST(PlanPlanner, JsonKeys) {
  PlanOptions o;
  o.price_per_gpu_hour = 3.0;
  const nlohmann::json j = to_json(make_plan(load_plan_model("deepseek-v3"), o));
  for (const char* path : {"/params/total", "/params/active", "/weights/bytes", "/weights/dtype",
                           "/kv_cache/bytes_per_token", "/kv_cache/dtype", "/kv_cache/max_tokens",
                           "/decode/tokens_per_s", "/prefill/tokens_per_s", "/fits", "/layout/tp",
                           "/memory/activations/derivation", "/cost/usd_per_million_output_tokens",
                           "/prefill/ttft_s", "/decode/bound", "/communication/bytes_per_token"})
    EXPECT_TRUE(j.contains(nlohmann::json::json_pointer(path))) << path;
  EXPECT_EQ(j["params"]["total"], 671026419200);
  EXPECT_EQ(j["weights"]["dtype"], "fp8");
  EXPECT_EQ(j["kv_cache"]["bytes_per_token"], 70272);
  EXPECT_EQ(j["kv_cache"]["dtype"], "bf16");
  EXPECT_TRUE(j["fits"].is_boolean());
}

TEST(PlanPlanner, TableNamesTheVerdict) {
  const std::string t = format_plan(make_plan(load_plan_model("deepseek-r1-distill-qwen-7b"), PlanOptions{}));
  EXPECT_NE(t.find("7,615,616,512"), std::string::npos);
  EXPECT_NE(t.find("57,344 bytes per token"), std::string::npos);
  EXPECT_NE(t.find("fits              yes"), std::string::npos);
}

TEST(PlanCatalog, ModelsAndErrors) {
  const std::vector<std::string> names = catalog_model_names();
  EXPECT_EQ(names.size(), 10u);
  for (const std::string& n : names) EXPECT_GT(count_params(load_plan_model(n)).total, 1000000000) << n;
  const std::string err = error_of([] { load_plan_model("deepseek-v9"); });
  EXPECT_NE(err.find("unknown model 'deepseek-v9'"), std::string::npos);
  EXPECT_NE(err.find("deepseek-r1-distill-qwen-1.5b"), std::string::npos);
  // A directory or a config.json path works as well as a name.
  const std::string dir = std::string(DSINFER_FIXTURES) + "/qwen2-tiny";
  EXPECT_EQ(count_params(load_plan_model(dir)).total, count_params(load_plan_model(dir + "/config.json")).total);
  EXPECT_NE(error_of([] { load_plan_model(DSINFER_FIXTURES); }).find("has no config.json"), std::string::npos);
}

TEST(PlanCatalog, Gpus) {
  EXPECT_EQ(gpu_catalog().size(), 16u);
  for (const GpuSpec& g : gpu_catalog()) {
    EXPECT_GT(g.memory_gib, 0) << g.name;
    EXPECT_GT(g.bandwidth_gbs, 0) << g.name;
    EXPECT_GT(g.bf16_tflops, 0) << g.name;
    EXPECT_GT(g.link_gbs, 0) << g.name;
  }
  EXPECT_EQ(find_gpu("h200").memory_gib, 141);
  EXPECT_EQ(find_gpu("MI300X").bandwidth_gbs, 5300);
  const std::string err = error_of([] { find_gpu("B200"); });
  EXPECT_NE(err.find("unknown GPU 'B200'"), std::string::npos);
  EXPECT_NE(err.find("RTX-4090"), std::string::npos);
}

}  // namespace
}  // namespace dsinfer::plan
