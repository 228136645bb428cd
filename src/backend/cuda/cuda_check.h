// Checked CUDA, cuBLAS and cuBLASLt calls: a failure throws dsinfer::Error naming the call,
// where it was made, and the library's error string.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace dsinfer::cuda {

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear it, so the next launch check does not report this error again
  fail("CUDA error in ", call, " (", file, ":", line, "): ", cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}

inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail("cuBLAS error in ", call, " (", file, ":", line, "): ", cublasGetStatusName(s), ": ", cublasGetStatusString(s));
}

}  // namespace dsinfer::cuda

#define CUDA_CHECK(call) ::dsinfer::cuda::check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::dsinfer::cuda::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports a bad launch configuration at the launch, not at the next sync.
#define CUDA_CHECK_LAUNCH(name) ::dsinfer::cuda::check(cudaGetLastError(), name, __FILE__, __LINE__)
