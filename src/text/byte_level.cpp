#include "text/byte_level.h"

#include <array>
#include <unordered_map>

#include "text/utf8.h"

namespace dsinfer {
namespace {

// GPT-2's table: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100
// upwards, in byte order.
struct ByteTable {
  std::array<std::string, 256> encoded;
  std::unordered_map<char32_t, unsigned char> decoded;

  ByteTable() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : next++;
      utf8_append(encoded[b], cp);
      decoded[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteTable& table() {
  static const ByteTable t;
  return t;
}

}  // namespace

std::string byte_level_encode(std::string_view bytes) {
  const auto& t = table();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.encoded[static_cast<unsigned char>(c)];
  return out;
}

std::string byte_level_decode(std::string_view token) {
  const auto& t = table();
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    auto it = t.decoded.find(utf8_next(token, pos));
    if (it == t.decoded.end()) return std::string(token);
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

}  // namespace dsinfer
