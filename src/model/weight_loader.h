// WeightLoader: fetches named checkpoint tensors, checks their shapes, pairs FP8 weights with
// their block scales, and makes them usable on the backend's device.
#pragma once
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/model_config.h"

namespace dsinfer {

class WeightLoader {
 public:
  WeightLoader(const TensorStore& store, Backend& backend, const ModelConfig& config, std::vector<Buffer>& storage)
      : store_(store), backend_(backend), config_(config), storage_(storage) {}

  // Throws naming the tensor when it is missing or its shape differs from `expected`.
  Weight get(const std::string& name, const Shape& expected);
  // Several tensors applied to one input, which the backend may place back to back
  // (Backend::upload_weights); each checked as get() does.
  std::vector<Weight> get_adjacent(const std::vector<std::pair<std::string, Shape>>& named);
  // The tensor as float32 host data (dequantized), for weights the model reshapes at load.
  std::vector<float> get_f32(const std::string& name, const Shape& expected);
  bool has(const std::string& name) const { return store_.has(name); }
  Backend& backend() { return backend_; }
  // Uploads float32 host data as a device tensor owned by the model.
  Tensor upload_f32(const std::vector<float>& data, Shape shape);
  // Uploads float32 host data in the backend's activation dtype (F32, BF16 or F16), for matrices
  // the model applies with activation-dtype ops (MLA's per-head absorption matrices).
  Tensor upload_act(const std::vector<float>& data, Shape shape);

 private:
  Weight host_weight(const std::string& name, const Shape& expected) const;

  const TensorStore& store_;
  Backend& backend_;
  const ModelConfig& config_;
  std::vector<Buffer>& storage_;
};

// Logs one line about tensors of multi-token-prediction layers (index >= num_layers), which
// dsinfer does not load.
void log_skipped_mtp_tensors(const TensorStore& store, int num_layers);

}  // namespace dsinfer
