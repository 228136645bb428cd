// The FP8 GEMM benchmark behind `dsinfer bench-gemm`: DeepSeek's block-scaled FP8 product
// (activation quantization included) against cuBLASLt's plain per-tensor FP8 and bf16 products
// of the same shapes, timed in one process on one GPU. Plain C++ so the CLI needs no CUDA headers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer::cuda {

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;  // out[M, N] = x[M, K] W[N, K]^T
};

// TFLOP/s (2 M N K per product) of the median repeat; NaN where the GPU cannot run the variant.
struct GemmBenchRow {
  GemmShape shape;
  double block = 0;        // activation quantization + block-scaled FP8 GEMM (what linear runs)
  double block_gemm = 0;   // the block-scaled GEMM alone
  double tensor = 0;       // per-tensor-scaled FP8 GEMM, fast accumulation: the FP8 ceiling
  double bf16 = 0;         // bf16 GEMM
};

struct GemmBenchOptions {
  std::vector<GemmShape> shapes;
  int repeats = 10;  // timed samples per variant; each sample is `inner` products on rotating operands
  int inner = 10;
  int device = 0;
};

struct GemmBenchResult {
  std::string device;  // name of the GPU
  GemmBenchRow peak;   // per-tensor FP8 at 8192^3: the card's FP8 dense rate through cuBLASLt
  std::vector<GemmBenchRow> rows;
};

// Throws dsinfer::Error when there is no usable CUDA device.
GemmBenchResult bench_fp8_gemm(const GemmBenchOptions& options);

}  // namespace dsinfer::cuda
