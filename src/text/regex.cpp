#include "text/regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "text/utf8.h"

namespace dsinfer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  std::string where;
  ~Code() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int error) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(error, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
};

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) {
  auto code = std::make_shared<Code>();
  code->where = where;
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MATCH_INVALID_UTF: raw bytes that are not UTF-8 never match instead of failing the search.
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (!code->code)
    fail("bad regex at ", where, " (offset ", offset, "): ", pcre2_message(error), " in pattern '", pattern, "'");
  // JIT is an optimisation only: without it the interpreter gives the same matches.
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);
  code_ = std::move(code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  MatchData md(code_->code);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(code_->code, subject, text.size(), pos, 0, md.data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("regex search failed for ", code_->where, ": ", pcre2_message(rc));
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
    matches.emplace_back(ov[0], ov[1]);
    if (ov[1] > ov[0]) {
      pos = ov[1];
    } else if (ov[1] >= text.size()) {
      break;
    } else {
      size_t next = ov[1];
      utf8_next(text, next);
      pos = next;
    }
  }
  return matches;
}

}  // namespace dsinfer
