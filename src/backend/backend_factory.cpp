#include "backend/backend.h"
#include "core/error.h"

namespace dsinfer {

// `size` CPU backends summing through one HostGroup (threads of this process).
std::vector<std::unique_ptr<Backend>> make_cpu_backend_group(int size);
#ifdef DSINFER_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(int device_index);
std::vector<std::unique_ptr<Backend>> make_cuda_backend_group(int first_device, int size);
#endif

std::unique_ptr<Backend> make_backend(Device device) {
  if (device.kind == DeviceKind::CPU) return make_cpu_backend();
#ifdef DSINFER_WITH_CUDA
  return make_cuda_backend(device.index);
#else
  fail("device ", device_name(device), " requested but this dsinfer was built without CUDA");
#endif
}

std::vector<std::unique_ptr<Backend>> make_backend_group(Device first, int size) {
  if (size < 1) fail("tensor-parallel size ", size, " (needs 1 or more)");
  if (size == 1) {
    std::vector<std::unique_ptr<Backend>> one;
    one.push_back(make_backend(first));
    return one;
  }
  if (first.kind == DeviceKind::CPU) return make_cpu_backend_group(size);
#ifdef DSINFER_WITH_CUDA
  return make_cuda_backend_group(first.index, size);
#else
  fail("device ", device_name(first), " requested but this dsinfer was built without CUDA");
#endif
}

}  // namespace dsinfer
