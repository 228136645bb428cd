// The flags that choose where and how a model runs, shared by generate, chat and bench.
#pragma once
#include <CLI/CLI.hpp>

#include "runtime/loaded_model.h"

namespace dsinfer {

// --device, --tensor-parallel-size, --enforce-eager and the model flags; with `dummy_weights`, also
// --dummy-weights and --num-layers.
void add_load_flags(CLI::App& app, LoadOptions& o, bool dummy_weights);
// --tensor-parallel-size N (--tp N): ranks of a tensor-parallel group; --expert-parallel.
void add_tensor_parallel_flags(CLI::App& app, int& size, ModelOptions& o);
// Every command that loads a model: --mla-prefill auto|absorbed|expanded into o.mla_prefill,
// --quantization none|fp8 into o.quantization, --kv-dtype auto|fp8 into o.kv_dtype.
void add_model_flags(CLI::App& app, ModelOptions& o);
// --block-size N: the KV cache's slots a block (0: the model's, as dsinfer plan counts).
void add_block_size_flag(CLI::App& app, int& block_size);

}  // namespace dsinfer
