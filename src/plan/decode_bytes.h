// The bytes one decode step must read on each device of a layout (the default: one device
// holding the whole model): the weights its tokens touch (for MoE, the experts a batch is
// expected to choose) and the KV cache, split as `dsinfer plan --tp --ep` splits them. Over a measured
// bandwidth this is the step's floor, which `dsinfer bench` reports its figures against.
#pragma once
#include <cstdint>

#include "model/model_config.h"
#include "plan/layout.h"

namespace dsinfer::plan {

// `batch` sequences with `context` cached tokens each, cached values of `kv_value_bytes` each
// (FP8 latent rows: their bytes over their values, 656 / 576 for V3).
double decode_step_bytes(const ModelConfig& config, int64_t batch, int64_t context, double kv_value_bytes,
                         const Layout& layout = {});

}  // namespace dsinfer::plan
