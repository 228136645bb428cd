// FP8 block-scaled checkpoints (DeepSeek-V3's release format), made from a fixture with our own
// quantizer: the engine must compute exactly what the dequantized weights compute, with edge
// blocks partial, and skip multi-token-prediction layers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "../fp8_checkpoint_util.h"
#include "backend/backend.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

class Fp8Checkpoint : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(Fp8Checkpoint, ComputesExactlyWhatItsDequantizedWeightsCompute) {
  auto [fixture, block] = GetParam();
  fs::path root = fs::temp_directory_path() / ("dsinfer_fp8_" + fixture + std::to_string(block) + "_" + std::to_string(::getpid()));
  make_fp8_checkpoints(fixture, block, root / "fp8", root / "ref");
  auto backend = make_cpu_backend();
  auto fp8_model = load_model(ModelDir::open((root / "fp8").string()), *backend);
  auto ref_model = load_model(ModelDir::open((root / "ref").string()), *backend);
  std::vector<int> ids = fixture_ref(fixture)["sequences"][0]["input_ids"].get<std::vector<int>>();
  std::vector<float> a = score_tokens(*fp8_model, *backend, ids), b = score_tokens(*ref_model, *backend, ids);
  ASSERT_EQ(a.size(), b.size());
  float max_ref = 0, max_err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(b[i]));
    max_err = std::max(max_err, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(max_err, 1e-5f * max_ref);
  fs::remove_all(root);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, Fp8Checkpoint,
                         ::testing::ValuesIn(fp8_checkpoint_cases()), fp8_case_name);
