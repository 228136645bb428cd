// Division by a divisor fixed for a launch (the cache's block size) as a multiply-high and a
// shift. A runtime `n / d` compiles to ~20 instructions (a float reciprocal and corrections);
// the decode kernels divide every key they load, and at batch 64 they issue an instruction for
// every ~5 bytes they read, so the division showed.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dsinfer::cuda {

// For 0 <= n < 2^31 and d >= 1: with l = ceil(log2 d) and m = ceil(2^(31 + l) / d) (< 2^32),
// floor(n m / 2^(31 + l)) = floor(n / d), because m d - 2^(31 + l) < d <= 2^l (Granlund and
// Montgomery's bound for 31-bit dividends). d = 1 would shift by -1: it divides by nothing.
struct FastDiv {
  int d = 1;
  uint32_t mul = 0;
  int shift = 0;

  FastDiv() = default;
  explicit FastDiv(int divisor) : d(divisor) {
    if (d == 1) return;
    int l = 0;
    while ((1ll << l) < d) ++l;
    mul = static_cast<uint32_t>(((1ull << (31 + l)) + d - 1) / d);
    shift = l - 1;
  }

  // On the host too, so that a CPU test holds the arithmetic to `/`.
  __host__ __device__ int div(int n) const {
    if (d == 1) return n;
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(static_cast<uint32_t>(n), mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(n)) * mul) >> 32);
#endif
    return static_cast<int>(hi >> shift);
  }
};

}  // namespace dsinfer::cuda
