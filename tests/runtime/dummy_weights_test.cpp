// Dummy weights: every tensor the model loads exists at its real shape, for every family and
// for an FP8 checkpoint config; the model runs on them. They are made on demand, each rank of a
// tensor-parallel group making only its parts, which must be the parts of the same weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../fixture_util.h"
#include "core/error.h"
#include "io/json_file.h"
#include "model/dummy_weights.h"
#include "model/score.h"
#include "model/weight_quantization.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

// A directory holding ds3-tiny's config made an FP8 checkpoint's, blocks of `block`: dummy weights
// read it as such.
std::filesystem::path fp8_config_dir(const std::string& name, int block) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  nlohmann::json config = read_json_file(fixture_dir("ds3-tiny") + "/config.json");
  config["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {block, block}}};
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

void expect_runs(LoadedModel& m) {
  std::vector<float> logits = score_tokens(*m.model, *m.backend, {1, 2, 3});
  ASSERT_EQ(logits.size(), 3u * m.model->config().vocab_size);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace

class DummyWeights : public ::testing::TestWithParam<std::string> {};

TEST_P(DummyWeights, CoverEveryTensorTheModelLoads) {
  LoadOptions o;
  o.dummy_weights = true;
  LoadedModel m = load_for_generation(fixture_dir(GetParam()), o);
  expect_runs(m);
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, DummyWeights, ::testing::ValuesIn(all_fixtures()), fixture_test_name);

TEST(DummyWeightsFp8, FollowTheQuantizationConfigAndTruncateLayers) {
  const std::filesystem::path dir = fp8_config_dir("dsinfer_dummy_fp8", 128);
  LoadOptions o;
  o.dummy_weights = true;
  o.num_layers = 2;
  LoadedModel m = load_for_generation(dir.string(), o);
  EXPECT_EQ(m.model->config().num_layers, 2);
  expect_runs(m);
  o.num_layers = 9;
  EXPECT_THROW(load_for_generation(dir.string(), o), Error);
  std::filesystem::remove_all(dir);
}

// kv_b_proj ships in FP8 like every projection of an FP8 checkpoint (the model folds it into
// 16-bit W_UK and W_UV only as it loads, and the plan counts it so): the dummy store holds it as
// the checkpoint does, with its block scales; the norms stay 16-bit. --quantization fp8 of a
// bf16 checkpoint quantizes the other projections and leaves kv_b_proj bf16, as a real load does.
TEST(DummyWeightsFp8, HoldKvBProjectionInTheCheckpointsFormat) {
  const std::filesystem::path dir = fp8_config_dir("dsinfer_dummy_kvb", 128);
  const nlohmann::json config = read_json_file((dir / "config.json").string());
  const TensorStore store = dummy_weights(config, ModelConfig::from_json(config));
  EXPECT_EQ(store.get("model.layers.0.self_attn.kv_b_proj.weight").view.dtype, DType::F8_E4M3);
  EXPECT_TRUE(store.has("model.layers.0.self_attn.kv_b_proj.weight_scale_inv"));
  EXPECT_EQ(store.get("model.layers.0.self_attn.q_b_proj.weight").view.dtype, DType::F8_E4M3);
  EXPECT_EQ(store.get("model.layers.0.input_layernorm.weight").view.dtype, DType::BF16);
  std::filesystem::remove_all(dir);
  const nlohmann::json bf16 = read_json_file(fixture_dir("ds3-tiny") + "/config.json");
  const TensorStore quantized = dummy_weights(bf16, quantized_config(ModelConfig::from_json(bf16), Quantization::Fp8));
  EXPECT_EQ(quantized.get("model.layers.0.self_attn.kv_b_proj.weight").view.dtype, DType::BF16);
  EXPECT_FALSE(quantized.has("model.layers.0.self_attn.kv_b_proj.weight_scale_inv"));
  EXPECT_EQ(quantized.get("model.layers.0.self_attn.q_b_proj.weight").view.dtype, DType::F8_E4M3);
}

// A V3 config declares its MTP layer: dummy weights hold it after the layers kept (FP8 as the
// rest), so `--speculative-method mtp` can be measured without a download.
TEST(DummyWeightsFp8, HoldTheMtpLayerAfterTheLayersKept) {
  const std::filesystem::path dir = fp8_config_dir("dsinfer_dummy_mtp", 16);
  nlohmann::json config = read_json_file((dir / "config.json").string());
  config["num_nextn_predict_layers"] = 1;
  std::ofstream(dir / "config.json") << config.dump();
  LoadOptions o;
  o.dummy_weights = true;
  o.num_layers = 2;
  o.model.mtp = true;
  LoadedModel m = load_for_generation(dir.string(), o);
  ASSERT_TRUE(m.model->has_mtp());
  EXPECT_EQ(m.model->kv_spec().num_layers, 3);
  EngineOptions eo;
  eo.kv_cache_tokens = 256;
  eo.mtp_drafts = 2;
  Engine engine(*m.model, *m.backend, eo);
  GenerationRequest r;
  r.prompt = {1, 2, 3, 4};
  r.max_tokens = 8;
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  int tokens = 0;
  engine.submit(r, [&](const TokenEvent& ev) {
    tokens += ev.token >= 0 ? 1 : 0;
    return true;
  });
  engine.wait_idle();
  EXPECT_EQ(tokens, 8);
  EXPECT_GT(engine.stats().draft_tokens, 0);
  std::filesystem::remove_all(dir);
}

TEST(DummyWeightsCatalog, UnknownCatalogNamesListTheCatalog) {
  LoadOptions o;
  o.dummy_weights = true;
  try {
    load_for_generation("deepseek-v9", o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deepseek-r1-distill-qwen-7b"), std::string::npos) << e.what();
  }
}

// Two ranks make their parts (rows, columns, FP8 values and scales, vector elements) of the
// weights one rank makes whole: the logits agree within float32 summation order.
TEST(DummyWeightsTensorParallel, RanksMakeThePartsOfTheSameWeights) {
  const std::filesystem::path dir = fp8_config_dir("dsinfer_dummy_tp", 8);
  for (const std::string& model : {dir.string(), fixture_dir("qwen2-tiny")}) {
    LoadOptions o;
    o.dummy_weights = true;
    LoadedModel whole = load_for_generation(model, o);
    o.tensor_parallel = 2;
    LoadedModel split = load_for_generation(model, o);
    const std::vector<float> a = score_tokens(*whole.model, *whole.backend, {1, 2, 3});
    const std::vector<float> b = score_tokens(*split.model, *split.backend, {1, 2, 3});
    ASSERT_EQ(a.size(), b.size());
    float max_ref = 0.0f, max_err = 0.0f;
    for (size_t i = 0; i < a.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(a[i]));
      max_err = std::max(max_err, std::fabs(a[i] - b[i]));
    }
    EXPECT_GT(max_ref, 0.0f) << model;
    EXPECT_LE(max_err, 1e-5f * max_ref) << model;
  }
  std::filesystem::remove_all(dir);
}
