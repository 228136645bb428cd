// The FP8 GEMM benchmark behind `dsinfer bench-gemm`: DeepSeek's block-scaled FP8 product
// (activation quantization included) against cuBLASLt's plain per-tensor FP8 and bf16 products
// of the same shapes, and the grouped FP8 MoE GEMM (moe_bench.cpp), timed in one process on one
// GPU. Plain C++ so the CLI needs no CUDA headers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer::cuda {

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;  // out[M, N] = x[M, K] W[N, K]^T
};

constexpr int64_t kSkinnyMaxRows = 4;  // kGemvFp8MaxRows, a CUDA header's

// TFLOP/s (2 M N K per product) of the median repeat; NaN where the GPU cannot run the variant,
// and for `tensor` at a skinny shape (1-4 tokens, N and K whole blocks of 128), whose bytes are
// timed instead (SkinnyBenchRow).
struct GemmBenchRow {
  GemmShape shape;
  double block = 0;        // activation quantization + block-scaled FP8 GEMM (what linear runs)
  double block_gemm = 0;   // the block-scaled GEMM alone
  double tensor = 0;       // per-tensor-scaled FP8 GEMM, fast accumulation: the FP8 ceiling
  double bf16 = 0;         // bf16 GEMM
};

// The MoE layer of DeepSeek-V3 (top-k of `experts`, FP8 experts with 128 x 128 block scales,
// distinct weights per expert, random routing) on the grouped FP8 GEMM.
struct MoeBenchShape {
  int tokens = 4096, top_k = 8, experts = 256;
  int64_t hidden = 7168, inter = 2048;
};

// Milliseconds of the median repeat; NaN where the GPU cannot run the variant. TFLOP/s count
// useful products only: 2 x pairs x N x K.
struct MoeBenchRow {
  MoeBenchShape shape;
  double gate_up_ms = 0, down_ms = 0;  // one grouped launch each (gate_up: N = 2 inter, K = hidden)
  double experts_ms = 0;               // CudaBackend::moe_experts: permutation to combine
  std::string experts_path;            // which path moe_experts took
  int active_experts = 0;              // experts the routing gave rows (their weights are read)
  double copy_bandwidth = 0;           // measure_copy_bandwidth in the same process, bytes / s
  double gate_up_tflops() const;
  double down_tflops() const;
  double gemm_tflops() const;          // both launches together
  // The bytes a launch must move at least: the active experts' e4m3 weights and their 128 x 128
  // block scales, the quantized rows and their scales (one per row and 128 columns) read, and
  // the output written (act and y in bf16). Over the copy bandwidth: the memory floor.
  double gate_up_bytes() const { return launch_bytes(2 * shape.inter, shape.hidden, 2.0 * shape.inter); }
  double down_bytes() const { return launch_bytes(shape.hidden, shape.inter, 2.0 * shape.hidden); }
  double floor_ms(double bytes) const { return bytes / copy_bandwidth * 1e3; }

 private:
  double launch_bytes(int64_t n, int64_t k, double out_row_bytes) const {
    constexpr double kBlock = 128;  // the scale blocks' side (kFp8Block, a CUDA header's)
    const double rows = static_cast<double>(shape.tokens) * shape.top_k, scales = (n / kBlock) * (k / kBlock) * 4;
    return active_experts * (static_cast<double>(n) * k + scales) + rows * (k + k / kBlock * 4) + rows * out_row_bytes;
  }
};

// A decode-sized product (1-4 tokens) of block-scaled FP8 weights through CudaBackend::linear: the
// skinny kernels a decode step runs, memory-bound, so timed against the copy bandwidth.
struct SkinnyBenchRow {
  GemmShape shape;
  double us = 0;     // median of the repeats; NaN where linear takes no skinny kernel
  double bytes = 0;  // what it must move: e4m3 weights and block scales, x and out in bf16
  std::string kernel;  // which skinny kernel, its form and splits (gemv_fp8_kernel_name)
};

struct GemmBenchOptions {
  std::vector<GemmShape> shapes;
  int repeats = 10;  // timed samples per variant; each sample is `inner` products on rotating operands
  int inner = 10;
  int device = 0;
  bool moe = true;  // also time the grouped MoE GEMM and moe_experts at `moe_shape`
  MoeBenchShape moe_shape;
};

struct GemmBenchResult {
  std::string device;  // name of the GPU
  GemmBenchRow peak;   // per-tensor FP8 at 8192^3: the card's FP8 dense rate through cuBLASLt
  std::vector<GemmBenchRow> rows;
  std::vector<SkinnyBenchRow> skinny;  // the shapes of at most kSkinnyMaxRows tokens
  double copy_bandwidth = 0;           // bytes / s, measured in the same process where skinny rows ran
  MoeBenchRow moe;     // when options.moe
};

// Throws dsinfer::Error when there is no usable CUDA device.
GemmBenchResult bench_fp8_gemm(const GemmBenchOptions& options);

}  // namespace dsinfer::cuda
