// The products of one input x that a skinny launch runs together (gemv.cu over bf16 weights,
// gemv_fp8.cu over block-scaled FP8 ones): each of n rows into its own output, the blocks of each
// product back to back in the grid.
#pragma once
#include <cuda_runtime.h>

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

  // Lays the products' blocks back to back in the grid, `rows_per_block` weight rows a block:
  // sets first_block and returns the grid's size.
  int place_blocks(int64_t rows_per_block) {
    int blocks = 0;
    for (int p = 0; p < count; ++p) {
      first_block[p] = blocks;
      blocks += static_cast<int>((n[p] + rows_per_block - 1) / rows_per_block);
    }
    return blocks;
  }
  // The product whose run of blocks holds `block`.
  __host__ __device__ int product_of(int block) const {
    int p = 0;
    while (p + 1 < count && block >= first_block[p + 1]) ++p;
    return p;
  }
};

}  // namespace dsinfer::cuda
