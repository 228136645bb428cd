// KvCache: the paged KV cache of all layers, allocated once up front on the backend's device.
// Slot s of a layer holds one token: block s / block_size, offset s % block_size.
#pragma once
#include <vector>

#include "backend/backend.h"

namespace dsinfer {

struct KvCacheSpec {
  int num_layers = 0;
  int k_width = 0;  // values per token per layer in k (MLA: kv_lora_rank + rope dim)
  int v_width = 0;  // values per token per layer in v (0 for MLA)
  DType dtype = DType::F32;

  size_t bytes_per_token() const { return static_cast<size_t>(num_layers) * (k_width + v_width) * dtype_size(dtype); }
};

class KvCache {
 public:
  KvCache(Backend& backend, const KvCacheSpec& spec, int num_blocks, int block_size);

  KvLayer layer(int i) const { return layers_.at(i); }
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int64_t num_tokens() const { return static_cast<int64_t>(num_blocks_) * block_size_; }
  size_t bytes() const { return storage_.bytes(); }
  const KvCacheSpec& spec() const { return spec_; }

 private:
  KvCacheSpec spec_;
  int num_blocks_, block_size_;
  Buffer storage_;
  std::vector<KvLayer> layers_;
};

}  // namespace dsinfer
