// The planner's parameter count and bf16 byte count equal what the fixture checkpoints store.
#include <gtest/gtest.h>

#include <regex>

#include "io/safetensors.h"
#include "plan/model_catalog.h"
#include "plan/params.h"

namespace dsinfer::plan {
namespace {

struct Stored {
  int64_t elements = 0, bytes = 0;
};

// Elements and bytes of the model's own tensors: no FP8 scales, no MTP layers.
Stored stored(const std::string& dir, int num_layers) {
  const TensorStore store = TensorStore::open_dir(dir);
  const std::regex layer("^model\\.layers\\.(\\d+)\\.");
  Stored s;
  for (const std::string& name : store.names()) {
    if (name.ends_with("weight_scale_inv")) continue;
    std::smatch m;
    if (std::regex_search(name, m, layer) && std::stoi(m[1]) >= num_layers) continue;
    const Tensor& t = store.get(name).view;
    s.elements += t.numel();
    s.bytes += int64_t(t.nbytes());
  }
  return s;
}

class PlanFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanFixture, ParamsEqualStoredElements) {
  const std::string dir = std::string(DSINFER_FIXTURES) + "/" + GetParam();
  const PlanModel m = load_plan_model(dir);
  const Stored s = stored(dir, m.config.num_layers);
  EXPECT_EQ(count_params(m).total, s.elements);
  // As stored (bf16, e_score_correction_bias in float32), byte for byte.
  EXPECT_EQ(weight_bytes(m, m.stored), s.bytes);
}

INSTANTIATE_TEST_SUITE_P(All, PlanFixture, ::testing::Values("ds3-tiny", "ds2-lite-tiny", "qwen2-tiny", "llama-tiny"));

}  // namespace
}  // namespace dsinfer::plan
