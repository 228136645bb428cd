// The CPU reference against transformers' float32 logits on every fixture.
#include <algorithm>
#include <cmath>

#include "../fixture_util.h"
#include "backend/backend.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;

class FixtureLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureLogits, MatchTransformersWithin1e4OfLargestLogit) {
  const std::string name = GetParam();
  ModelDir dir = ModelDir::open(fixture_dir(name));
  auto backend = make_cpu_backend();
  auto model = load_model(dir, *backend);
  const int vocab = model->config().vocab_size;
  nlohmann::json ref = fixture_ref(name);
  ASSERT_FALSE(ref["sequences"].empty());
  for (const auto& seq : ref["sequences"]) {
    std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    std::vector<float> got = score_tokens(*model, *backend, ids);
    std::vector<float> want = fixture_logits(name, seq, vocab);
    const size_t offset = got.size() - want.size();  // only the last row when the reference has one
    float max_ref = 0.0f, max_err = 0.0f;
    for (size_t i = 0; i < want.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(want[i]));
      max_err = std::max(max_err, std::fabs(want[i] - got[offset + i]));
    }
    EXPECT_LE(max_err, 1e-4f * max_ref) << name << ": sequence of " << ids.size() << " tokens, max |diff| " << max_err
                                        << ", max |logit| " << max_ref;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, FixtureLogits, ::testing::ValuesIn(all_fixtures()),
                         fixture_test_name);
