// FP8 e4m3 block quantization in DeepSeek's release format: a matrix [rows, cols] split into
// block_rows x block_cols blocks (edge blocks partial), each with one float32 scale, so that
// value = fp8 * scale (the checkpoint calls the scale `weight_scale_inv`).
#pragma once
#include <cstdint>
#include <vector>

namespace dsinfer {

struct Fp8Blocks {
  std::vector<uint8_t> values;  // [rows, cols]
  std::vector<float> scales;    // [ceil(rows / block_rows), ceil(cols / block_cols)]
};

Fp8Blocks quantize_fp8_blocks(const float* w, int64_t rows, int64_t cols, int block_rows, int block_cols);

// One band of blocks: `rows` (at most a block's) rows of `cols` values into `values` [rows, cols]
// and their ceil(cols / block_cols) scales into `scales`.
void quantize_fp8_band(const float* w, int64_t rows, int64_t cols, int block_cols, uint8_t* values, float* scales);

}  // namespace dsinfer
