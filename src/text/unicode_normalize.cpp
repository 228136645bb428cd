#include "text/unicode_normalize.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "text/unicode_tables.h"
#include "text/utf8.h"

namespace dsinfer {
namespace {

using namespace unicode_tables;

// Hangul syllables are (de)composed arithmetically (Unicode section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const CombiningClassRange* end = kCombiningClasses + kCombiningClassCount;
  auto it = std::upper_bound(kCombiningClasses, end, cp,
                             [](char32_t c, const CombiningClassRange& r) { return c < r.first; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= it->last ? it->combining_class : 0;
}

const Decomposition* find_decomposition(char32_t cp) {
  const Decomposition* end = kDecompositions + kDecompositionCount;
  auto it = std::lower_bound(kDecompositions, end, cp,
                             [](const Decomposition& d, char32_t c) { return d.code_point < c; });
  return it != end && it->code_point == cp ? it : nullptr;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = cp < 0xC0 ? nullptr : find_decomposition(cp);
  if (!d) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second) decompose(d->second, out);
}

// Full canonical decomposition followed by the canonical ordering of combining marks.
std::u32string decompose_all(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) decompose(utf8_next(text, pos), out);
  for (size_t i = 0; i < out.size();) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  static const auto* pairs = [] {
    auto* m = new std::unordered_map<uint64_t, char32_t>;
    for (size_t i = 0; i < kDecompositionCount; ++i) {
      const Decomposition& d = kDecompositions[i];
      if (d.composes) (*m)[(uint64_t(d.first) << 32) | d.second] = d.code_point;
    }
    return m;
  }();
  auto it = pairs->find((uint64_t(a) << 32) | b);
  return it == pairs->end() ? 0 : it->second;
}

// Text whose bytes are all below `limit` needs no work. ASCII is unchanged by both forms;
// code points below U+0300 (bytes below 0xCC) are unchanged by NFC, since nothing there
// combines with what precedes it and what decomposes recomposes.
bool all_below(std::string_view text, unsigned char limit) {
  return std::all_of(text.begin(), text.end(), [limit](char c) { return static_cast<unsigned char>(c) < limit; });
}

}  // namespace

std::string unicode_nfd(std::string_view text) {
  if (all_below(text, 0x80)) return std::string(text);
  return utf8_encode(decompose_all(text));
}

std::string unicode_nfc(std::string_view text) {
  if (all_below(text, 0xCC)) return std::string(text);
  std::u32string d = decompose_all(text);
  std::u32string out;
  out.reserve(d.size());
  size_t starter = std::u32string::npos;
  for (char32_t c : d) {
    uint8_t cc = combining_class(c);
    if (starter != std::u32string::npos) {
      // Blocked when a mark between the starter and c has a class of 0 or >= c's class.
      bool adjacent = out.size() == starter + 1;
      uint8_t last = combining_class(out.back());
      if (adjacent || (last != 0 && last < cc)) {
        if (char32_t composed = compose_pair(out[starter], c)) {
          out[starter] = composed;
          continue;
        }
      }
    }
    if (cc == 0) starter = out.size();
    out.push_back(c);
  }
  return utf8_encode(out);
}

}  // namespace dsinfer
