#include "core/latent_fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"

namespace dsinfer {
namespace {

TEST(LatentFp8, LayoutOfDeepSeekAndOddShapes) {
  const LatentFp8Layout v3 = latent_fp8_layout(512, 64);
  EXPECT_EQ(v3.groups, 4);
  EXPECT_EQ(v3.scale_offset, 512);
  EXPECT_EQ(v3.rope_offset, 528);
  EXPECT_EQ(v3.row_bytes, 656);  // FlashMLA's and vLLM's fp8_ds_mla row
  const LatentFp8Layout tiny = latent_fp8_layout(16, 8);  // one partial group, padded to 16 bytes
  EXPECT_EQ(tiny.groups, 1);
  EXPECT_EQ(tiny.rope_offset, 20);
  EXPECT_EQ(tiny.row_bytes, 48);
  const LatentFp8Layout odd = latent_fp8_layout(130, 6);
  EXPECT_EQ(odd.groups, 2);
  EXPECT_EQ(odd.scale_offset, 132);
  EXPECT_EQ(odd.row_bytes % 16, 0);
  EXPECT_THROW(latent_fp8_layout(0, 64), Error);
}

// Every value comes back within e4m3's half step (2^-4 relative) of its group's scale, the rope
// values within bf16's; a group of zeros stays zeros.
TEST(LatentFp8, RoundTripWithinTheFormatsSteps) {
  const LatentFp8Layout l = latent_fp8_layout(300, 64);
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(l.values());
  for (float& v : x) v = n(rng);
  for (int c = 128; c < 256; ++c) x[c] *= 1000.0f;  // groups keep their own scales
  for (int c = 256; c < 300; ++c) x[c] = 0.0f;
  std::vector<uint8_t> row(l.row_bytes, 0xff);
  quantize_latent_row(l, x.data(), row.data());
  std::vector<float> back(l.values());
  dequantize_latent_row(l, row.data(), back.data());
  for (int g = 0; g < 2; ++g) {
    float amax = 0.0f;
    for (int c = g * 128; c < g * 128 + 128; ++c) amax = std::max(amax, std::fabs(x[c]));
    for (int c = g * 128; c < g * 128 + 128; ++c)
      EXPECT_LE(std::fabs(back[c] - x[c]), std::max(std::fabs(x[c]) / 16.0f, amax / 448.0f * 0x1p-9f)) << c;
  }
  for (int c = 256; c < 300; ++c) EXPECT_EQ(back[c], 0.0f);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(back[300 + i], x[300 + i], std::fabs(x[300 + i]) / 256.0f);
  for (int b = l.rope_offset + 128; b < l.row_bytes; ++b) EXPECT_EQ(row[b], 0) << "padding byte " << b;
}

// Values beyond kLatentFp8MaxValue saturate to it (readers may hold them in f16); the group's
// others keep the scale of that bound.
TEST(LatentFp8, ValuesBeyondF16sRangeSaturate) {
  const LatentFp8Layout l = latent_fp8_layout(128, 8);
  std::vector<float> x(l.values(), 1.0f);
  x[3] = 1e6f;
  x[5] = -70000.0f;
  x[7] = 30000.0f;
  std::vector<uint8_t> row(l.row_bytes);
  quantize_latent_row(l, x.data(), row.data());
  std::vector<float> back(l.values());
  dequantize_latent_row(l, row.data(), back.data());
  EXPECT_FLOAT_EQ(back[3], kLatentFp8MaxValue);
  EXPECT_FLOAT_EQ(back[5], -kLatentFp8MaxValue);
  EXPECT_NEAR(back[7], 30000.0f, 30000.0f / 16.0f);
  for (float v : back) EXPECT_LE(std::fabs(v), kLatentFp8MaxValue * (1.0f + 1e-6f));
}

}  // namespace
}  // namespace dsinfer
