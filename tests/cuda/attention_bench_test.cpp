// Benchmarks, not tests (disabled; no timed assertions): the attention op alone at the
// R1-Distill-Qwen-7B shape (28 query / 4 kv heads of 128), timed with CUDA events on the
// backend's stream, median of 20 calls. Prefill FLOPs are the causal ones: 4 * heads * D * (keys
// each query token sees, summed); decode bytes are the K and V rows the batch reads, against the
// copy bandwidth measured in the same process. Run with
//   test_cuda --gtest_also_run_disabled_tests --gtest_filter='GpuBench.*Attention'
#include <algorithm>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>

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

// Median seconds of `call` over 20 timed calls on the backend's stream (after 3 warm-up calls).
double median_seconds(GpuTest& g, const std::function<void()>& call) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(g.gpu.get());
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

KvLayer random_cache(GpuTest& g, int slots) {
  const Shape kv_shape = {slots, kKvHeads * kDim};
  return KvLayer{g.gpu_bf16(random_values(shape_numel(kv_shape), 1.0f, 2), kv_shape),
                 g.gpu_bf16(random_values(shape_numel(kv_shape), 1.0f, 3), kv_shape)};
}

double time_prefill(GpuTest& g, int past, int len) {
  const ForwardBatch b = one_sequence(past, len);
  const int ctx = past + len, slots = (ctx + kBlock - 1) / kBlock * kBlock;
  Tensor q = g.gpu_bf16(random_values(static_cast<size_t>(len) * kHeads * kDim, 1.0f, 1), {len, kHeads, kDim});
  const KvLayer kv = random_cache(g, slots);
  Tensor out = g.gpu_tensor(DType::BF16, {len, kHeads, kDim});
  g.gpu->begin_forward(b);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  return median_seconds(g, [&] { g.gpu->attention(b, q, kv, kKvHeads, kDim, kDim, scale, out); });
}

void report(GpuTest& g, int past, int len) {
  const double sec = time_prefill(g, past, len);
  // Query at position p sees p + 1 keys.
  const double keys = (static_cast<double>(past + len) * (past + len + 1) - static_cast<double>(past) * (past + 1)) / 2;
  const double flops = 4.0 * kHeads * kDim * keys;
  std::printf("prefill attention: %d cached + %d new tokens, %d/%d heads, dim %d: %.1f us, %.1f TFLOP/s\n", past,
              len, kHeads, kKvHeads, kDim, sec * 1e6, flops / sec * 1e-12);
}

// One decode token for each of `batch` sequences of `ctx` tokens, their cache blocks shuffled
// over the cache (as a long-running server's are).
void report_decode(GpuTest& g, int batch, int ctx, double copy) {
  const int per_seq = (ctx + kBlock - 1) / kBlock, blocks = batch * per_seq;
  std::vector<int> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  ForwardBatch b;
  b.block_size = kBlock;
  for (int s = 0; s < batch; ++s) {
    SeqSlice sl{s, 1, ctx, std::vector<int>(order.begin() + s * per_seq, order.begin() + (s + 1) * per_seq)};
    b.tokens.push_back(0);
    b.positions.push_back(ctx - 1);
    b.slots.push_back(sl.block_table[(ctx - 1) / kBlock] * kBlock + (ctx - 1) % kBlock);
    b.logit_rows.push_back(s);
    b.seqs.push_back(std::move(sl));
  }
  Tensor q = g.gpu_bf16(random_values(static_cast<size_t>(batch) * kHeads * kDim, 1.0f, 1), {batch, kHeads, kDim});
  const KvLayer kv = random_cache(g, blocks * kBlock);
  Tensor out = g.gpu_tensor(DType::BF16, {batch, kHeads, kDim});
  g.gpu->begin_forward(b);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  const double sec = median_seconds(g, [&] { g.gpu->attention(b, q, kv, kKvHeads, kDim, kDim, scale, out); });
  const double bytes = 2.0 * batch * ctx * kKvHeads * kDim * sizeof(uint16_t);
  std::printf("decode attention: batch %d x context %d, %d/%d heads, dim %d: %.1f us, %.0f GB/s = %.0f %% of copy (%.0f GB/s)\n",
              batch, ctx, kHeads, kKvHeads, kDim, sec * 1e6, bytes / sec * 1e-9, 100.0 * bytes / sec / copy, copy * 1e-9);
}

}  // namespace

TEST(GpuBench, DISABLED_DecodeAttention) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const double copy = copy_bandwidth(g);
  report_decode(g, 1, 576, copy);
  report_decode(g, 64, 1088, copy);
  report_decode(g, 64, 4096, copy);
  report_decode(g, 8, 8192, copy);
}

TEST(GpuBench, DISABLED_PrefillAttention) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  report(g, 0, 4096);
  report(g, 0, 1024);
  report(g, 3072, 1024);  // chunked prefill: the last chunk of a 4096-token prompt
  report(g, 8000, 16);    // a short chunk over a long cached prefix
}
