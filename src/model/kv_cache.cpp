#include "model/kv_cache.h"

#include "core/error.h"

namespace dsinfer {

KvCache::KvCache(Backend& backend, const KvCacheSpec& spec, int num_blocks, int block_size)
    : spec_(spec), num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks <= 0 || block_size <= 0) fail("KV cache needs at least one block (got ", num_blocks, " x ", block_size, ")");
  const int64_t slots = num_tokens();
  storage_ = backend.alloc(spec.bytes_per_token() * slots);
  char* p = static_cast<char*>(storage_.data());
  const size_t elem = dtype_size(spec.dtype);
  for (int l = 0; l < spec.num_layers; ++l) {
    KvLayer kv;
    kv.k = Tensor{spec.dtype, {slots, spec.k_width}, p, backend.device()};
    p += slots * spec.k_width * elem;
    if (spec.v_width) {
      kv.v = Tensor{spec.dtype, {slots, spec.v_width}, p, backend.device()};
      p += slots * spec.v_width * elem;
    }
    layers_.push_back(kv);
  }
}

}  // namespace dsinfer
