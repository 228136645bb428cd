#include "backend/copy_bandwidth.h"

#include <algorithm>
#include <chrono>

namespace dsinfer {

double measure_copy_bandwidth(Backend& backend) {
  const DType dtype = backend.act_dtype();
  const size_t elem = dtype_size(dtype);
  const int64_t width = int64_t{1} << 20;  // elements per row
  const size_t want = std::clamp(backend.memory_info().free / 16, size_t{64} << 20, size_t{1} << 30);
  const int64_t rows = static_cast<int64_t>(want / (width * elem));
  Buffer a = backend.alloc(rows * width * elem), b = backend.alloc(rows * width * elem);
  const Tensor src{dtype, {rows, width}, a.data(), backend.device()};
  const Tensor dst{dtype, {rows, width}, b.data(), backend.device()};
  backend.fill_zero(src);  // first touch (page faults, lazy allocation) before the timing
  backend.fill_zero(dst);
  backend.copy_columns(src, 0, dst, 0, static_cast<int>(width));  // warm-up
  backend.synchronize();
  // Several copies between two waits, so the wait's own latency is a small share of the time.
  constexpr int kCopies = 5;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCopies; ++i) backend.copy_columns(src, 0, dst, 0, static_cast<int>(width));
  backend.synchronize();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * kCopies * static_cast<double>(src.nbytes()) / seconds;
}

}  // namespace dsinfer
