// TextStream: turns a request's generated ids into text as they arrive: UTF-8-safe incremental
// detokenization, EOS kept out of the text, and stop strings (StopMatcher: the text is cut
// before the stop string, and text that could be the start of one is held back).
#pragma once
#include <string>
#include <vector>

#include "text/incremental_detokenizer.h"
#include "text/stop_matcher.h"
#include "text/tokenizer.h"

namespace dsinfer {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, std::vector<int> eos_ids);
  // Text that can be shown now; sets stopped() once a stop string has appeared.
  std::string push(int token);
  // The rest of the text once generation is over.
  std::string finish();
  bool stopped() const { return stop_.stopped(); }
  const std::string& text() const { return text_; }

 private:
  std::string shown(std::string piece);

  IncrementalDetokenizer detok_;
  StopMatcher stop_;
  std::vector<int> eos_;
  std::string text_;  // everything shown so far
};

}  // namespace dsinfer
