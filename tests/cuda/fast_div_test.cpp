// FastDiv (the decode kernels' division by the cache's block size) against integer division,
// through its host path, which computes the same multiply-high as the device's __umulhi.
#include "backend/cuda/fast_div.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <random>
#include <vector>

using dsinfer::cuda::FastDiv;

TEST(FastDiv, EqualsIntegerDivisionOverDivisorsAndDividends) {
  std::vector<int> divisors;
  for (int d = 1; d <= 1024; ++d) divisors.push_back(d);
  for (int d : {4095, 4096, 4097, 65535, 65536, 1 << 20, 999983, (1 << 30) + 1, INT32_MAX}) divisors.push_back(d);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> any(0, INT32_MAX);
  for (int d : divisors) {
    const FastDiv f(d);
    // Multiples of d and their neighbours (where a wrong rounding shows first), clamped to int.
    std::vector<int> ns = {0, INT32_MAX - 1, INT32_MAX};
    for (int64_t k = 1; k < 64; ++k)
      for (int64_t e = -1; e <= 1; ++e) ns.push_back(static_cast<int>(std::min<int64_t>(INT32_MAX, k * d + e)));
    for (int i = 0; i < 200; ++i) ns.push_back(any(rng));
    for (int n : ns) ASSERT_EQ(f.div(n), n / d) << n << " / " << d;
  }
}
