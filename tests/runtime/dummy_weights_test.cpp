// Dummy weights: every tensor the model loads exists at its real shape, for every family and
// for an FP8 checkpoint config; the model runs on them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../fixture_util.h"
#include "core/error.h"
#include "io/json_file.h"
#include "model/score.h"
#include "runtime/loaded_model.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

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

INSTANTIATE_TEST_SUITE_P(AllFixtures, DummyWeights, ::testing::ValuesIn(all_fixtures()), [](const auto& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

TEST(DummyWeightsFp8, FollowTheQuantizationConfigAndTruncateLayers) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dsinfer_dummy_fp8_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  nlohmann::json config = read_json_file(fixture_dir("ds3-tiny") + "/config.json");
  config["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}};
  std::ofstream(dir / "config.json") << config.dump();
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
