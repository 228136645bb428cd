#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace dsinfer;

TEST(DType, Bf16RoundTripsAndRoundsToNearestEven) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 lies exactly between two bf16 values; ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16MatchesIeeeHalf) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  for (uint16_t h : {0x3c00, 0x1234, 0x0400, 0x03ff, 0xbc01, 0x7bff}) EXPECT_EQ(f32_to_f16(f16_to_f32(h)), h);
}

TEST(DType, Fp8E4m3MatchesOcpSpec) {
  EXPECT_EQ(fp8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(fp8e4m3_to_f32(0x7f)));
  EXPECT_EQ(f32_to_fp8e4m3(1000.0f), 0x7e);  // saturates
  EXPECT_EQ(f32_to_fp8e4m3(-1.0f), 0xb8);
  for (int v = 0; v < 256; ++v) {
    if ((v & 0x7f) == 0x7f) continue;
    float f = fp8e4m3_to_f32(static_cast<uint8_t>(v));
    if (f == 0.0f) continue;
    EXPECT_EQ(f32_to_fp8e4m3(f), v) << v;
  }
}

// Between two neighbouring codes a value goes to the nearer one, and a midpoint to the even code
// (round to nearest even, as the hardware's cvt.rn.satfinite.e4m3x2.f32 does), across the
// subnormal/normal border and every exponent.
TEST(DType, Fp8E4m3RoundsToNearestEven) {
  for (int code = 0; code < 0x7e; ++code) {
    const float lo = fp8e4m3_to_f32(static_cast<uint8_t>(code)), hi = fp8e4m3_to_f32(static_cast<uint8_t>(code + 1));
    const float mid = (lo + hi) / 2, step = (hi - lo) / 8;
    EXPECT_EQ(f32_to_fp8e4m3(mid), code % 2 == 0 ? code : code + 1) << code;
    EXPECT_EQ(f32_to_fp8e4m3(mid - step), code) << code;
    EXPECT_EQ(f32_to_fp8e4m3(mid + step), code + 1) << code;
    EXPECT_EQ(f32_to_fp8e4m3(-(mid + step)), 0x80 | (code + 1)) << code;
  }
  EXPECT_EQ(f32_to_fp8e4m3(440.0f), 0x7e);  // nearer 448 than 416
  EXPECT_EQ(f32_to_fp8e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_fp8e4m3(NAN), 0x7f);
}
