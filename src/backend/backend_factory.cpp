#include "backend/backend.h"
#include "core/error.h"

namespace dsinfer {

#ifdef DSINFER_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(int device_index);
#endif

std::unique_ptr<Backend> make_backend(Device device) {
  if (device.kind == DeviceKind::CPU) return make_cpu_backend();
#ifdef DSINFER_WITH_CUDA
  return make_cuda_backend(device.index);
#else
  fail("device ", device_name(device), " requested but this dsinfer was built without CUDA");
#endif
}

}  // namespace dsinfer
