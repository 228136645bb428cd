#include "text/utf8.h"

#include <algorithm>

namespace dsinfer {

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// How a byte sequence at some position measures against the UTF-8 rules: `need` is the
// length its lead byte announces (0 for a byte that cannot start a character) and `ok` how
// many of its bytes, lead included, obey the rules.
struct SequenceCheck {
  size_t need = 0;
  size_t ok = 0;
};

SequenceCheck check_sequence(std::string_view s, size_t pos) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = b(pos);
  if (lead < 0x80) return {1, 1};
  SequenceCheck c;
  // The valid range of the second byte depends on the lead (no overlongs, no surrogates,
  // nothing above U+10FFFF): table 3-7 of the Unicode standard.
  unsigned char lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    c.need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    c.need = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    c.need = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return c;
  }
  c.ok = 1;
  while (c.ok < c.need && pos + c.ok < s.size()) {
    unsigned char x = b(pos + c.ok);
    unsigned char l = c.ok == 1 ? lo : 0x80, h = c.ok == 1 ? hi : 0xBF;
    if (x < l || x > h) break;
    ++c.ok;
  }
  return c;
}

}  // namespace

size_t utf8_sequence_length(std::string_view s, size_t pos, bool* incomplete) {
  SequenceCheck c = check_sequence(s, pos);
  if (incomplete) *incomplete = c.need > 0 && c.ok < c.need && pos + c.ok == s.size();
  return c.ok == c.need ? c.need : 0;
}

char32_t utf8_next(std::string_view s, size_t& pos) {
  size_t len = utf8_sequence_length(s, pos, nullptr);
  if (len == 0) {
    ++pos;
    return 0xFFFD;
  }
  auto b = [&](size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(s[pos + i])); };
  char32_t cp;
  switch (len) {
    case 1: cp = b(0); break;
    case 2: cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F); break;
    case 3: cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); break;
    default: cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  pos += len;
  return cp;
}

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(utf8_next(s, pos));
  return out;
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) utf8_append(out, cp);
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    size_t len = utf8_sequence_length(bytes, pos, nullptr);
    if (len > 0) {
      out.append(bytes.substr(pos, len));
      pos += len;
    } else {
      // One U+FFFD per maximal subpart of a valid sequence (at least one byte).
      out.append("\xEF\xBF\xBD");
      pos += std::max<size_t>(1, check_sequence(bytes, pos).ok);
    }
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view bytes) {
  // A character is at most 4 bytes, so only the last 3 can start an incomplete one.
  size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = start; pos < bytes.size(); ++pos) {
    bool incomplete = false;
    if (utf8_sequence_length(bytes, pos, &incomplete) == 0 && incomplete) return pos;
  }
  return bytes.size();
}

bool is_unicode_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace dsinfer
