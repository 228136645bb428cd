#include "model/dummy_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/log.h"
#include "plan/tensor_inventory.h"

namespace dsinfer {
namespace {

// Uniform values in [-scale, scale) from a counter-based hash, so tensors fill in parallel.
float random_value(uint64_t seed, int64_t i, float scale) {
  uint64_t x = seed ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f) * scale;
}

// One tensor to make: uniform values in [offset - scale, offset + scale).
struct TensorSpec {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t seed;
  float scale, offset;
};

// Makes elements [first, first + count) of the spec's tensor on demand: each value depends only on
// its index, so a rank makes just its part, and a part fills on all cores.
TensorEntry generated(const TensorSpec& spec) {
  TensorGenerator generate = [spec](int64_t first, int64_t count, void* out) {
#pragma omp parallel for if (count > (int64_t{1} << 16))
    for (int64_t i = 0; i < count; ++i) {
      const float v = spec.offset + random_value(spec.seed, first + i, spec.scale);
      if (spec.dtype == DType::BF16) static_cast<uint16_t*>(out)[i] = f32_to_bf16(v);
      else if (spec.dtype == DType::F8_E4M3) static_cast<uint8_t*>(out)[i] = f32_to_fp8e4m3(v);
      else static_cast<float*>(out)[i] = v;
    }
  };
  return TensorEntry{spec.name, Tensor{spec.dtype, spec.shape, nullptr, Device{}}, "dummy weights", std::move(generate)};
}

std::string expand(std::string name, int layer, int expert) {
  auto put = [&](char key, int value) {
    const std::string k = std::string(".") + key + ".";
    if (size_t p = name.find(k); p != std::string::npos) name.replace(p + 1, 1, std::to_string(value));
  };
  put('N', layer);
  put('E', expert);
  return name;
}

}  // namespace

TensorStore dummy_weights(const nlohmann::json& config_json, const ModelConfig& config) {
  plan::PlanModel pm = plan::PlanModel::from_json(config_json, "dummy");
  std::vector<TensorSpec> specs;
  uint64_t seed = 1;
  int64_t params = 0;
  // Layers -1 (embedding), 0.., the head, then the MTP layer's tensors (at layer num_layers).
  for (int layer = -1; layer <= config.num_layers + 1; ++layer) {
    const bool head = layer == config.num_layers, mtp = layer > config.num_layers;
    std::vector<plan::TensorGroup> groups = layer < 0 ? plan::embedding_tensors(pm)
                                            : head    ? plan::head_tensors(pm)
                                            : mtp     ? plan::mtp_tensors(pm)
                                                      : plan::layer_tensors(pm, layer);
    for (const plan::TensorGroup& g : groups) {
      if (!g.stored) continue;
      for (int64_t e = 0; e < g.count; ++e) {
        const std::string name = expand(g.name, mtp ? config.num_layers : layer, static_cast<int>(e));
        const bool matrix = g.cols > 1 || g.role == plan::TensorRole::Linear;
        Shape shape = matrix ? Shape{g.rows, g.cols} : Shape{g.rows};
        params += g.rows * g.cols;
        if (g.role == plan::TensorRole::Norm) {
          specs.push_back({name, DType::BF16, shape, ++seed, 0.05f, 1.0f});
        } else if (g.role == plan::TensorRole::RouterBias) {
          specs.push_back({name, DType::F32, shape, ++seed, 0.01f, 0.0f});
        } else if ((g.role == plan::TensorRole::Linear && config.fp8_checkpoint) ||
                   (g.role == plan::TensorRole::Absorbed && pm.config.fp8_checkpoint)) {
          // kv_b_proj takes the checkpoint's own format (pm's, from its config.json): an FP8
          // release ships it in FP8, and --quantization fp8 leaves it as stored (the model folds
          // it into 16-bit W_UK and W_UV at load either way).
          // Weights of magnitude ~1/sqrt(fan_in): fp8 values in [-1, 1) times a per-block scale.
          specs.push_back({name, DType::F8_E4M3, shape, ++seed, 1.0f, 0.0f});
          Shape s = {(g.rows + config.fp8_block_rows - 1) / config.fp8_block_rows,
                     (g.cols + config.fp8_block_cols - 1) / config.fp8_block_cols};
          specs.push_back({name.substr(0, name.size() - 6) + "weight_scale_inv", DType::F32, s, ++seed, 0.0f,
                           1.0f / std::sqrt(static_cast<float>(g.cols))});
        } else {
          specs.push_back({name, DType::BF16, shape, ++seed, 1.0f / std::sqrt(static_cast<float>(g.cols)), 0.0f});
        }
      }
    }
  }
  std::vector<TensorEntry> entries;
  for (const TensorSpec& spec : specs) entries.push_back(generated(spec));
  TensorStore store = TensorStore::generated(std::move(entries), "dummy weights");
  log_info("dummy weights: ", params, " random parameters at the real shapes (generation will be gibberish)");
  return store;
}

}  // namespace dsinfer
