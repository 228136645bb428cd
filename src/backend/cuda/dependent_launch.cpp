#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/env_switch.h"
#include "core/error.h"

namespace dsinfer::cuda {

bool dependent_launch_enabled() {
  static const bool enabled = switched_on("DSINFER_DEPENDENT_LAUNCH");
  return enabled;
}

namespace {

struct CarveoutOverride {
  int percent = -1;  // -1: none
  bool all_but = false;
  std::vector<std::string> names;  // empty: every kernel

  bool covers(const char* kernel) const {
    if (percent < 0) return false;
    if (names.empty()) return true;
    const bool named = std::find(names.begin(), names.end(), kernel) != names.end();
    return named != all_but;
  }
};

CarveoutOverride parse_carveout(const char* spec) {
  CarveoutOverride o;
  if (spec == nullptr || *spec == '\0') return o;
  const std::string s(spec);
  const size_t colon = s.find(':');
  char* end = nullptr;
  const long percent = std::strtol(s.c_str(), &end, 10);
  const char* number_end = colon == std::string::npos ? s.c_str() + s.size() : s.c_str() + colon;
  if (!std::isdigit(static_cast<unsigned char>(s[0])) || end != number_end || percent > 100)
    fail("DSINFER_CARVEOUT=", s, ": expected a percent (0 to 100), optionally followed by :names or :!names");
  o.percent = static_cast<int>(percent);
  if (colon == std::string::npos) return o;
  std::string list = s.substr(colon + 1);
  if (!list.empty() && list[0] == '!') {
    o.all_but = true;
    list.erase(0, 1);
  }
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    if (comma > at) o.names.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  if (o.names.empty()) fail("DSINFER_CARVEOUT=", s, ": no kernel names after ':'");
  return o;
}

}  // namespace

int decode_chain_carveout(int blocks, size_t bytes) {
  int device = 0, most = 0, reserved = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
  const bool fits = static_cast<size_t>(blocks) * (bytes + static_cast<size_t>(reserved)) * 100 <=
                    static_cast<size_t>(most) * kDecodeChainCarveout;
  return fits ? kDecodeChainCarveout : -1;
}

int carveout_override(const char* kernel) {
  static const CarveoutOverride o = parse_carveout(std::getenv("DSINFER_CARVEOUT"));
  return o.covers(kernel) ? o.percent : -1;
}

}  // namespace dsinfer::cuda
