// The flags of speculative decoding, shared by generate, chat and serve; names as vLLM's.
#pragma once
#include <CLI/CLI.hpp>

#include "runtime/speculative_options.h"

namespace dsinfer {

// --speculative-method ngram|mtp, --num-speculative-tokens K (0: off), --prompt-lookup-max N,
// --prompt-lookup-min N.
void add_speculative_flags(CLI::App& app, SpeculativeOptions& o);

}  // namespace dsinfer
