// Tensor: a non-owning view (dtype, shape, device, pointer) over contiguous row-major data.
// Buffer: the owning allocation behind views, released by the allocator that made it.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace dsinfer {

enum class DeviceKind { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
};

std::string device_name(Device d);
// Parses "cpu", "cuda" or "cuda:N".
Device parse_device(const std::string& s);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  void* data = nullptr;
  Device device;

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  int64_t rows() const { return numel() / shape.back(); }
  bool empty() const { return data == nullptr; }
  template <typename T> T* ptr() const { return static_cast<T*>(data); }
  // A view of rows [begin, end) along the first dimension.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  Tensor reshape(Shape s) const;
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, Device device, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), device_(device), release_(std::move(release)) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  ~Buffer() { reset(); }

  void reset();
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
};

// Host memory, 64-byte aligned (a cache line; also what AVX-512 loads like).
Buffer host_alloc(size_t bytes);

}  // namespace dsinfer
