// Online weight quantization (`--quantization fp8`, vLLM's flag): a checkpoint's linear weights,
// stored in 16 or 32 bit, become FP8 e4m3 in DeepSeek's release format (128 x 128 blocks, a
// float scale each) as they load, so they run on the FP8 kernels V3 runs on and a decode step
// reads half the bytes. Which weights: those `dsinfer plan` counts as linear
// (plan/tensor_inventory.h), so the engine's memory plan and `dsinfer plan --weights-dtype fp8`
// agree; embeddings, the LM head, the MoE router, norms and biases stay as stored.
#pragma once
#include <string>
#include <unordered_set>

#include "backend/weight.h"
#include "core/tensor.h"
#include "model/model_config.h"

namespace dsinfer {

enum class Quantization { None, Fp8 };

// "none" or "fp8"; throws naming the choices otherwise.
Quantization parse_quantization(const std::string& name);

// The config a quantized model runs with: its linear weights are FP8 in 128 x 128 blocks
// (ModelConfig::fp8_checkpoint), which the planner, the KV budget and dummy weights read. An FP8
// checkpoint keeps its own blocks.
ModelConfig quantized_config(ModelConfig config, Quantization q);

// The linear weights of a model that a quantized format quantizes, by checkpoint name (not
// kv_b_proj, which the model folds into 16-bit W_UK and W_UV at load).
class LinearWeightNames {
 public:
  explicit LinearWeightNames(const ModelConfig& config);
  bool contains(const std::string& name) const;

 private:
  std::unordered_set<std::string> names_;  // with layer and expert numbers as the inventory's N and E
};

// A host matrix (F32, BF16 or F16) quantized to FP8 e4m3 in blocks of 128 x 128 (partial at the
// edges), its largest |value| mapped to 448 in each block; values and scales live in `storage`.
Weight quantize_weight_fp8(const Weight& w, Buffer& storage);

}  // namespace dsinfer
