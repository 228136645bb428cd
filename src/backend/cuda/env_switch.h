// Measurement switches: paths that are on by default and that DSINFER_<NAME>=0 turns off, so that
// one binary can time what a path buys.
#pragma once
#include <cstdlib>
#include <cstring>

namespace dsinfer::cuda {

// False when the variable `name` is set to exactly "0". Read on each call: callers keep the answer
// in a function-local static.
inline bool switched_on(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}

}  // namespace dsinfer::cuda
