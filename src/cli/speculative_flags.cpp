#include "cli/speculative_flags.h"

namespace dsinfer {

void add_speculative_flags(CLI::App& app, SpeculativeOptions& o) {
  app.add_option("--speculative-method", o.method,
                 "How drafts are made: ngram (prompt lookup) or mtp (the model's multi-token-prediction layer, "
                 "DeepSeek-V3 / R1)")
      ->capture_default_str();
  app.add_option("--num-speculative-tokens", o.ngram.max_tokens,
                 "Speculative decoding: up to K drafted tokens, verified in one step (0: off)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--prompt-lookup-max", o.ngram.max_n, "Longest suffix of the sequence looked up for a draft (ngram)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--prompt-lookup-min", o.ngram.min_n, "Shortest suffix of the sequence looked up for a draft (ngram)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

}  // namespace dsinfer
