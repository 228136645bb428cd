// A warp's tile of 16 rows of e4m3 weights as mma.m16n8k32's A operand, loaded straight from the
// rows (gemv_fp8_mma.cu, moe_few_mma.cu). mma only needs A and B to agree on which k each slot
// holds, so within a group of 128 columns lane (g, t) takes bytes [16t, 16t + 16) and
// [64 + 16t, 80 + 16t) of rows g and g + 8, 16 contiguous bytes a load, and the B fragment of
// column g is read from the same bytes of that column's quantized x.
#pragma once
#include <cstdint>

#include "backend/cuda/fp8_act_recipe.cuh"
#include "backend/cuda/mma.cuh"

namespace dsinfer::cuda {

constexpr int kFp8Tile = 16;  // weight rows a warp owns: the mma's M

// The lane's A words of one group: rows g and g + 8, bytes [16t, 16t + 16) and [64 + 16t, 80 + 16t).
struct GroupWords {
  uint4 lo[2], hi[2];
};

// Group j of the lane's two rows (lo, hi: the rows' starts plus 16t bytes), as streaming loads.
__device__ __forceinline__ void load_group(GroupWords& w, const uint8_t* lo, const uint8_t* hi, int j) {
  const int at = j * kActGroup;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    w.lo[h] = __ldcs(reinterpret_cast<const uint4*>(lo + at + 64 * h));
    w.hi[h] = __ldcs(reinterpret_cast<const uint4*>(hi + at + 64 * h));
  }
}

// Word i (0-7) of a lane's 32 bytes: the first load's four words, then the second's.
__device__ __forceinline__ uint32_t word(const uint4 (&v)[2], int i) {
  const uint4& h = v[i / 4];
  switch (i % 4) {
    case 0: return h.x;
    case 1: return h.y;
    case 2: return h.z;
    default: return h.w;
  }
}

// The group's sums (rows g, g + 8 x columns 2t, 2t + 1): four k32 steps; step q takes words 2q
// and 2q + 1 of A and of b, the lane's 32 bytes of column g.
__device__ __forceinline__ void group_product(float (&c)[4], const GroupWords& w, const uint4 (&b)[2]) {
  c[0] = c[1] = c[2] = c[3] = 0.0f;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const uint32_t a[4] = {word(w.lo, 2 * q), word(w.hi, 2 * q), word(w.lo, 2 * q + 1), word(w.hi, 2 * q + 1)};
    mma_e4m3(c, a, word(b, 2 * q), word(b, 2 * q + 1));
  }
}

}  // namespace dsinfer::cuda
