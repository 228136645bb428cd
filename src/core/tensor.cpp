#include "core/tensor.h"

#include <cstdlib>

#include "core/error.h"

namespace dsinfer {

std::string device_name(Device d) {
  return d.kind == DeviceKind::CPU ? std::string("cpu") : cat("cuda:", d.index);
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return {DeviceKind::CPU, 0};
  if (s == "cuda") return {DeviceKind::CUDA, 0};
  if (s.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int idx = std::stoi(s.substr(5), &used);
      if (used == s.size() - 5 && idx >= 0) return {DeviceKind::CUDA, idx};
    } catch (const std::exception&) {
    }
  }
  fail("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  Tensor t = *this;
  int64_t row = numel() / shape.at(0);
  t.shape[0] = end - begin;
  t.data = static_cast<char*>(data) + begin * row * static_cast<int64_t>(dtype_size(dtype));
  return t;
}

Tensor Tensor::reshape(Shape s) const {
  if (shape_numel(s) != numel()) fail("reshape ", shape_str(shape), " -> ", shape_str(s), ": element counts differ");
  Tensor t = *this;
  t.shape = std::move(s);
  return t;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = o.data_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    release_ = std::move(o.release_);
    o.data_ = nullptr;
    o.bytes_ = 0;
    o.release_ = nullptr;
  }
  return *this;
}

void Buffer::reset() {
  if (data_ && release_) release_(data_);
  data_ = nullptr;
  bytes_ = 0;
  release_ = nullptr;
}

Buffer host_alloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) fail("out of host memory allocating ", bytes, " bytes");
  return Buffer(p, bytes, Device{}, [](void* q) { std::free(q); });
}

}  // namespace dsinfer
