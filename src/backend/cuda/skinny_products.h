// The products of one input x that a skinny launch runs together (gemv.cu over bf16 weights,
// gemv_fp8.cu over block-scaled FP8 ones): each of n rows into its own output, the blocks of each
// product back to back in the grid.
#pragma once
#include <cstdint>

#include "backend/cuda/device_weight.h"
#include "core/error.h"

namespace dsinfer::cuda {

// W: how the kernel reads a weight (a bf16 pointer, or a DeviceWeight with its scales).
template <typename W, int N>
struct SkinnyProducts {
  int count = 0;
  W w[N] = {};
  DeviceWeight bias[N];  // no data: no bias
  void* out[N] = {};
  int n[N] = {};
  int first_block[N] = {};  // where each product's blocks start in the grid (set at launch)

  void add(const W& weight, const DeviceWeight& bias_weight, void* output, int64_t rows) {
    if (count == N) fail("skinny product: more than ", N, " products in one launch");
    w[count] = weight;
    bias[count] = bias_weight;
    out[count] = output;
    n[count] = static_cast<int>(rows);
    ++count;
  }
};

}  // namespace dsinfer::cuda
