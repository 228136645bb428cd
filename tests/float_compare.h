// The largest magnitude of a vector of floats, and the largest elementwise difference of two: the
// measures tests compare two runs' logits with.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace dsinfer::testing {

inline float max_abs(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Over a's elements; b has at least as many.
inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace dsinfer::testing
