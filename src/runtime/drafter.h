// Drafter: the draft half of speculative decoding. It guesses the tokens that follow a
// sequence; the engine runs them through the model with the sequence's next token, in one step,
// and keeps the guesses the model's own sampling agrees with. A wrong guess costs compute, never
// output: what a request gets is what it would have got without drafts.
#pragma once
#include <vector>

namespace dsinfer {

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to max_tokens tokens likely to follow `tokens` (a sequence's prompt and output so far);
  // may be fewer, or none. Called on the engine's thread.
  virtual std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const = 0;
};

}  // namespace dsinfer
