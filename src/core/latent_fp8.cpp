#include "core/latent_fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace dsinfer {

LatentFp8Layout latent_fp8_layout(int lora, int rope) {
  if (lora <= 0 || rope < 0) fail("fp8 latent cache: a row of ", lora, " latent and ", rope, " rope values");
  LatentFp8Layout l;
  l.lora = lora;
  l.rope = rope;
  l.groups = (lora + kLatentFp8Group - 1) / kLatentFp8Group;
  l.scale_offset = (lora + 3) / 4 * 4;
  l.rope_offset = l.scale_offset + 4 * l.groups;
  l.row_bytes = (l.rope_offset + 2 * rope + 15) / 16 * 16;
  return l;
}

void quantize_latent_row(const LatentFp8Layout& l, const float* x, uint8_t* row) {
  std::memset(row, 0, l.row_bytes);
  for (int g = 0; g < l.groups; ++g) {
    const int c0 = g * kLatentFp8Group, c1 = std::min(l.lora, c0 + kLatentFp8Group);
    float amax = 0.0f;
    for (int c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[c]));
    amax = std::min(amax, kLatentFp8MaxValue);
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    std::memcpy(row + l.scale_offset + 4 * g, &scale, 4);
    for (int c = c0; c < c1; ++c) row[c] = f32_to_fp8e4m3(x[c] / scale);
  }
  for (int i = 0; i < l.rope; ++i) {
    const uint16_t v = f32_to_bf16(x[l.lora + i]);
    std::memcpy(row + l.rope_offset + 2 * i, &v, 2);
  }
}

void dequantize_latent_row(const LatentFp8Layout& l, const uint8_t* row, float* x) {
  for (int g = 0; g < l.groups; ++g) {
    float scale;
    std::memcpy(&scale, row + l.scale_offset + 4 * g, 4);
    const int c0 = g * kLatentFp8Group, c1 = std::min(l.lora, c0 + kLatentFp8Group);
    for (int c = c0; c < c1; ++c) x[c] = fp8e4m3_to_f32(row[c]) * scale;
  }
  for (int i = 0; i < l.rope; ++i) {
    uint16_t v;
    std::memcpy(&v, row + l.rope_offset + 2 * i, 2);
    x[l.lora + i] = bf16_to_f32(v);
  }
}

}  // namespace dsinfer
