// A compiled PCRE2 regex (UTF + Unicode properties, JIT when available) for pre-tokenizers.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsinfer {

class Regex {
 public:
  // Compiles `pattern`; a bad pattern throws naming `where` and the offset of the error.
  Regex(const std::string& pattern, const std::string& where);

  // The [start, end) byte ranges of all non-overlapping matches, left to right. After an
  // empty match the search resumes one character later (as Oniguruma's find_iter does).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

}  // namespace dsinfer
