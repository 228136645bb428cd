// FP8 block-scaled checkpoints (DeepSeek-V3's release format) made from a fixture with our own
// quantizer, with a twin holding the same weights dequantized to F32, so a backend can be held
// to computing exactly what the dequantized weights compute.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fixture_util.h"
#include "backend/weight.h"
#include "core/fp8_blocks.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace dsinfer::testing {

// The checkpoints both backends are tested on: (fixture, block size), from DeepSeek's 128 to
// blocks that leave partial edge blocks.
inline std::vector<std::pair<std::string, int>> fp8_checkpoint_cases() {
  return {{"ds3-tiny", 128}, {"ds3-tiny", 16}, {"ds2-lite-tiny", 24}};
}

inline std::string fp8_case_name(const ::testing::TestParamInfo<std::pair<std::string, int>>& info) {
  std::string n = info.param.first + "_block" + std::to_string(info.param.second);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

inline OwnedTensor owned_tensor(DType dtype, const Shape& shape, const void* data, size_t bytes) {
  OwnedTensor o{dtype, shape, {}};
  o.bytes.assign(static_cast<const unsigned char*>(data), static_cast<const unsigned char*>(data) + bytes);
  return o;
}

// A 2-D tensor of any stored dtype as floats, row-major.
inline std::vector<float> matrix_f32(const Tensor& t) {
  std::vector<float> w(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.dim(0); ++r) weight_row_to_f32(Weight{t, {}, 0, 0}, r, w.data() + r * t.dim(1));
  return w;
}

// Writes the FP8 checkpoint (every matrix `quantized` names, by default every *_proj one,
// quantized in block x block blocks, plus one tensor of a multi-token-prediction layer the loader
// must skip) to `fp8_dir` and its dequantized twin to `ref_dir`.
inline void make_fp8_checkpoints(
    const std::string& fixture, int block, const std::filesystem::path& fp8_dir, const std::filesystem::path& ref_dir,
    const std::function<bool(const std::string&)>& quantized = [](const std::string& name) {
      return name.find("_proj.weight") != std::string::npos;
    }) {
  TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  std::map<std::string, OwnedTensor> fp8, ref;
  for (const std::string& name : store.names()) {
    const Tensor& t = store.get(name).view;
    if (t.shape.size() != 2 || !quantized(name)) {
      fp8[name] = ref[name] = owned_tensor(t.dtype, t.shape, t.data, t.nbytes());
      continue;
    }
    const int64_t rows = t.dim(0), cols = t.dim(1);
    std::vector<float> w = matrix_f32(t);
    Fp8Blocks q = quantize_fp8_blocks(w.data(), rows, cols, block, block);
    const Shape scale_shape = {(rows + block - 1) / block, (cols + block - 1) / block};
    for (int64_t i = 0; i < rows * cols; ++i)
      w[i] = fp8e4m3_to_f32(q.values[i]) * q.scales[(i / cols / block) * scale_shape[1] + (i % cols) / block];
    fp8[name] = owned_tensor(DType::F8_E4M3, t.shape, q.values.data(), q.values.size());
    fp8[name.substr(0, name.size() - 6) + "weight_scale_inv"] =
        owned_tensor(DType::F32, scale_shape, q.scales.data(), q.scales.size() * sizeof(float));
    ref[name] = owned_tensor(DType::F32, t.shape, w.data(), w.size() * sizeof(float));
  }
  const float mtp[4] = {1, 2, 3, 4};
  fp8["model.layers." + std::to_string(config["num_hidden_layers"].get<int>()) + ".eh_proj.weight"] =
      owned_tensor(DType::F32, {2, 2}, mtp, sizeof(mtp));
  std::filesystem::create_directories(fp8_dir);
  std::filesystem::create_directories(ref_dir);
  write_safetensors((fp8_dir / "model.safetensors").string(), fp8);
  write_safetensors((ref_dir / "model.safetensors").string(), ref);
  std::ofstream(ref_dir / "config.json") << config.dump();
  config["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {block, block}}};
  config["num_nextn_predict_layers"] = 1;  // as V3's config declares the layer it ships
  std::ofstream(fp8_dir / "config.json") << config.dump();
}

}  // namespace dsinfer::testing
