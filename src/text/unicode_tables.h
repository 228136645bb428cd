// Unicode data for canonical normalization, generated into unicode_tables.cpp by
// gen_unicode_tables.py (sorted by code point, so lookups are binary searches).
#pragma once
#include <cstddef>
#include <cstdint>

namespace dsinfer::unicode_tables {

struct CombiningClassRange {
  char32_t first, last;
  uint8_t combining_class;
};

// A canonical decomposition into one (second == 0) or two code points; `composes` marks the
// pairs that NFC puts back together (not composition exclusions).
struct Decomposition {
  char32_t code_point, first, second;
  bool composes;
};

extern const CombiningClassRange kCombiningClasses[];
extern const size_t kCombiningClassCount;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionCount;

}  // namespace dsinfer::unicode_tables
