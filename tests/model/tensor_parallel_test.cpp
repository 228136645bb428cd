// Tensor parallelism on the CPU: the dense fixtures split over 2 ranks give the whole model's
// logits; what does not split is refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../fixture_util.h"
#include "core/error.h"
#include "model/score.h"
#include "model/tensor_parallel.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

struct Group {
  std::vector<std::unique_ptr<Backend>> backends;
  std::unique_ptr<Model> model;
  Group(const std::string& name, int size) : backends(make_backend_group(Device{}, size)) {
    ModelDir dir = ModelDir::open(fixture_dir(name));
    auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(dir.path));
    model = load_tensor_parallel(ModelConfig::from_json(dir.config), store, backends, {});
  }
  Backend& backend() { return *backends.front(); }
};

}  // namespace

class TensorParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallel, TwoRanksGiveTheWholeModelsLogits) {
  const std::string name = GetParam();
  Group whole(name, 1), split(name, 2);
  EXPECT_EQ(split.backends.size(), 1u);  // the model took the other ranks' backends
  EXPECT_LT(split.model->kv_spec().bytes_per_token(), whole.model->kv_spec().bytes_per_token());
  EXPECT_LT(split.model->weight_bytes(), whole.model->weight_bytes());
  const nlohmann::json ref = fixture_ref(name);
  ASSERT_FALSE(ref["sequences"].empty());
  const std::vector<int> ids = ref["sequences"][0]["input_ids"].get<std::vector<int>>();
  const std::vector<float> a = score_tokens(*whole.model, whole.backend(), ids);
  const std::vector<float> b = score_tokens(*split.model, split.backend(), ids);
  ASSERT_EQ(a.size(), b.size());
  float max_logit = 0.0f, max_diff = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    max_logit = std::max(max_logit, std::fabs(a[i]));
    max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(max_diff, 1e-5f * max_logit) << name << ": max |diff| " << max_diff << " of max |logit| " << max_logit;
}

INSTANTIATE_TEST_SUITE_P(DenseFixtures, TensorParallel, ::testing::Values("qwen2-tiny", "llama-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(TensorParallelErrors, HeadsThatDoNotSplitAndMlaMoeModelsAreRefusedByName) {
  auto message = [](const std::string& name, int size) {
    try {
      Group g(name, size);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("llama-tiny", 4).find("2 key/value heads do not split evenly over 4 ranks"), std::string::npos);
  EXPECT_NE(message("ds3-tiny", 2).find("not MLA and MoE"), std::string::npos);
}
