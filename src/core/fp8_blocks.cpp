#include "core/fp8_blocks.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace dsinfer {

Fp8Blocks quantize_fp8_blocks(const float* w, int64_t rows, int64_t cols, int block_rows, int block_cols) {
  const int64_t br = (rows + block_rows - 1) / block_rows, bc = (cols + block_cols - 1) / block_cols;
  Fp8Blocks q;
  q.values.resize(rows * cols);
  q.scales.resize(br * bc);
  for (int64_t bi = 0; bi < br; ++bi)
    for (int64_t bj = 0; bj < bc; ++bj) {
      const int64_t r0 = bi * block_rows, r1 = std::min(rows, r0 + block_rows);
      const int64_t c0 = bj * block_cols, c1 = std::min(cols, c0 + block_cols);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      // 448 is e4m3's largest finite value: the block's largest weight maps onto it.
      const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
      q.scales[bi * bc + bj] = scale;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) q.values[r * cols + c] = f32_to_fp8e4m3(w[r * cols + c] / scale);
    }
  return q;
}

}  // namespace dsinfer
