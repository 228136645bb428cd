// The bytes one decode step must read on each device of a tensor-parallel group of `tp` (1: one
// device holding the whole model): the weights its tokens touch (for MoE, the experts a batch is
// expected to choose) and the KV cache, split as `dsinfer plan --tp` splits them. Over a measured
// bandwidth this is the step's floor, which `dsinfer bench` reports its figures against.
#pragma once
#include <cstdint>

#include "model/model_config.h"

namespace dsinfer::plan {

// `batch` sequences with `context` cached tokens each, cached values of `kv_value_bytes` each.
double decode_step_bytes(const ModelConfig& config, int64_t batch, int64_t context, int kv_value_bytes, int tp = 1);

}  // namespace dsinfer::plan
