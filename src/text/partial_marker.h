// Streamed text parsers (reasoning tags, tool-call markers) hold back the end of a chunk that
// may become a marker once more text arrives.
#pragma once
#include <algorithm>
#include <string_view>

namespace dsinfer {

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
inline size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

}  // namespace dsinfer
