// Measurement switches: paths that are on by default and that DSINFER_<NAME>=0 turns off, and
// limits that DSINFER_<NAME>=N moves, so that one binary can time what a path or a limit buys.
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

// The integer the variable `name` is set to (as atoi reads it), or `fallback` when it is unset:
// for limits that a measurement moves. Read on each call, like switched_on.
inline int switch_value(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::atoi(v);
}

}  // namespace dsinfer::cuda
