#include "model/dummy_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/log.h"
#include "plan/tensor_inventory.h"

namespace dsinfer {
namespace {

// 64 random bits from a counter-based hash of (seed, q), so tensors fill in parallel.
uint64_t random_bits(uint64_t seed, int64_t q) {
  uint64_t x = seed ^ (static_cast<uint64_t>(q) * 0x9e3779b97f4a7c15ull);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// One tensor to make: uniform values in [offset - scale, offset + scale).
struct TensorSpec {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t seed;
  float scale, offset;
};

// A value from 16 random bits: the centre of one of 65536 even steps over the spec's range (finer
// than a bf16 or e4m3 step of the weights' magnitudes).
float uniform(const TensorSpec& spec, uint32_t bits) {
  return spec.offset + ((static_cast<float>(bits) + 0.5f) / 32768.0f - 1.0f) * spec.scale;
}

// Every e4m3 value of 16 random bits at a (scale, offset): a lookup a value instead of a
// conversion a value (the conversion, even inline, was most of the time of making an FP8
// checkpoint's weights).
using Fp8Table = std::vector<uint8_t>;

// Elements [first, first + count): element i takes the 16 bits 16 (i % 4) .. of the hash of i / 4,
// so each depends only on its index (a rank makes just its part) and a part fills on all cores.
template <class T, class Convert>
void fill(const TensorSpec& spec, int64_t first, int64_t count, T* out, Convert convert) {
  const int64_t q0 = first / 4, q1 = (first + count + 3) / 4;
#pragma omp parallel for if (count > (int64_t{1} << 16))
  for (int64_t q = q0; q < q1; ++q) {
    const uint64_t bits = random_bits(spec.seed, q);
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * q + j - first;
      if (i >= 0 && i < count) out[i] = convert(static_cast<uint32_t>(bits >> (16 * j)) & 0xffffu);
    }
  }
}

// Makes elements [first, first + count) of the spec's tensor on demand.
TensorEntry generated(const TensorSpec& spec, std::shared_ptr<const Fp8Table> fp8) {
  TensorGenerator generate = [spec, fp8](int64_t first, int64_t count, void* out) {
    if (spec.dtype == DType::BF16)
      fill(spec, first, count, static_cast<uint16_t*>(out), [&](uint32_t b) { return f32_to_bf16(uniform(spec, b)); });
    else if (spec.dtype == DType::F8_E4M3)
      fill(spec, first, count, static_cast<uint8_t*>(out), [&](uint32_t b) { return (*fp8)[b]; });
    else
      fill(spec, first, count, static_cast<float*>(out), [&](uint32_t b) { return uniform(spec, b); });
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
  std::map<std::pair<float, float>, std::shared_ptr<const Fp8Table>> fp8_tables;  // by (scale, offset)
  std::vector<TensorEntry> entries;
  for (const TensorSpec& spec : specs) {
    std::shared_ptr<const Fp8Table> table;
    if (spec.dtype == DType::F8_E4M3) {
      std::shared_ptr<const Fp8Table>& made = fp8_tables[{spec.scale, spec.offset}];
      if (!made) {
        auto t = std::make_shared<Fp8Table>(65536);
        for (uint32_t b = 0; b < 65536; ++b) (*t)[b] = f32_to_fp8e4m3(uniform(spec, b));
        made = std::move(t);
      }
      table = made;
    }
    entries.push_back(generated(spec, std::move(table)));
  }
  TensorStore store = TensorStore::generated(std::move(entries), "dummy weights");
  log_info("dummy weights: ", params, " random parameters at the real shapes (generation will be gibberish)");
  return store;
}

}  // namespace dsinfer
