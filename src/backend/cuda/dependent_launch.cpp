#include <cstdlib>
#include <cstring>

#include "backend/cuda/dependent_launch.cuh"

namespace dsinfer::cuda {

bool dependent_launch_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("DSINFER_DEPENDENT_LAUNCH");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

}  // namespace dsinfer::cuda
