#include "model/weight_quantization.h"

#include <algorithm>
#include <regex>
#include <vector>

#include "core/error.h"
#include "core/fp8_blocks.h"
#include "plan/tensor_inventory.h"

namespace dsinfer {
namespace {

constexpr int kBlock = 128;  // DeepSeek's weight_block_size

// `name` with the number after each ".layers." and ".experts." written as the inventory's N and E.
std::string generic_name(const std::string& name) {
  static const std::regex layer(R"(\.layers\.\d+\.)"), expert(R"(\.experts\.\d+\.)");
  return std::regex_replace(std::regex_replace(name, layer, ".layers.N."), expert, ".experts.E.");
}

}  // namespace

Quantization parse_quantization(const std::string& name) {
  if (name == "none") return Quantization::None;
  if (name == "fp8") return Quantization::Fp8;
  fail("unknown quantization '", name, "' (choose none or fp8)");
}

ModelConfig quantized_config(ModelConfig config, Quantization q) {
  if (q == Quantization::Fp8 && !config.fp8_checkpoint) {
    config.fp8_checkpoint = true;
    config.fp8_block_rows = config.fp8_block_cols = kBlock;
  }
  return config;
}

LinearWeightNames::LinearWeightNames(const ModelConfig& config) {
  const plan::PlanModel m = plan::PlanModel::from_config(config, config.architecture);
  std::vector<plan::TensorGroup> groups = plan::all_tensors(m);
  for (plan::TensorGroup& g : plan::mtp_tensors(m)) groups.push_back(std::move(g));
  for (const plan::TensorGroup& g : groups)
    if (g.role == plan::TensorRole::Linear) names_.insert(g.name);
}

bool LinearWeightNames::contains(const std::string& name) const { return names_.count(generic_name(name)) > 0; }

Weight quantize_weight_fp8(const Weight& w, Buffer& storage) {
  if (w.w.shape.size() != 2) fail("FP8 quantization: a weight of shape ", shape_str(w.w.shape), " is not a matrix");
  const int64_t rows = w.w.dim(0), cols = w.w.dim(1), bands = (rows + kBlock - 1) / kBlock,
                bc = (cols + kBlock - 1) / kBlock;
  const size_t value_bytes = (static_cast<size_t>(rows * cols) + 63) / 64 * 64;  // the scales stay aligned
  storage = host_alloc(value_bytes + bands * bc * sizeof(float));
  Weight q;
  q.w = Tensor{DType::F8_E4M3, {rows, cols}, storage.data(), Device{}};
  q.scale = Tensor{DType::F32, {bands, bc}, static_cast<char*>(storage.data()) + value_bytes, Device{}};
  q.block_rows = q.block_cols = kBlock;
  uint8_t* values = static_cast<uint8_t*>(q.w.data);
  float* scales = static_cast<float*>(q.scale.data);
#pragma omp parallel for schedule(dynamic)
  for (int64_t b = 0; b < bands; ++b) {
    const int64_t r0 = b * kBlock, n = std::min<int64_t>(kBlock, rows - r0);
    std::vector<float> band(n * cols);
    for (int64_t r = 0; r < n; ++r) weight_row_to_f32(w, r0 + r, band.data() + r * cols);
    quantize_fp8_band(band.data(), n, cols, kBlock, values + r0 * cols, scales + b * bc);
  }
  return q;
}

}  // namespace dsinfer
