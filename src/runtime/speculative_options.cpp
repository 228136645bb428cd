#include "runtime/speculative_options.h"

#include "core/error.h"

namespace dsinfer {

void check_speculative(const SpeculativeOptions& o) {
  if (o.method != "ngram" && o.method != "mtp")
    fail("--speculative-method '", o.method, "': expected ngram (prompt lookup) or mtp (the model's MTP layer)");
  make_ngram_drafter(o.ngram);  // throws on bad --prompt-lookup-min / max
}

bool drafts_with_mtp(const SpeculativeOptions& o) { return o.method == "mtp" && o.ngram.max_tokens > 0; }

void apply_speculative(const SpeculativeOptions& o, EngineOptions& eo) {
  check_speculative(o);
  eo.mtp_drafts = drafts_with_mtp(o) ? o.ngram.max_tokens : 0;
  eo.drafter = eo.mtp_drafts > 0 ? nullptr : make_ngram_drafter(o.ngram);
}

}  // namespace dsinfer
