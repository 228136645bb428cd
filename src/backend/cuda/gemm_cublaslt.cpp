#include "backend/cuda/gemm_cublaslt.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"

#include <cstdlib>

namespace dsinfer::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// Products of at most this many rows (decode batches) time cuBLASLt's candidates on first use.
constexpr int64_t kTimedMaxRows = 128;
constexpr int kCandidates = 16;
constexpr size_t kL2FlushBytes = size_t{128} << 20;  // over twice an H100's or H200's L2

bool timing_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("DSINFER_GEMM_TIMING");
    return !(v && v[0] == '0');
  }();
  return on;
}

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by alignment.
int alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}

cudaDataType_t cuda_type(DType t) { return t == DType::F32 ? CUDA_R_32F : CUDA_R_16BF; }

}  // namespace

namespace {

// Up to `wanted` of cuBLASLt's candidate algorithms for a described product, best guess first.
std::vector<cublasLtMatmulAlgo_t> candidate_algos(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                  cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                  cublasLtMatrixLayout_t d, uint64_t workspace_bytes,
                                                  GemmAlignment align, int wanted, cublasStatus_t& status) {
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint32_t al_w = align.w, al_x = align.x, al_out = align.out;
  auto set = [&](cublasLtMatmulPreferenceAttributes_t attr, const auto& v) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v)));
  };
  set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspace_bytes);
  set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_w);
  set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_x);
  set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_out);
  set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_out);
  std::vector<cublasLtMatmulHeuristicResult_t> results(wanted);
  int found = 0;
  status = cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, pref, wanted, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  std::vector<cublasLtMatmulAlgo_t> algos;
  if (status == CUBLAS_STATUS_SUCCESS)
    for (int i = 0; i < found; ++i) algos.push_back(results[i].algo);
  return algos;
}

}  // namespace

cublasStatus_t best_algo(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                         cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d, uint64_t workspace_bytes,
                         GemmAlignment align, cublasLtMatmulAlgo_t& algo, int& found) {
  cublasStatus_t st;
  const std::vector<cublasLtMatmulAlgo_t> algos = candidate_algos(handle, desc, a, b, d, workspace_bytes, align, 1, st);
  found = static_cast<int>(algos.size());
  if (found > 0) algo = algos.front();
  return st;
}

CublasLtGemm::CublasLtGemm(cudaStream_t stream) : stream_(stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.d);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cudaFree(workspace_);
  if (l2_flush_) cudaFree(l2_flush_);
  cublasLtDestroy(handle_);
}

CublasLtGemm::Plan& CublasLtGemm::plan(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  const auto [m, n, k, out_dtype, align_x, align_w, align_out, bias] = key;
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  if (bias) {  // D[n, :] += bias[n]: one bias value per output feature
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  }
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, k, n, k));  // W [N, K] row-major = [K, N] col-major
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, k, m, k));  // x [M, K]
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, cuda_type(out_dtype), n, m, n));

  int found = 0;
  CUBLAS_CHECK(best_algo(handle_, p.desc, p.a, p.b, p.d, kWorkspaceBytes, {align_w, align_x, align_out}, p.algo, found));
  if (found == 0)
    fail("cuBLASLt has no algorithm for a bf16 matmul of M=", m, " N=", n, " K=", k, " -> ", dtype_name(out_dtype));
  return plans_.emplace(key, p).first->second;
}

void CublasLtGemm::matmul(const __nv_bfloat16* x, const __nv_bfloat16* w, void* out, DType out_dtype, int64_t m,
                          int64_t n, int64_t k, const __nv_bfloat16* bias) {
  if (m == 0 || n == 0) return;
  if (bias && out_dtype != DType::BF16) fail("cuBLASLt bias epilogue: bf16 bias needs a bf16 output");
  Plan& p = plan({m, n, k, out_dtype, alignment(x), alignment(w), alignment(out), bias != nullptr});
  if (bias)  // the plan is shared by calls with different biases: point it at this one
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  if (!p.timed && m <= kTimedMaxRows && timing_enabled()) time_candidates(p, x, w, out);
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, out, p.d, out, p.d, &p.algo, workspace_,
                              kWorkspaceBytes, stream_));
}

void CublasLtGemm::time_candidates(Plan& p, const void* x, const void* w, void* out) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;  // timing would synchronize inside the capture
  cublasStatus_t status;
  const std::vector<cublasLtMatmulAlgo_t> algos =
      candidate_algos(handle_, p.desc, p.a, p.b, p.d, kWorkspaceBytes, {alignment(w), alignment(x), alignment(out)},
                      kCandidates, status);
  p.timed = true;
  if (algos.size() < 2) return;
  if (!l2_flush_ && cudaMalloc(&l2_flush_, kL2FlushBytes) != cudaSuccess) {
    cudaGetLastError();  // no room to flush: time with warm caches
    l2_flush_ = nullptr;
  }
  EventTimer timer;
  const float alpha = 1.0f, beta = 0.0f;
  double best = 1e30;
  for (const cublasLtMatmulAlgo_t& algo : algos) {
    auto run = [&] {
      return cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, out, p.d, out, p.d, &algo, workspace_,
                            kWorkspaceBytes, stream_);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate may still refuse these operands
    double total = 0.0;
    for (int rep = 0; rep < 3; ++rep) {
      if (l2_flush_) CUDA_CHECK(cudaMemsetAsync(l2_flush_, rep, kL2FlushBytes, stream_));
      total += timer.seconds(stream_, run);
    }
    if (total < best) {
      best = total;
      p.algo = algo;
    }
  }
}

}  // namespace dsinfer::cuda
