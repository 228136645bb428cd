// Benchmark, not a test (disabled; no timed assertions): one decode step of a Qwen2-7B-shaped
// stack (28 layers, hidden 3584, 28/4 heads of 128, MLP 18944, vocab 152064) through the CUDA
// backend's ops in the order the dense model issues them, against the bytes it must read
// (weights + KV cache) over the copy bandwidth measured in the same process. Run with
//   test_cuda --gtest_also_run_disabled_tests --gtest_filter='GpuBench.*'
#include <chrono>
#include <cstdio>
#include <numeric>

#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kLayers = 28, kHidden = 3584, kHeads = 28, kKvHeads = 4, kDim = 128, kInter = 18944, kVocab = 152064;
constexpr int kBlock = 16;

struct Layer {
  Weight in_norm, post_norm, q, k, v, q_bias, k_bias, v_bias, o, gate, up, down;
  KvLayer kv;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Device-to-device copy bandwidth (bytes read + written per second) of a 2 GiB cudaMemcpy.
double copy_bandwidth(GpuTest& g) {
  const size_t bytes = size_t{2} << 30;
  Tensor a = g.gpu_tensor(DType::U8, {static_cast<int64_t>(bytes)}), b = g.gpu_tensor(DType::U8, {static_cast<int64_t>(bytes)});
  g.gpu->fill_zero(a);
  g.gpu->synchronize();
  EXPECT_EQ(cudaMemcpy(b.data, a.data, bytes, cudaMemcpyDeviceToDevice), cudaSuccess);
  const int reps = 10;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) cudaMemcpyAsync(b.data, a.data, bytes, cudaMemcpyDeviceToDevice);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return 2.0 * bytes * reps / seconds_since(t0);
}

}  // namespace

TEST(GpuBench, DISABLED_Qwen2_7bDecodeStep) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const double bandwidth = copy_bandwidth(g);
  auto weight = [](Shape shape, float scale, uint32_t seed) {
    return HostWeight(random_values(shape_numel(shape), scale, seed), shape, DType::BF16);
  };
  // One random host copy per shape, uploaded once per layer (every layer has its own memory).
  HostWeight norm = weight({kHidden}, 1.0f, 1), q = weight({kHeads * kDim, kHidden}, 0.02f, 2),
             kv = weight({kKvHeads * kDim, kHidden}, 0.02f, 3), qb = weight({kHeads * kDim}, 0.02f, 4),
             kvb = weight({kKvHeads * kDim}, 0.02f, 5), o = weight({kHidden, kHeads * kDim}, 0.02f, 6),
             gu = weight({kInter, kHidden}, 0.02f, 7), down = weight({kHidden, kInter}, 0.02f, 8),
             head = weight({kVocab, kHidden}, 0.02f, 9);
  std::vector<int> batch_sizes = {1, 8, 32, 64};
  const int context = 1024, max_batch = 64;
  const int blocks = max_batch * context / kBlock;
  std::vector<Layer> layers(kLayers);
  size_t weight_bytes = 0;
  for (Layer& l : layers) {
    for (auto [dst, src] : {std::pair{&l.in_norm, &norm}, {&l.post_norm, &norm}, {&l.q, &q}, {&l.k, &kv}, {&l.v, &kv},
                            {&l.q_bias, &qb}, {&l.k_bias, &kvb}, {&l.v_bias, &kvb}, {&l.o, &o}, {&l.gate, &gu},
                            {&l.up, &gu}, {&l.down, &down}}) {
      *dst = g.gpu->upload_weight(src->weight, g.keep);
      weight_bytes += dst->nbytes();
    }
    l.kv.k = g.gpu_tensor(DType::BF16, {int64_t{blocks} * kBlock, kKvHeads * kDim});
    l.kv.v = g.gpu_tensor(DType::BF16, {int64_t{blocks} * kBlock, kKvHeads * kDim});
    g.gpu->fill_zero(l.kv.k);
    g.gpu->fill_zero(l.kv.v);
  }
  const Weight final_norm = g.gpu->upload_weight(norm.weight, g.keep), lm_head = g.gpu->upload_weight(head.weight, g.keep);
  weight_bytes += final_norm.nbytes() + lm_head.nbytes();
  std::vector<float> inv_freq(kDim / 2);
  for (int i = 0; i < kDim / 2; ++i) inv_freq[i] = 1.0f / std::pow(1e6f, 2.0f * i / kDim);
  const RopeParams rope{g.gpu_f32(inv_freq, {kDim / 2}), 1.0f, RopeStyle::Neox};

  std::printf("\nQwen2-7B-shaped decode step, context %d per sequence, copy bandwidth %.0f GB/s\n", context,
              bandwidth / 1e9);
  std::printf("%6s %10s %10s %12s %12s %10s\n", "batch", "step ms", "linear ms", "bytes GB", "roofline ms",
              "of roofline");
  for (int b : batch_sizes) {
    ForwardBatch fb;
    fb.block_size = kBlock;
    for (int s = 0; s < b; ++s) {
      SeqSlice sl;
      sl.query_start = s;
      sl.query_len = 1;
      sl.context_len = context;
      sl.block_table.resize(context / kBlock);
      std::iota(sl.block_table.begin(), sl.block_table.end(), s * context / kBlock);
      fb.seqs.push_back(sl);
      fb.tokens.push_back(0);
      fb.positions.push_back(context - 1);
      fb.slots.push_back(sl.block_table.back() * kBlock + kBlock - 1);
      fb.logit_rows.push_back(s);
    }
    Tensor x = g.gpu_bf16(random_values(b * kHidden, 1.0f, 10), {b, kHidden});
    Tensor h = g.gpu_tensor(DType::BF16, {b, kHidden}), t = g.gpu_tensor(DType::BF16, {b, kHidden});
    Tensor qt = g.gpu_tensor(DType::BF16, {b, kHeads, kDim}), attn = g.gpu_tensor(DType::BF16, {b, kHeads, kDim});
    Tensor kt = g.gpu_tensor(DType::BF16, {b, kKvHeads, kDim}), vt = g.gpu_tensor(DType::BF16, {b, kKvHeads, kDim});
    Tensor gate = g.gpu_tensor(DType::BF16, {b, kInter}), up = g.gpu_tensor(DType::BF16, {b, kInter});
    Tensor logits = g.gpu_tensor(DType::F32, {b, kVocab});
    // all_ops = false leaves only the matrix products, to split the step's time between them and
    // everything else.
    auto step = [&](bool all_ops) {
      g.gpu->begin_forward(fb);
      for (Layer& l : layers) {
        if (!all_ops) {
          for (auto [w, out] : {std::pair{&l.q, qt.reshape({b, kHeads * kDim})}, {&l.k, kt.reshape({b, kKvHeads * kDim})},
                                {&l.v, vt.reshape({b, kKvHeads * kDim})}})
            g.gpu->linear(h, *w, nullptr, out);
          g.gpu->linear(attn.reshape({b, kHeads * kDim}), l.o, nullptr, t);
          g.gpu->linear(h, l.gate, nullptr, gate);
          g.gpu->linear(h, l.up, nullptr, up);
          g.gpu->linear(gate, l.down, nullptr, t);
          continue;
        }
        g.gpu->rmsnorm(x, l.in_norm, 1e-6f, h);
        g.gpu->linear(h, l.q, &l.q_bias, qt.reshape({b, kHeads * kDim}));
        g.gpu->linear(h, l.k, &l.k_bias, kt.reshape({b, kKvHeads * kDim}));
        g.gpu->linear(h, l.v, &l.v_bias, vt.reshape({b, kKvHeads * kDim}));
        g.gpu->rope(fb, qt, 0, kDim, rope);
        g.gpu->rope(fb, kt, 0, kDim, rope);
        g.gpu->cache_write(fb, kt.reshape({b, kKvHeads * kDim}), l.kv.k);
        g.gpu->cache_write(fb, vt.reshape({b, kKvHeads * kDim}), l.kv.v);
        g.gpu->attention(fb, qt, l.kv, kKvHeads, kDim, kDim, 0.088f, attn);
        g.gpu->linear(attn.reshape({b, kHeads * kDim}), l.o, nullptr, t);
        g.gpu->add(x, t);
        g.gpu->rmsnorm(x, l.post_norm, 1e-6f, h);
        g.gpu->linear(h, l.gate, nullptr, gate);
        g.gpu->linear(h, l.up, nullptr, up);
        g.gpu->silu_mul(gate, up, gate);
        g.gpu->linear(gate, l.down, nullptr, t);
        g.gpu->add(x, t);
      }
      if (all_ops) g.gpu->rmsnorm(x, final_norm, 1e-6f, h);
      g.gpu->linear(h, lm_head, nullptr, logits);
    };
    auto time_ms = [&](bool all_ops) {
      for (int i = 0; i < 3; ++i) step(all_ops);
      g.gpu->synchronize();
      const int reps = 10;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) step(all_ops);
      g.gpu->synchronize();
      return seconds_since(t0) / reps * 1e3;
    };
    const double ms = time_ms(true), linear_ms = time_ms(false);
    const double kv_bytes = double(b) * context * kLayers * 2 * kKvHeads * kDim * 2;
    const double bytes = weight_bytes + kv_bytes;
    // The copy moved read + written bytes; a step mostly reads, so its floor is bytes over that rate.
    const double roofline_ms = bytes / bandwidth * 1e3;
    std::printf("%6d %10.3f %10.3f %12.2f %12.3f %9.0f%%\n", b, ms, linear_ms, bytes / 1e9, roofline_ms,
                100.0 * roofline_ms / ms);
  }
}
