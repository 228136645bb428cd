#include "cli/speculative_flags.h"

namespace dsinfer {

void add_speculative_flags(CLI::App& app, NgramDraftOptions& o) {
  app.add_option("--num-speculative-tokens", o.max_tokens,
                 "Speculative decoding by prompt lookup: up to K drafted tokens, verified in one step (0: off)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--prompt-lookup-max", o.max_n, "Longest suffix of the sequence looked up for a draft")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--prompt-lookup-min", o.min_n, "Shortest suffix of the sequence looked up for a draft")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

}  // namespace dsinfer
