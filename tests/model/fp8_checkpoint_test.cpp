// FP8 block-scaled checkpoints (DeepSeek-V3's release format), made from a fixture with our own
// quantizer: the engine must compute exactly what the dequantized weights compute, with edge
// blocks partial, and skip multi-token-prediction layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "../fixture_util.h"
#include "backend/backend.h"
#include "core/fp8_blocks.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

OwnedTensor copy_of(const Tensor& t) {
  OwnedTensor o{t.dtype, t.shape, {}};
  o.bytes.assign(static_cast<const unsigned char*>(t.data), static_cast<const unsigned char*>(t.data) + t.nbytes());
  return o;
}

OwnedTensor f32_tensor(const std::vector<float>& v, Shape shape) {
  OwnedTensor o{DType::F32, std::move(shape), {}};
  o.bytes.resize(v.size() * 4);
  std::memcpy(o.bytes.data(), v.data(), o.bytes.size());
  return o;
}

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> v(t.numel());
  Weight w{t, {}, 0, 0};
  const int64_t cols = t.shape.back();
  for (int64_t r = 0; r < t.numel() / cols; ++r) weight_row_to_f32(w, r, v.data() + r * cols);
  return v;
}

// Writes `fp8_dir` (projections in FP8 + scales, plus a fake MTP layer) and `ref_dir` (the same
// weights dequantized to F32) from a fixture.
void make_checkpoints(const std::string& fixture, int br, int bc, const fs::path& fp8_dir, const fs::path& ref_dir) {
  TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  std::map<std::string, OwnedTensor> fp8, ref;
  for (const std::string& name : store.names()) {
    const Tensor& t = store.get(name).view;
    const bool projection = t.shape.size() == 2 && name.find("_proj.weight") != std::string::npos;
    if (!projection) {
      fp8[name] = ref[name] = copy_of(t);
      continue;
    }
    std::vector<float> w = to_f32(t);
    Fp8Blocks q = quantize_fp8_blocks(w.data(), t.dim(0), t.dim(1), br, bc);
    const Shape scale_shape = {(t.dim(0) + br - 1) / br, (t.dim(1) + bc - 1) / bc};
    fp8[name] = OwnedTensor{DType::F8_E4M3, t.shape, {q.values.begin(), q.values.end()}};
    fp8[name.substr(0, name.size() - 6) + "weight_scale_inv"] = f32_tensor(q.scales, scale_shape);
    std::vector<float> deq(w.size());
    for (int64_t r = 0; r < t.dim(0); ++r)
      for (int64_t c = 0; c < t.dim(1); ++c)
        deq[r * t.dim(1) + c] = fp8e4m3_to_f32(q.values[r * t.dim(1) + c]) * q.scales[(r / br) * scale_shape[1] + c / bc];
    ref[name] = f32_tensor(deq, t.shape);
  }
  const int mtp = config["num_hidden_layers"].get<int>();
  fp8["model.layers." + std::to_string(mtp) + ".eh_proj.weight"] = f32_tensor({1, 2, 3, 4}, {2, 2});
  fs::create_directories(fp8_dir);
  fs::create_directories(ref_dir);
  write_safetensors((fp8_dir / "model.safetensors").string(), fp8);
  write_safetensors((ref_dir / "model.safetensors").string(), ref);
  std::ofstream(ref_dir / "config.json") << config.dump();
  config["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {br, bc}}};
  std::ofstream(fp8_dir / "config.json") << config.dump();
}

}  // namespace

class Fp8Checkpoint : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(Fp8Checkpoint, ComputesExactlyWhatItsDequantizedWeightsCompute) {
  auto [fixture, block] = GetParam();
  fs::path root = fs::temp_directory_path() / ("dsinfer_fp8_" + fixture + std::to_string(block) + "_" + std::to_string(::getpid()));
  make_checkpoints(fixture, block, block, root / "fp8", root / "ref");
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
                         ::testing::Values(std::make_pair(std::string("ds3-tiny"), 128),
                                           std::make_pair(std::string("ds3-tiny"), 16),
                                           std::make_pair(std::string("ds2-lite-tiny"), 24)),
                         [](const auto& info) {
                           std::string n = info.param.first + "_block" + std::to_string(info.param.second);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });
