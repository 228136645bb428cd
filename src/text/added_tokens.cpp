#include "text/added_tokens.h"

#include <algorithm>

#include "core/error.h"
#include "text/regex.h"
#include "text/utf8.h"

namespace dsinfer {
namespace {

bool optional_flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_boolean()) fail(where, ".", key, ": expected true or false");
  return j[key];
}

// Whether the character touching the match is a word character (letter, digit or '_'),
// which makes a single_word token not match there.
bool is_word_boundary_char(std::string_view ch) {
  static const Regex word(R"(^[\p{L}\p{N}_])", "single_word boundary");
  return !word.find_all(ch).empty();
}

std::string_view last_char(std::string_view s) {
  size_t start = s.size();
  while (start > 0 && (static_cast<unsigned char>(s[start - 1]) & 0xC0) == 0x80) --start;
  return s.substr(start > 0 ? start - 1 : 0);
}

std::string_view first_char(std::string_view s) {
  size_t pos = 0;
  if (!s.empty()) utf8_next(s, pos);
  return s.substr(0, pos);
}

// Byte offset where the trailing whitespace of s[0, end) begins.
size_t skip_whitespace_back(std::string_view s, size_t end) {
  while (end > 0) {
    std::string_view ch = last_char(s.substr(0, end));
    size_t pos = 0;
    if (!is_unicode_whitespace(utf8_next(ch, pos))) break;
    end -= ch.size();
  }
  return end;
}

// Byte offset where the whitespace starting at `start` ends.
size_t skip_whitespace_forward(std::string_view s, size_t start) {
  while (start < s.size()) {
    size_t pos = start;
    if (!is_unicode_whitespace(utf8_next(s, pos))) break;
    start = pos;
  }
  return start;
}

}  // namespace

AddedToken AddedToken::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected an object");
  if (!j.contains("id") || !j["id"].is_number_integer() || j["id"].get<long long>() < 0)
    fail(where, ".id: expected a non-negative integer");
  if (!j.contains("content") || !j["content"].is_string() || j["content"].get_ref<const std::string&>().empty())
    fail(where, ".content: expected a non-empty string");
  AddedToken t;
  t.id = j["id"];
  t.content = j["content"];
  t.special = optional_flag(j, "special", false, where);
  t.lstrip = optional_flag(j, "lstrip", false, where);
  t.rstrip = optional_flag(j, "rstrip", false, where);
  t.single_word = optional_flag(j, "single_word", false, where);
  // HF's default: special tokens are matched before normalization, others after.
  t.normalized = optional_flag(j, "normalized", !t.special, where);
  return t;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  for (size_t t = 0; t < tokens_.size(); ++t) {
    int node = 0;
    for (char c : tokens_[t].content) {
      auto byte = static_cast<unsigned char>(c);
      int next = child(node, byte);
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_.emplace_back();
        auto& kids = nodes_[node].children;
        kids.insert(std::lower_bound(kids.begin(), kids.end(), std::make_pair(byte, 0)), {byte, next});
      }
      node = next;
    }
    nodes_[node].token = static_cast<int>(t);
  }
}

int AddedTokenMatcher::child(int node, unsigned char byte) const {
  const auto& kids = nodes_[node].children;
  auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(byte, 0));
  return it != kids.end() && it->first == byte ? it->second : -1;
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t* end) const {
  int node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      *end = i + 1;
    }
  }
  return best;
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size() && !empty();) {
    size_t stop = 0;
    int t = longest_at(text, pos, &stop);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[t];
    size_t start = pos;
    pos = stop;  // like HF's match iterator, a rejected match still consumes its text
    if (tok.single_word && ((start > 0 && is_word_boundary_char(last_char(text.substr(0, start)))) ||
                            (stop < text.size() && is_word_boundary_char(first_char(text.substr(stop))))))
      continue;
    if (tok.lstrip) start = std::max(skip_whitespace_back(text, start), plain_start);
    if (tok.rstrip) stop = skip_whitespace_forward(text, stop);
    if (start > plain_start) out.push_back({plain_start, start, -1});
    out.push_back({start, stop, tok.id});
    plain_start = pos = stop;
  }
  if (plain_start < text.size()) out.push_back({plain_start, text.size(), -1});
  return out;
}

}  // namespace dsinfer
