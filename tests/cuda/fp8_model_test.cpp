// FP8 block-scaled checkpoints (DeepSeek-V3's release format) on the GPU: every projection of a
// fixture quantized with our quantizer, against a twin holding the same weights dequantized to
// F32. The GPU turns both into the same bf16 matrices (fp8 * scale, then one rounding), so the
// two models must agree to the last bit; this covers the FP8 path of attention, dense MLP and
// every MoE expert.
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "../fp8_checkpoint_util.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

class GpuFp8Checkpoint : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(GpuFp8Checkpoint, EqualsItsDequantizedTwin) {
  SKIP_WITHOUT_GPU();
  const auto [fixture, block] = GetParam();
  const fs::path root = fs::temp_directory_path() /
                        ("dsinfer_gpu_fp8_" + fixture + std::to_string(block) + "_" + std::to_string(::getpid()));
  make_fp8_checkpoints(fixture, block, root / "fp8", root / "ref");
  auto backend = make_backend(Device{DeviceKind::CUDA, 0});
  auto fp8_model = load_model(ModelDir::open((root / "fp8").string()), *backend);
  auto ref_model = load_model(ModelDir::open((root / "ref").string()), *backend);
  const nlohmann::json ref = fixture_ref(fixture);
  for (const auto& seq : ref["sequences"]) {
    const std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    expect_close(score_tokens(*fp8_model, *backend, ids), score_tokens(*ref_model, *backend, ids), 1e-6f,
                 fixture + " FP8 vs dequantized, " + std::to_string(ids.size()) + " tokens");
  }
  fs::remove_all(root);
}

INSTANTIATE_TEST_SUITE_P(GpuBlockSizes, GpuFp8Checkpoint,
                         ::testing::ValuesIn(fp8_checkpoint_cases()), fp8_case_name);

// --quantization fp8 on the GPU: a fixture quantized as it loads equals the twin holding its
// linear weights quantized and dequantized (the same weights an FP8 checkpoint of it ships).
class GpuQuantization : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuQuantization, EqualsItsDequantizedTwin) {
  SKIP_WITHOUT_GPU();
  const std::string fixture = GetParam();
  const fs::path root = fs::temp_directory_path() / ("dsinfer_gpu_quantize_" + fixture + "_" + std::to_string(::getpid()));
  const ModelDir dir = ModelDir::open(fixture_dir(fixture));
  const LinearWeightNames linear(ModelConfig::from_json(dir.config));
  make_fp8_checkpoints(fixture, 128, root / "fp8", root / "ref", [&](const std::string& n) { return linear.contains(n); });
  auto backend = make_backend(Device{DeviceKind::CUDA, 0});
  ModelOptions quantize;
  quantize.quantization = Quantization::Fp8;
  auto quantized = load_model(dir, *backend, quantize);
  auto twin = load_model(ModelDir::open((root / "ref").string()), *backend);
  for (const auto& seq : fixture_ref(fixture)["sequences"]) {
    const std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    expect_close(score_tokens(*quantized, *backend, ids), score_tokens(*twin, *backend, ids), 1e-6f,
                 fixture + " quantized vs dequantized twin, " + std::to_string(ids.size()) + " tokens");
  }
  fs::remove_all(root);
}

INSTANTIATE_TEST_SUITE_P(GpuFixtures, GpuQuantization,
                         ::testing::Values("qwen2-tiny", "llama-tiny", "ds2-lite-tiny", "ds3-tiny"),
                         fixture_test_name);
