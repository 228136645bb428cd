#include "runtime/text_stream.h"

#include <algorithm>

namespace dsinfer {

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, std::vector<int> eos_ids)
    : detok_(tokenizer, false), stops_(std::move(stop_strings)), eos_(std::move(eos_ids)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string TextStream::push(int token) {
  if (stopped_) return "";
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) return "";
  pending_ += detok_.push(token);
  return release(false);
}

std::string TextStream::finish() {
  if (!stopped_) pending_ += detok_.flush();
  return release(true);
}

std::string TextStream::release(bool final) {
  if (stopped_) return "";
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    text_ += out;
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  if (!final)
    for (const std::string& s : stops_)
      for (size_t n = std::min(s.size() - 1, pending_.size()); n > hold; --n)
        if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
          hold = n;
          break;
        }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, out.size());
  text_ += out;
  return out;
}

}  // namespace dsinfer
