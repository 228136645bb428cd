// CublasLtGemm: the linear layer's matrix product through cuBLASLt, out[M, N] = x[M, K] W[N, K]^T
// with bf16 operands and float accumulation. Column-major cuBLASLt sees this as D[N, M] =
// W^T(op T on [K, N]) x(op N on [K, M]): the "TN" layout its fastest kernels use. A plan
// (descriptors and an algorithm) is cached per shape, output dtype, alignment and whether a bias
// is added in the epilogue. For decode-sized products the algorithm is the fastest of cuBLASLt's
// candidates timed on the first call's operands (its heuristic's first pick streams skinny
// products' weights below the copy rate); other products take the heuristic's pick.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "core/dtype.h"

namespace dsinfer::cuda {

// Pointer alignments in bytes of the weight, the input and the output: cuBLASLt picks kernels by them.
struct GemmAlignment {
  int w = 256, x = 256, out = 256;
};

// cuBLASLt's best algorithm for a described product within `workspace_bytes` (found = 0: none;
// some cuBLASLt versions report an unsupported combination as an error status instead).
cublasStatus_t best_algo(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                         cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d, uint64_t workspace_bytes,
                         GemmAlignment align, cublasLtMatmulAlgo_t& algo, int& found);

class CublasLtGemm {
 public:
  explicit CublasLtGemm(cudaStream_t stream);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // out is bf16 or f32; `bias` (bf16 [N], only with a bf16 out) is added in the epilogue.
  void matmul(const __nv_bfloat16* x, const __nv_bfloat16* w, void* out, DType out_dtype, int64_t m, int64_t n, int64_t k,
              const __nv_bfloat16* bias = nullptr);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool timed = false;  // algo is the fastest measured, not just the heuristic's first
  };
  // m, n, k, output dtype, alignment of x, w, out in bytes, bias epilogue.
  using Key = std::tuple<int64_t, int64_t, int64_t, DType, int, int, int, bool>;

  Plan& plan(const Key& key);
  // Times cuBLASLt's candidates for p on these operands (weights flushed from L2 before each run)
  // and keeps the fastest; nothing when the stream is being captured into a graph.
  void time_candidates(Plan& p, const void* x, const void* w, void* out);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  void* l2_flush_ = nullptr;  // written between timed runs, so weights come from memory as in a step
  std::map<Key, Plan> plans_;
};

}  // namespace dsinfer::cuda
