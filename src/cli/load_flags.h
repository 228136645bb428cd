// The flags that choose where and how a model runs, shared by generate, chat and bench.
#pragma once
#include <CLI/CLI.hpp>

#include "runtime/loaded_model.h"

namespace dsinfer {

// --device and --enforce-eager; with `dummy_weights`, also --dummy-weights and --num-layers.
void add_load_flags(CLI::App& app, LoadOptions& o, bool dummy_weights);

}  // namespace dsinfer
