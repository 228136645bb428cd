#include "runtime/text_stream.h"

#include <algorithm>

namespace dsinfer {
namespace {

std::vector<std::string> without_empty(std::vector<std::string> stops) {
  stops.erase(std::remove(stops.begin(), stops.end(), std::string()), stops.end());
  return stops;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, std::vector<int> eos_ids)
    : detok_(tokenizer, false), stop_(without_empty(std::move(stop_strings))), eos_(std::move(eos_ids)) {}

std::string TextStream::push(int token) {
  if (stop_.stopped() || std::find(eos_.begin(), eos_.end(), token) != eos_.end()) return "";
  return shown(stop_.push(detok_.push(token)));
}

std::string TextStream::finish() {
  if (stop_.stopped()) return "";
  std::string rest = stop_.push(detok_.flush());
  if (!stop_.stopped()) rest += stop_.flush();
  return shown(std::move(rest));
}

std::string TextStream::shown(std::string piece) {
  text_ += piece;
  return piece;
}

}  // namespace dsinfer
