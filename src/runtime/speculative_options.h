// How speculative decoding drafts, as the commands' flags ask: by prompt lookup (NgramDrafter,
// vLLM's "ngram" method) or with the model's own multi-token-prediction layer (DeepSeek-V3 / R1,
// vLLM's "mtp"), which guesses one token ahead from the model's hidden state, chained for more.
#pragma once
#include <string>

#include "runtime/engine.h"
#include "runtime/ngram_drafter.h"

namespace dsinfer {

struct SpeculativeOptions {
  std::string method = "ngram";  // "ngram" or "mtp"
  NgramDraftOptions ngram;       // ngram.max_tokens: tokens drafted a step, either method (0: off)
};

// Throws naming the flag: an unknown method, prompt lookup's suffix lengths out of order.
void check_speculative(const SpeculativeOptions& o);
// Whether the model must load its multi-token-prediction layer (ModelOptions::mtp).
bool drafts_with_mtp(const SpeculativeOptions& o);
// Sets the engine's drafts: eo.drafter (prompt lookup) or eo.mtp_drafts; neither when off.
void apply_speculative(const SpeculativeOptions& o, EngineOptions& eo);

}  // namespace dsinfer
