// The FP8 row of MLA's latent cache (--kv-dtype fp8), the layout FlashMLA and vLLM use for
// DeepSeek ("fp8_ds_mla"), for any kv_lora_rank and rope width:
//   [ lora values as e4m3 | one float32 scale per 128 of them | rope values as bf16 | zeros to 16 B ]
// value = e4m3 * its group's scale (the group's largest |value| maps onto 448, e4m3's largest),
// and the rope key stays bf16: its rotation encodes the position, which 3 mantissa bits would
// blur. DeepSeek-V3's 576 values take 656 bytes against bf16's 1152.
#pragma once
#include <cstdint>

namespace dsinfer {

constexpr int kLatentFp8Group = 128;  // latent values a scale covers
// Latent values beyond this saturate to it (a group's scale never exceeds it / 448), so that a
// reader may hold the values in f16 (the GPU's decode kernel does), the scale rounded to f16
// included: 448 x f16(65280 / 448) = 65296, below f16's largest, 65504. Real latents (RMS-normed
// rows) stay far below it.
constexpr float kLatentFp8MaxValue = 65280.0f;

struct LatentFp8Layout {
  int lora = 0, rope = 0;
  int groups = 0;        // scales: ceil(lora / 128)
  int scale_offset = 0;  // bytes from the row's start (4-aligned)
  int rope_offset = 0;   // (2-aligned)
  int row_bytes = 0;     // a multiple of 16, so every row is 16-byte aligned

  int values() const { return lora + rope; }
};

LatentFp8Layout latent_fp8_layout(int lora, int rope);

// One row from its lora + rope float values, and back.
void quantize_latent_row(const LatentFp8Layout& l, const float* x, uint8_t* row);
void dequantize_latent_row(const LatentFp8Layout& l, const uint8_t* row, float* x);

}  // namespace dsinfer
