// Weight: a parameter tensor in its stored dtype. Matrices are [out, in]; FP8 e4m3 matrices carry
// DeepSeek's block scales (scale_inv, F32 [ceil(out/block_rows), ceil(in/block_cols)]),
// where the real value is fp8 * scale of the block; edge blocks may be partial.
#pragma once
#include "core/tensor.h"

namespace dsinfer {

struct Weight {
  Tensor w;
  Tensor scale;  // empty unless w is F8_E4M3
  int block_rows = 0, block_cols = 0;

  bool empty() const { return w.empty(); }
  int64_t out_features() const { return w.dim(0); }
  int64_t in_features() const { return w.dim(1); }
  size_t nbytes() const { return w.nbytes() + (scale.empty() ? 0 : scale.nbytes()); }
};

// Converts row `r` of a host weight matrix to float32 (dequantizing FP8 blocks).
void weight_row_to_f32(const Weight& w, int64_t r, float* out);

}  // namespace dsinfer
