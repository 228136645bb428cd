// WeightLoader: fetches named checkpoint tensors, checks their shapes, pairs FP8 weights with
// their block scales, and makes them usable on the backend's device.
#pragma once
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/model_config.h"
#include "model/shard.h"
#include "model/weight_quantization.h"

namespace dsinfer {

class WeightLoader {
 public:
  struct Named {
    std::string name;
    Shape shape;  // of the whole checkpoint tensor
    Part part = {};  // a tensor-parallel rank's slice
  };

  // `loaded_bytes` counts the bytes of the weights the model holds: every tensor (or part) fetched
  // with get / get_adjacent, and every upload of data it made (upload_f32, upload_act).
  // With `quantize`, the weights it names that are stored in 16 or 32 bit load as FP8
  // (model/weight_quantization.h).
  WeightLoader(const TensorStore& store, Backend& backend, const ModelConfig& config, std::vector<Buffer>& storage,
               size_t& loaded_bytes, const LinearWeightNames* quantize = nullptr)
      : store_(store),
        backend_(backend),
        config_(config),
        storage_(storage),
        loaded_bytes_(loaded_bytes),
        quantize_(quantize) {}

  // Throws naming the tensor when it is missing or its shape differs from `expected`, or when
  // `part` is out of range (or, for FP8, not whole scale blocks).
  Weight get(const std::string& name, const Shape& expected, const Part& part = {});
  // Several tensors applied to one input, which the backend may place back to back
  // (Backend::upload_weights); each checked as get() does.
  std::vector<Weight> get_adjacent(const std::vector<Named>& named);
  // The tensor as float32 host data (dequantized), for weights the model reshapes at load.
  std::vector<float> get_f32(const std::string& name, const Shape& expected, const Part& part = {});
  bool has(const std::string& name) const { return store_.has(name); }
  Backend& backend() { return backend_; }
  // Uploads float32 host data as a device tensor owned by the model.
  Tensor upload_f32(const std::vector<float>& data, Shape shape);
  // Uploads float32 host data in the backend's activation dtype (F32, BF16 or F16), for matrices
  // the model applies with activation-dtype ops (MLA's per-head absorption matrices).
  Tensor upload_act(const std::vector<float>& data, Shape shape);

 private:
  Weight host_weight(const std::string& name, const Shape& expected) const;
  // host_weight's part: rows are a view, columns a copy into `copy`.
  Weight stored_part(const std::string& name, const Shape& expected, const Part& part, Buffer& copy);
  // stored_part, quantized into `copy` when the loader quantizes it.
  Weight host_part(const std::string& name, const Shape& expected, const Part& part, Buffer& copy);
  // Keeps the host copies a backend uses in place (the CPU's), frees the rest.
  void keep_used(const std::vector<Weight>& uploaded, std::vector<Buffer>& copies);

  const TensorStore& store_;
  Backend& backend_;
  const ModelConfig& config_;
  std::vector<Buffer>& storage_;
  size_t& loaded_bytes_;
  const LinearWeightNames* quantize_;
};

// Logs the checkpoint's layers past config.json's num_hidden_layers that are not loaded: a line
// about the multi-token-prediction layers the config declares (num_nextn_predict_layers) unless
// `mtp_loaded`, a warning about any beyond them (a config that does not match its weights).
void log_unused_layers(const TensorStore& store, const ModelConfig& config, bool mtp_loaded);

}  // namespace dsinfer
