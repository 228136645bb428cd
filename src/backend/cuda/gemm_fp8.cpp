#include "backend/cuda/gemm_fp8.h"

#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm_cublaslt.h"

namespace dsinfer::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // what cuBLAS recommends for Hopper

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by alignment.
int alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

template <typename T>
void set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}

void set_scale_pointers(cublasLtMatmulDesc_t desc, const Fp8Operands& ops) {
  set(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, static_cast<const void*>(ops.w_scale));
  set(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, static_cast<const void*>(ops.x_scale));
}

void destroy(cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d) {
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (d) cublasLtMatrixLayoutDestroy(d);
  if (desc) cublasLtMatmulDescDestroy(desc);
}

const char* scaling_name(Fp8Scaling s) { return s == Fp8Scaling::Block ? "block-scaled" : "tensor-scaled"; }

}  // namespace

bool fp8_block_shape_supported(int64_t n, int64_t k, int block_rows, int block_cols) {
  return block_rows == kFp8Block && block_cols == kFp8Block && n > 0 && k > 0 && n % kFp8Block == 0 &&
         k % kFp8Block == 0;
}

bool fp8_block_scaling_enabled(int device) {
  const char* env = std::getenv("DSINFER_FP8_GEMM");
  if (env && std::string(env) == "dequant") return false;
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9;
}

Fp8Gemm::Fp8Gemm(cudaStream_t stream) : stream_(stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
}

Fp8Gemm::~Fp8Gemm() {
  for (auto& [key, p] : plans_) destroy(p.desc, p.a, p.b, p.d);
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

Fp8Gemm::Plan& Fp8Gemm::plan(const Key& key, const Fp8Operands& ops) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  const auto [scaling, m, n, k, out_dtype, align_w, align_x, align_out, fast_accum] = key;
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  if (scaling == Fp8Scaling::Block) {
    set(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F));
    set(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F));
  }
  set(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, static_cast<int8_t>(fast_accum ? 1 : 0));
  set_scale_pointers(p.desc, ops);  // the heuristic refuses scale modes without their pointers
  const cudaDataType_t out_type = out_dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, k, n, k));  // W [N, K] row-major = [K, N] col-major
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, k, m, k));  // x [M, K]
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, out_type, n, m, n));

  int found = 0;
  // An unsupported combination is an error status or zero results: both mean "fall back".
  const cublasStatus_t st =
      best_algo(handle_, p.desc, p.a, p.b, p.d, kWorkspaceBytes, {align_w, align_x, align_out}, p.algo, found);
  p.ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
  if (!p.ok) {
    destroy(p.desc, p.a, p.b, p.d);
    p = Plan{};
  }
  return plans_.emplace(key, p).first->second;
}

bool Fp8Gemm::supported(Fp8Scaling scaling, const Fp8Operands& ops, void* out, DType out_dtype, int64_t m, int64_t n,
                        int64_t k) {
  return plan({scaling, m, n, k, out_dtype, alignment(ops.w), alignment(ops.x), alignment(out), false}, ops).ok;
}

void Fp8Gemm::matmul(Fp8Scaling scaling, const Fp8Operands& ops, void* out, DType out_dtype, int64_t m, int64_t n,
                     int64_t k, bool fast_accum) {
  if (m == 0 || n == 0) return;
  if (out_dtype != DType::BF16 && out_dtype != DType::F32)
    fail("FP8 GEMM: output dtype ", dtype_name(out_dtype), " (expected bf16 or f32)");
  Plan& p = plan({scaling, m, n, k, out_dtype, alignment(ops.w), alignment(ops.x), alignment(out), fast_accum}, ops);
  if (!p.ok)
    fail("cuBLASLt has no ", scaling_name(scaling), " FP8 algorithm for M=", m, " N=", n, " K=", k, " -> ",
         dtype_name(out_dtype), " on this GPU");
  set_scale_pointers(p.desc, ops);  // the plan is shared by calls with other operands
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, ops.w, p.a, ops.x, p.b, &beta, out, p.d, out, p.d, &p.algo,
                              workspace_, kWorkspaceBytes, stream_));
}

}  // namespace dsinfer::cuda
