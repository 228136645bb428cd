// Byte units shared by the planner's messages, table and plot.
#pragma once
#include <cstdio>
#include <string>

namespace dsinfer::plan {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// "14.19 GiB"
inline std::string gib_text(double bytes, int decimals = 2) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f GiB", decimals, bytes / kGiB);
  return buf;
}

}  // namespace dsinfer::plan
