#include "backend/copy_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace dsinfer {

double measure_copy_bandwidth(Backend& backend) {
  const DType dtype = backend.act_dtype();
  const size_t elem = dtype_size(dtype);
  const size_t want = std::clamp(backend.memory_info().free / 16, size_t{64} << 20, size_t{1} << 30);
  // One row: a pitched copy of many rows ran at 40 % of a flat one on an H200 (1.68 against
  // 4.27 TB/s), so the buffer is a single row of at most 2^31 - 1 elements.
  const int64_t width = static_cast<int64_t>(std::min(want / elem, size_t{INT32_MAX}));
  Buffer a = backend.alloc(width * elem), b = backend.alloc(width * elem);
  const Tensor src{dtype, {1, width}, a.data(), backend.device()};
  const Tensor dst{dtype, {1, width}, b.data(), backend.device()};
  backend.fill_zero(src);  // first touch (page faults, lazy allocation) before the timing
  backend.fill_zero(dst);
  backend.copy_columns(src, 0, dst, 0, static_cast<int>(width));  // warm-up
  backend.synchronize();
  // Several copies between two waits, so the wait's own latency is a small share of the time; the
  // best of a few rounds, since one round can be slowed by something else (an H200 bench once
  // measured half its copy rate, which doubled every roofline ratio of that run).
  constexpr int kCopies = 5, kRounds = 3;
  double best = 0.0;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCopies; ++i) backend.copy_columns(src, 0, dst, 0, static_cast<int>(width));
    backend.synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * kCopies * static_cast<double>(src.nbytes()) / seconds);
  }
  return best;
}

}  // namespace dsinfer
