// Skinny products of block-scaled FP8 weights (gemv_fp8.cu): out[M, N] = x[M, K] W[N, K]^T
// (+ bias), up to kGemvFp8MaxProducts of one x a launch, for M <= kGemvFp8MaxRows, bf16 x, e4m3 W
// with float block scales, bf16 or f32 out.
// W's first loads are issued before the previous kernel in the stream finishes: it must be a
// model weight, which no kernel writes.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/device_weight.h"
#include "backend/cuda/skinny_products.h"

namespace dsinfer::cuda {

constexpr int kGemvFp8MaxRows = 4, kGemvFp8MaxProducts = 4;

// Products of one x in one launch (linear_many: MLA's q_a and kv_a read the same normed hidden
// state).
using GemvFp8Products = SkinnyProducts<DeviceWeight, kGemvFp8MaxProducts>;

// Whether the kernel takes this product: 1-4 rows, K and the scale blocks' width multiples of 16,
// x and W 16-byte aligned.
bool gemv_fp8_fits(int64_t m, int64_t k, const void* x, const DeviceWeight& w);
// A launch with fewer rows than two waves of the `sm_count` SMs' resident warps splits each row
// over several. Products that all fit gemv_fp8_mma_fits take the tensor-core kernel instead, unless
// DSINFER_FP8_GEMV_MMA=0.
void launch_gemv_fp8(const __nv_bfloat16* x, GemvFp8Products products, DType out_dtype, int64_t m, int64_t k,
                     int sm_count, cudaStream_t s);

// gemv_fp8_mma.cu: the same products on tensor cores with x quantized per 128 columns (DeepSeek's
// recipe), where K and the scale blocks' width are multiples of 128 and their height of 16.
bool gemv_fp8_mma_fits(int64_t k, const DeviceWeight& w);
// Warps that split each tile of 16 rows' K in a launch of `tiles` tiles over `warp_slots` resident
// warps (1, 2, 4 or 8).
int gemv_fp8_mma_splits(int64_t tiles, int64_t k, int64_t warp_slots);
void launch_gemv_fp8_mma(const __nv_bfloat16* x, GemvFp8Products products, DType out_dtype, int64_t m, int64_t k,
                         int sm_count, cudaStream_t s);

}  // namespace dsinfer::cuda
