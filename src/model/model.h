// Model: a causal language model over backend ops. It knows nothing of requests: it runs one
// packed ForwardBatch against a paged KvCache and returns the logits of the requested rows.
#pragma once
#include <memory>
#include <string>

#include "backend/backend.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/kv_cache.h"
#include "model/model_config.h"

namespace dsinfer {

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  virtual KvCacheSpec kv_spec() const = 0;
  // Bytes of the weights on the device.
  virtual size_t weight_bytes() const = 0;
  // Runs the batch, writing its new keys/values into `cache`. Returns logits [logit_rows, vocab]
  // (act dtype F32) on the backend's device, valid until the next call. Not thread-safe.
  virtual Tensor forward(const ForwardBatch& batch, KvCache& cache) = 0;
  // Decode batches of up to max_batch sequences over `cache` run from recorded passes (CUDA
  // graphs) where the backend records them, recorded now; 0 turns that off.
  virtual void record_decode_steps(int max_batch, KvCache& cache) = 0;
};

// Loads a Hugging Face model directory onto the backend; throws on unsupported architectures,
// missing or malformed tensors.
std::unique_ptr<Model> load_model(const ModelDir& dir, Backend& backend);
// A model over tensors from anywhere (a checkpoint, or dummy weights).
std::unique_ptr<Model> load_model(const ModelConfig& config, TensorStore store, Backend& backend);

}  // namespace dsinfer
