#include "text/python_str.h"

#include <algorithm>
#include <clocale>
#include <cwctype>
#include <locale.h>

#include "text/utf8.h"

namespace dsinfer::pystr {
namespace {

// Unicode case mapping and classes come from glibc's C.UTF-8 locale, used through the *_l
// functions so that the process-wide locale is untouched. Without it, ASCII rules apply.
locale_t unicode_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  locale_t loc = unicode_locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  locale_t loc = unicode_locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

bool is_alpha(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t loc = unicode_locale();
  return loc && iswalpha_l(static_cast<wint_t>(c), loc);
}

bool is_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  locale_t loc = unicode_locale();
  return loc && iswdigit_l(static_cast<wint_t>(c), loc);
}

bool is_cased_upper(char32_t c) { return to_lower(c) != c; }
bool is_cased_lower(char32_t c) { return to_upper(c) != c; }

// Python's line boundaries for splitlines().
bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

int64_t normalize_index(int64_t i, int64_t n) { return i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n); }

}  // namespace

size_t length(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) utf8_next(s, pos);
  return n;
}

std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step) {
  std::u32string cps = utf8_decode(s);
  int64_t n = static_cast<int64_t>(cps.size());
  int64_t st = step.value_or(1);
  std::u32string out;
  if (st > 0) {
    int64_t a = start ? normalize_index(*start, n) : 0;
    int64_t b = stop ? normalize_index(*stop, n) : n;
    for (int64_t i = a; i < b; i += st) out += cps[i];
  } else {
    // Negative steps walk down from start (default: the last element) to just above stop.
    int64_t a = start ? (*start < 0 ? *start + n : std::min(*start, n - 1)) : n - 1;
    int64_t b = stop ? (*stop < 0 ? *stop + n : std::min(*stop, n - 1)) : -1;
    if (stop && *stop < 0 && *stop + n < 0) b = -1;
    for (int64_t i = a; i > b && i >= 0; i += st) out += cps[i];
  }
  return utf8_encode(out);
}

std::optional<std::string> at(std::string_view s, int64_t index) {
  std::u32string cps = utf8_decode(s);
  int64_t n = static_cast<int64_t>(cps.size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  std::string out;
  utf8_append(out, cps[index]);
  return out;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string cps = utf8_decode(s);
  std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_unicode_whitespace(c); };
  size_t a = 0, b = cps.size();
  if (left)
    while (a < b && strippable(cps[a])) ++a;
  if (right)
    while (b > a && strippable(cps[b - 1])) --b;
  return utf8_encode(cps.substr(a, b - a));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) return {std::string(s)};
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t hit = s.find(*sep, pos);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  std::u32string cps = utf8_decode(s);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && is_unicode_whitespace(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      // The remainder keeps its trailing whitespace, as in Python.
      out.push_back(utf8_encode(cps.substr(i)));
      break;
    }
    size_t j = i;
    while (j < cps.size() && !is_unicode_whitespace(cps[j])) ++j;
    out.push_back(utf8_encode(cps.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) return {std::string(s)};
    size_t end = s.size();
    while (static_cast<int64_t>(out.size()) < maxsplit) {
      size_t hit = end >= sep->size() ? s.rfind(*sep, end - sep->size()) : std::string_view::npos;
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.emplace_back(s.substr(0, end));
  } else {
    std::u32string cps = utf8_decode(s);
    size_t j = cps.size();
    while (true) {
      while (j > 0 && is_unicode_whitespace(cps[j - 1])) --j;
      if (j == 0) break;
      if (static_cast<int64_t>(out.size()) == maxsplit) {
        out.push_back(utf8_encode(cps.substr(0, j)));
        break;
      }
      size_t i = j;
      while (i > 0 && !is_unicode_whitespace(cps[i - 1])) --i;
      out.push_back(utf8_encode(cps.substr(i, j - i)));
      j = i;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string cps = utf8_decode(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_line_break(cps[i])) continue;
    size_t end = i;
    if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    out.push_back(utf8_encode(cps.substr(start, (keepends ? i + 1 : end) - start)));
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(utf8_encode(cps.substr(start)));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts `with` between code points (and at both ends).
    std::u32string cps = utf8_decode(s);
    int64_t done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      utf8_append(out, c);
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(with);
    pos = hit + old.size();
  }
  out.append(s.substr(pos));
  return out;
}

int64_t find(std::string_view s, std::string_view sub, bool last) {
  size_t hit = last ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<int64_t>(length(s.substr(0, hit)));
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

std::string upper(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) utf8_append(out, to_upper(utf8_next(s, pos)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) utf8_append(out, to_lower(utf8_next(s, pos)));
  return out;
}

std::string title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    char32_t c = utf8_next(s, pos);
    utf8_append(out, previous_cased ? to_lower(c) : to_upper(c));
    previous_cased = is_alpha(c);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t pos = 0; pos < s.size(); first = false) {
    char32_t c = utf8_next(s, pos);
    utf8_append(out, first ? to_upper(c) : to_lower(c));
  }
  return out;
}

bool is_class(std::string_view s, const std::string& which) {
  std::u32string cps = utf8_decode(s);
  if (cps.empty()) return false;
  auto all = [&](auto pred) { return std::all_of(cps.begin(), cps.end(), pred); };
  if (which == "isdigit") return all(is_digit);
  if (which == "isalpha") return all(is_alpha);
  if (which == "isalnum") return all([](char32_t c) { return is_alpha(c) || is_digit(c); });
  if (which == "isspace") return all(is_unicode_whitespace);
  // islower/isupper: at least one cased character and none of the other case.
  bool lower_seen = std::any_of(cps.begin(), cps.end(), is_cased_lower);
  bool upper_seen = std::any_of(cps.begin(), cps.end(), is_cased_upper);
  if (which == "islower") return lower_seen && !upper_seen;
  return upper_seen && !lower_seen;
}

}  // namespace dsinfer::pystr
