// Benchmark, not a test (disabled; no timed assertions): the prefill attention op alone at the
// R1-Distill-Qwen-7B shape (28 query / 4 kv heads of 128), timed with CUDA events on the
// backend's stream, median of 20 calls. FLOPs are the causal ones: 4 * heads * D * (keys each
// query token sees, summed). Run with
//   test_cuda --gtest_also_run_disabled_tests --gtest_filter='GpuBench.PrefillAttention'
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "backend/cuda/cuda_backend.h"
#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kHeads = 28, kKvHeads = 4, kDim = 128, kBlock = 16;

// One sequence with `past` cached tokens and `len` new ones, its cache blocks in order.
ForwardBatch one_sequence(int past, int len) {
  ForwardBatch b;
  b.block_size = kBlock;
  SeqSlice s;
  s.query_start = 0;
  s.query_len = len;
  s.context_len = past + len;
  for (int i = 0; i < (s.context_len + kBlock - 1) / kBlock; ++i) s.block_table.push_back(i);
  for (int p = past; p < s.context_len; ++p) {
    b.tokens.push_back(0);
    b.positions.push_back(p);
    b.slots.push_back(p);
  }
  b.seqs.push_back(s);
  return b;
}

// Median seconds of one attention() call over 20 timed calls (after 3 warm-up calls).
double time_prefill(GpuTest& g, int past, int len) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(g.gpu.get());
  const ForwardBatch b = one_sequence(past, len);
  const int ctx = past + len, slots = (ctx + kBlock - 1) / kBlock * kBlock;
  Tensor q = g.gpu_bf16(random_values(static_cast<size_t>(len) * kHeads * kDim, 1.0f, 1), {len, kHeads, kDim});
  const Shape kv_shape = {slots, kKvHeads * kDim};
  KvLayer kv{g.gpu_bf16(random_values(shape_numel(kv_shape), 1.0f, 2), kv_shape),
             g.gpu_bf16(random_values(shape_numel(kv_shape), 1.0f, 3), kv_shape)};
  Tensor out = g.gpu_tensor(DType::BF16, {len, kHeads, kDim});
  g.gpu->begin_forward(b);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  auto call = [&] { g.gpu->attention(b, q, kv, kKvHeads, kDim, kDim, scale, out); };
  for (int i = 0; i < 3; ++i) call();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> times;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(start, cuda->stream());
    call();
    cudaEventRecord(stop, cuda->stream());
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(GpuTest& g, int past, int len) {
  const double sec = time_prefill(g, past, len);
  // Query at position p sees p + 1 keys.
  const double keys = (static_cast<double>(past + len) * (past + len + 1) - static_cast<double>(past) * (past + 1)) / 2;
  const double flops = 4.0 * kHeads * kDim * keys;
  std::printf("prefill attention: %d cached + %d new tokens, %d/%d heads, dim %d: %.1f us, %.1f TFLOP/s\n", past,
              len, kHeads, kKvHeads, kDim, sec * 1e6, flops / sec * 1e-12);
}

}  // namespace

TEST(GpuBench, DISABLED_PrefillAttention) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  report(g, 0, 4096);
  report(g, 0, 1024);
  report(g, 3072, 1024);  // chunked prefill: the last chunk of a 4096-token prompt
  report(g, 8000, 16);    // a short chunk over a long cached prefix
}
