// FP8 block-scaled checkpoints (DeepSeek-V3's release format) on the GPU: every projection of a
// fixture quantized with our quantizer, against a twin holding the same weights dequantized to
// F32. The GPU turns both into the same bf16 matrices (fp8 * scale, then one rounding), so the
// two models must agree to the last bit; this covers the FP8 path of attention, dense MLP and
// every MoE expert.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "../fixture_util.h"
#include "core/fp8_blocks.h"
#include "gpu_test_util.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

OwnedTensor owned(DType dtype, const Shape& shape, const void* data, size_t bytes) {
  OwnedTensor o{dtype, shape, {}};
  o.bytes.assign(static_cast<const unsigned char*>(data), static_cast<const unsigned char*>(data) + bytes);
  return o;
}

// Writes the FP8 checkpoint to `fp8_dir` and its dequantized twin to `ref_dir`.
void make_checkpoints(const std::string& fixture, int block, const fs::path& fp8_dir, const fs::path& ref_dir) {
  TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  std::map<std::string, OwnedTensor> fp8, ref;
  for (const std::string& name : store.names()) {
    const Tensor& t = store.get(name).view;
    if (t.shape.size() != 2 || name.find("_proj.weight") == std::string::npos) {
      fp8[name] = ref[name] = owned(t.dtype, t.shape, t.data, t.nbytes());
      continue;
    }
    const int64_t rows = t.dim(0), cols = t.dim(1);
    std::vector<float> w(rows * cols);
    for (int64_t r = 0; r < rows; ++r) weight_row_to_f32(Weight{t, {}, 0, 0}, r, w.data() + r * cols);
    Fp8Blocks q = quantize_fp8_blocks(w.data(), rows, cols, block, block);
    const Shape scale_shape = {(rows + block - 1) / block, (cols + block - 1) / block};
    for (int64_t i = 0; i < rows * cols; ++i)
      w[i] = fp8e4m3_to_f32(q.values[i]) * q.scales[(i / cols / block) * scale_shape[1] + (i % cols) / block];
    fp8[name] = owned(DType::F8_E4M3, t.shape, q.values.data(), q.values.size());
    fp8[name.substr(0, name.size() - 6) + "weight_scale_inv"] =
        owned(DType::F32, scale_shape, q.scales.data(), q.scales.size() * sizeof(float));
    ref[name] = owned(DType::F32, t.shape, w.data(), w.size() * sizeof(float));
  }
  fs::create_directories(fp8_dir);
  fs::create_directories(ref_dir);
  write_safetensors((fp8_dir / "model.safetensors").string(), fp8);
  write_safetensors((ref_dir / "model.safetensors").string(), ref);
  std::ofstream(ref_dir / "config.json") << config.dump();
  config["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {block, block}}};
  std::ofstream(fp8_dir / "config.json") << config.dump();
}

}  // namespace

class GpuFp8Checkpoint : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(GpuFp8Checkpoint, EqualsItsDequantizedTwin) {
  SKIP_WITHOUT_GPU();
  const auto [fixture, block] = GetParam();
  const fs::path root = fs::temp_directory_path() /
                        ("dsinfer_gpu_fp8_" + fixture + std::to_string(block) + "_" + std::to_string(::getpid()));
  make_checkpoints(fixture, block, root / "fp8", root / "ref");
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
                         ::testing::Values(std::make_pair(std::string("ds3-tiny"), 128),
                                           std::make_pair(std::string("ds3-tiny"), 16),
                                           std::make_pair(std::string("ds2-lite-tiny"), 24)),
                         [](const auto& info) {
                           std::string n = info.param.first + "_block" + std::to_string(info.param.second);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });
