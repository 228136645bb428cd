// Fp8Gemm: out[M, N] = x[M, K] W[N, K]^T with e4m3 operands on Hopper's FP8 tensor cores
// through cuBLASLt, float32 accumulation, bf16 or f32 output. Column-major cuBLASLt sees
// D[N, M] = W^T x: A = W (op T, lda = K), B = x (op N, ldb = K), the "TN" layout that is the
// only one its FP8 kernels take. Two scalings:
//  * Block, DeepSeek's recipe: A has one float per 128x128 block (BLK128x128_32F), which is
//    the checkpoint's row-major [N/128, K/128] scale grid with its rows padded to a multiple
//    of 4 floats; B has one float per token and 128 columns (VEC128_32F, a [K/128, M] grid
//    with tokens contiguous, as launch_quantize_fp8_act writes it). cuBLASLt (12.9 and newer)
//    implements these modes for compute capability 9.x only.
//  * Tensor: one float for each whole operand; the card's plain FP8 rate, for benchmarks.
// Plans (descriptors and the heuristic's algorithm) are cached per shape; a shape with no
// algorithm is remembered too, so callers can fall back without asking again.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/dtype.h"

namespace dsinfer::cuda {

enum class Fp8Scaling { Block, Tensor };

// Scale blocks of the block-scaled path: 128 x 128 for weights, 1 x 128 for activations.
constexpr int kFp8Block = 128;

// Whether linear may take the block-scaled path for a weight [n, k] with blocks of
// block_rows x block_cols: 128 x 128 blocks, none of them partial (n and k multiples of 128).
// Other shapes are dequantized to bf16 first.
bool fp8_block_shape_supported(int64_t n, int64_t k, int block_rows, int block_cols);

// Whether the block-scaled path may run on `device`: cuBLASLt's kernels exist for compute
// capability 9.x, and DSINFER_FP8_GEMM=dequant forces the dequantizing fallback (to compare).
bool fp8_block_scaling_enabled(int device);

// Floats per row of the weight scales the block-scaled GEMM reads: K/128 rounded up to 4.
inline int64_t fp8_weight_scale_pitch(int64_t k) { return ((k + kFp8Block - 1) / kFp8Block + 3) / 4 * 4; }

struct Fp8Operands {
  const void* w = nullptr;         // e4m3 [N, K]
  const float* w_scale = nullptr;  // Block: [N/128, pitch]; Tensor: one float
  const void* x = nullptr;         // e4m3 [M, K]
  const float* x_scale = nullptr;  // Block: [K/128, M]; Tensor: one float
};

class Fp8Gemm {
 public:
  explicit Fp8Gemm(cudaStream_t stream);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // Whether cuBLASLt has an algorithm for this product (asked once per shape and alignment).
  // The scale pointers must be the ones the product will use or alike: cuBLASLt's heuristic
  // wants them set.
  bool supported(Fp8Scaling scaling, const Fp8Operands& ops, void* out, DType out_dtype, int64_t m, int64_t n,
                 int64_t k);
  // Queues the product; throws when it is not supported. `fast_accum` lets the tensor cores
  // keep their reduced-precision accumulator across all of K (faster, less exact).
  void matmul(Fp8Scaling scaling, const Fp8Operands& ops, void* out, DType out_dtype, int64_t m, int64_t n,
              int64_t k, bool fast_accum = false);

 private:
  struct Plan {
    bool ok = false;  // false: cuBLASLt has no algorithm
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // scaling, m, n, k, output dtype, alignment of w, x, out in bytes, fast accumulation.
  using Key = std::tuple<Fp8Scaling, int64_t, int64_t, int64_t, DType, int, int, int, bool>;

  Plan& plan(const Key& key, const Fp8Operands& ops);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace dsinfer::cuda
