// Skinny products of block-scaled FP8 weights (gemv_fp8.cu): out[M, N] = x[M, K] W[N, K]^T
// (+ bias), up to kGemvFp8MaxProducts of one x a launch, for M <= kGemvFp8MaxRows, bf16 x, e4m3 W
// with float block scales, bf16 or f32 out.
// W's first loads are issued before the previous kernel in the stream finishes: it must be a
// model weight, which no kernel writes.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/device_weight.h"
#include "backend/cuda/skinny_products.h"

namespace dsinfer::cuda {

constexpr int kGemvFp8MaxRows = 4, kGemvFp8MaxProducts = 4;

// Products of one x in one launch (linear_many: MLA's q_a and kv_a read the same normed hidden
// state).
using GemvFp8Products = SkinnyProducts<DeviceWeight, kGemvFp8MaxProducts>;

// x quantized by DeepSeek's recipe before the product (launch_quantize_fp8_act_chained): e4m3
// rows [M, K] and scales [K / 128, M], tokens contiguous. Null q: the kernel quantizes x itself.
struct Fp8Act {
  uint8_t* q = nullptr;
  float* scale = nullptr;
};
// Bytes of an Fp8Act of m rows of k columns: the rows, then the scales 16-byte aligned.
size_t fp8_act_bytes(int64_t m, int64_t k);
Fp8Act fp8_act_at(void* scratch, int64_t m, int64_t k);
// Whether a launch of m rows quantizes x in a pass of its own first (the tensor-core kernel
// then reads it as quantized), given scratch for it: gemv_fp8_mma.cu's header says where that pays.
bool gemv_fp8_quantizes_first(int64_t m);
// Whether launch_gemv_fp8 takes the tensor-core kernel for these products (every one fits
// gemv_fp8_mma_fits): only then does it read the scratch of x quantized first.
bool gemv_fp8_takes_mma(int64_t k, const GemvFp8Products& products);

// Whether the kernel takes this product: 1-4 rows, K and the scale blocks' width multiples of 16,
// x and W 16-byte aligned.
bool gemv_fp8_fits(int64_t m, int64_t k, const void* x, const DeviceWeight& w);
// A launch with fewer rows than two waves of the `sm_count` SMs' resident warps splits each row
// over several. Products that all fit gemv_fp8_mma_fits take the tensor-core kernel instead, unless
// DSINFER_FP8_GEMV_MMA=0.
// `act`: scratch for x's pass where gemv_fp8_quantizes_first(m) (else null q).
void launch_gemv_fp8(const __nv_bfloat16* x, Fp8Act act, GemvFp8Products products, DType out_dtype, int64_t m,
                     int64_t k, int sm_count, cudaStream_t s);
// out = (silu(gate) * up) W^T for products that gemv_fp8_takes_mma, the activation computed by
// the pass that quantizes x into `act` (rounded to bf16 as silu_mul rounds it): no silu_mul
// launch in the chain, and the product reads x quantized, the same bits as silu_mul and then
// launch_gemv_fp8.
void launch_gemv_fp8_silu(const __nv_bfloat16* gate, const __nv_bfloat16* up, Fp8Act act, GemvFp8Products products,
                          DType out_dtype, int64_t m, int64_t k, int sm_count, cudaStream_t s);
// The kernel launch_gemv_fp8 runs for one product of n rows, for a benchmark's table: "deep, 4
// splits" or "wide, 2 splits" (the tensor-core kernel's forms), or "CUDA cores, 8 splits".
std::string gemv_fp8_kernel_name(int64_t m, int64_t n, int64_t k, const DeviceWeight& w, int sm_count);

// gemv_fp8_mma.cu: the same products on tensor cores with x quantized per 128 columns (DeepSeek's
// recipe), where K and the scale blocks' width are multiples of 128 and their height of 16.
bool gemv_fp8_mma_fits(int64_t k, const DeviceWeight& w);
// Warps that split each tile of 16 rows' K in a launch of `tiles` tiles over `warp_slots` resident
// warps (1, 2, 4 or 8).
int gemv_fp8_mma_splits(int64_t tiles, int64_t k, int64_t warp_slots);
// A launch's form and splits: `deep` (two blocks an SM; at 1-2 tokens each warp's next step in
// flight) or wide (three blocks an SM), given the resident warps of each form (gemv_fp8_mma.cu's
// header).
struct GemvFp8MmaPlan {
  bool deep = false;
  int splits = 1;
};
GemvFp8MmaPlan gemv_fp8_mma_plan(int64_t tiles, int64_t k, int64_t wide_slots, int64_t deep_slots);
// The plan of a launch of m rows (products.count > 1: `many`; x `quantized` first) on the current
// device, as launch_gemv_fp8_mma takes it.
GemvFp8MmaPlan gemv_fp8_mma_device_plan(int64_t m, int64_t tiles, int64_t k, bool many, DType out_dtype, int sm_count,
                                        bool quantized = false);
// `act`: x already quantized (null q: the kernel quantizes it as it reads it).
void launch_gemv_fp8_mma(const __nv_bfloat16* x, Fp8Act act, GemvFp8Products products, DType out_dtype, int64_t m,
                         int64_t k, int sm_count, cudaStream_t s);

}  // namespace dsinfer::cuda
