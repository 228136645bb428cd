// reciprocal_quotient (the activation quantizers' v / scale from one reciprocal a group) against
// IEEE division, through its host path: the same float operations and FMAs as on the device.
#include "backend/cuda/rounded_quotient.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

namespace dsinfer::cuda {
namespace {

float bf16_bits(uint32_t bits) { return std::bit_cast<float>(bits << 16); }

// What the quantizers see: v and the group maximum amax are bf16, the scale amax / 448. Every
// positive finite bf16 maximum, against every 13th bf16 value of magnitude up to it (each maximum
// starting elsewhere), both signs, the maximum itself and zeros. Quotients of 2^-11 or more must
// equal the division's bit for bit; smaller ones must round to e4m3's zero of the same sign (at most
// 2^-10, half its least subnormal, ties to even).
TEST(ReciprocalQuotient, EqualsDivisionWhereE4m3CanTell) {
  int64_t checked = 0;
  for (uint32_t a = 1; a < 0x7F80; ++a) {
    const float amax = bf16_bits(a), scale = amax / 448.0f;
    if (!reciprocal_quotient_exact(scale)) continue;
    const float inv = 1.0f / scale;
    auto check = [&](float v) {
      const float want = v / scale, got = reciprocal_quotient(v, scale, inv);
      if (std::fabs(want) >= 0x1p-11f)
        ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << v << " / " << scale;
      else
        ASSERT_TRUE(std::fabs(got) <= 0x1p-10f && std::signbit(got) == std::signbit(want)) << v << " / " << scale;
      ++checked;
    };
    for (float v : {0.0f, -0.0f, amax, -amax}) check(v);
    for (uint32_t b = a % 13; b <= a; b += 13) {
      check(bf16_bits(b));
      check(-bf16_bits(b));
    }
  }
  EXPECT_GT(checked, 50'000'000);
}

TEST(ReciprocalQuotient, LeavesScalesOutsideItsRangeToDivision) {
  EXPECT_TRUE(reciprocal_quotient_exact(1.0f));
  EXPECT_TRUE(reciprocal_quotient_exact(0x1p-80f));
  EXPECT_TRUE(reciprocal_quotient_exact(0x1p100f));
  EXPECT_FALSE(reciprocal_quotient_exact(0x1p-81f));
  EXPECT_FALSE(reciprocal_quotient_exact(0x1p101f));
  EXPECT_FALSE(reciprocal_quotient_exact(INFINITY));
  EXPECT_FALSE(reciprocal_quotient_exact(NAN));
}

}  // namespace
}  // namespace dsinfer::cuda
