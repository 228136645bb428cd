#include "runtime/speculative_options.h"

#include "core/error.h"

namespace dsinfer {

void check_speculative(const SpeculativeOptions& o) {
  if (o.method != "ngram" && o.method != "mtp")
    fail("--speculative-method '", o.method, "': expected ngram (prompt lookup) or mtp (the model's MTP layer)");
  if (o.method == "mtp" && o.ngram.max_tokens > 1)
    fail("--speculative-method mtp drafts one token a step (the MTP layer guesses one token ahead), not ",
         o.ngram.max_tokens, ": use --num-speculative-tokens 1");
  make_ngram_drafter(o.ngram);  // throws on bad --prompt-lookup-min / max
}

bool drafts_with_mtp(const SpeculativeOptions& o) { return o.method == "mtp" && o.ngram.max_tokens > 0; }

void apply_speculative(const SpeculativeOptions& o, EngineOptions& eo) {
  check_speculative(o);
  eo.mtp_drafts = drafts_with_mtp(o);
  eo.drafter = eo.mtp_drafts ? nullptr : make_ngram_drafter(o.ngram);
}

}  // namespace dsinfer
