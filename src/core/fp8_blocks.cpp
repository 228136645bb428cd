#include "core/fp8_blocks.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace dsinfer {

void quantize_fp8_band(const float* w, int64_t rows, int64_t cols, int block_cols, uint8_t* values, float* scales) {
  for (int64_t c0 = 0; c0 < cols; c0 += block_cols) {
    const int64_t c1 = std::min(cols, c0 + block_cols);
    float amax = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
    // 448 is e4m3's largest finite value: the block's largest weight maps onto it.
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    scales[c0 / block_cols] = scale;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) values[r * cols + c] = f32_to_fp8e4m3(w[r * cols + c] / scale);
  }
}

Fp8Blocks quantize_fp8_blocks(const float* w, int64_t rows, int64_t cols, int block_rows, int block_cols) {
  const int64_t bc = (cols + block_cols - 1) / block_cols;
  Fp8Blocks q;
  q.values.resize(rows * cols);
  q.scales.resize((rows + block_rows - 1) / block_rows * bc);
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows)
    quantize_fp8_band(w + r0 * cols, std::min<int64_t>(block_rows, rows - r0), cols, block_cols,
                      q.values.data() + r0 * cols, q.scales.data() + r0 / block_rows * bc);
  return q;
}

}  // namespace dsinfer
