// The flags of n-gram speculative decoding (prompt lookup), shared by generate, chat, bench and
// serve; names as vLLM's ngram speculator.
#pragma once
#include <CLI/CLI.hpp>

#include "runtime/ngram_drafter.h"

namespace dsinfer {

// --num-speculative-tokens K (0: off), --prompt-lookup-max N, --prompt-lookup-min N.
void add_speculative_flags(CLI::App& app, NgramDraftOptions& o);

}  // namespace dsinfer
