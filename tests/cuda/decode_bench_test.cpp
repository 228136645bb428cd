// Benchmark, not a test (disabled; no timed assertions): one decode step of a Qwen2-7B-shaped
// stack (28 layers, hidden 3584, 28/4 heads of 128, MLP 18944, vocab 152064) through the CUDA
// backend's ops in the order the dense model issues them, against the bytes it must read
// (weights + KV cache) over the copy bandwidth measured in the same process. Run with
//   test_cuda --gtest_also_run_disabled_tests --gtest_filter='GpuBench.*'
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <tuple>

#include "backend/cuda/cuda_backend.h"

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

// GPU time per category of op, from a pair of CUDA events around each call.
class OpTimes {
 public:
  ~OpTimes() { clear(); }
  void time(GpuTest& g, const std::string& what, const std::function<void()>& op) {
    auto* cuda = dynamic_cast<cuda::CudaBackend*>(g.gpu.get());
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, cuda->stream());
    op();
    cudaEventRecord(stop, cuda->stream());
    calls_.push_back({what, start, stop});
  }
  // "batch B: category us (share), ..." per step, over `steps` steps; waits for the device.
  std::string summary(int batch, int steps) {
    std::map<std::string, double> us;
    double total = 0;
    for (const Call& c : calls_) {
      cudaEventSynchronize(c.stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, c.start, c.stop);
      us[c.what] += ms * 1e3 / steps;
      total += ms * 1e3 / steps;
    }
    std::string line = "  batch " + std::to_string(batch) + ":";
    char buf[96];
    for (const auto& [what, t] : us) {
      std::snprintf(buf, sizeof buf, " %s %.0f us (%.0f %%),", what.c_str(), t, 100.0 * t / total);
      line += buf;
    }
    std::snprintf(buf, sizeof buf, " total %.0f us\n", total);
    return line + buf;
  }
  void clear() {
    for (const Call& c : calls_) {
      cudaEventDestroy(c.start);
      cudaEventDestroy(c.stop);
    }
    calls_.clear();
  }

 private:
  struct Call {
    std::string what;
    cudaEvent_t start, stop;
  };
  std::vector<Call> calls_;
};

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
    for (auto [dst, src] : {std::pair{&l.in_norm, &norm}, {&l.post_norm, &norm}, {&l.o, &o}, {&l.gate, &gu},
                            {&l.up, &gu}, {&l.down, &down}})
      *dst = g.gpu->upload_weight(src->weight, g.keep);
    // As the model loads them: q/k/v (and their biases) back to back.
    const std::vector<Weight> qkv = g.gpu->upload_weights({q.weight, kv.weight, kv.weight}, g.keep),
                              qkv_bias = g.gpu->upload_weights({qb.weight, kvb.weight, kvb.weight}, g.keep);
    std::tie(l.q, l.k, l.v) = std::tie(qkv[0], qkv[1], qkv[2]);
    std::tie(l.q_bias, l.k_bias, l.v_bias) = std::tie(qkv_bias[0], qkv_bias[1], qkv_bias[2]);
    for (const Weight* w : {&l.in_norm, &l.post_norm, &l.q, &l.k, &l.v, &l.q_bias, &l.k_bias, &l.v_bias, &l.o, &l.gate,
                            &l.up, &l.down})
      weight_bytes += w->nbytes();
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
  std::vector<std::string> breakdowns;
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
    g.gpu->fill_zero(t);
    Tensor qt = g.gpu_tensor(DType::BF16, {b, kHeads, kDim}), attn = g.gpu_tensor(DType::BF16, {b, kHeads, kDim});
    Tensor kt = g.gpu_tensor(DType::BF16, {b, kKvHeads, kDim}), vt = g.gpu_tensor(DType::BF16, {b, kKvHeads, kDim});
    Tensor gate = g.gpu_tensor(DType::BF16, {b, kInter}), up = g.gpu_tensor(DType::BF16, {b, kInter});
    Tensor logits = g.gpu_tensor(DType::F32, {b, kVocab});
    // The ops in the order the dense model issues them; `timed` wraps each in its category's
    // CUDA events when the per-op breakdown is measured, and all_ops = false leaves only the
    // matrix products.
    OpTimes times;
    auto step = [&](bool all_ops, bool per_op) {
      auto timed = [&](const char* what, const std::function<void()>& op) { per_op ? times.time(g, what, op) : op(); };
      g.gpu->begin_forward(fb);
      for (Layer& l : layers) {
        const std::vector<LinearOut> qkv = {{&l.q, &l.q_bias, qt.reshape({b, kHeads * kDim})},
                                            {&l.k, &l.k_bias, kt.reshape({b, kKvHeads * kDim})},
                                            {&l.v, &l.v_bias, vt.reshape({b, kKvHeads * kDim})}};
        if (all_ops) timed("norms and adds", [&] { g.gpu->add_rmsnorm(x, t, l.in_norm, 1e-6f, h); });
        timed("q/k/v", [&] { g.gpu->linear_many(h, qkv); });
        if (all_ops) {
          timed("rope + cache write", [&] { g.gpu->rope_and_cache(fb, qt, kt, vt, l.kv, rope); });
          timed("attention", [&] { g.gpu->attention(fb, qt, l.kv, kKvHeads, kDim, kDim, 0.088f, attn); });
        }
        timed("o", [&] { g.gpu->linear(attn.reshape({b, kHeads * kDim}), l.o, nullptr, t); });
        if (all_ops) timed("norms and adds", [&] { g.gpu->add_rmsnorm(x, t, l.post_norm, 1e-6f, h); });
        timed("gate/up", [&] { g.gpu->linear_many(h, {{&l.gate, nullptr, gate}, {&l.up, nullptr, up}}); });
        if (all_ops) timed("silu", [&] { g.gpu->silu_mul(gate, up, gate); });
        timed("down", [&] { g.gpu->linear(gate, l.down, nullptr, t); });
      }
      if (all_ops) timed("norms and adds", [&] { g.gpu->add_rmsnorm(x, t, final_norm, 1e-6f, h); });
      timed("head", [&] { g.gpu->linear(h, lm_head, nullptr, logits); });
    };
    auto time_ms = [&](bool all_ops) {
      for (int i = 0; i < 3; ++i) step(all_ops, false);
      g.gpu->synchronize();
      const int reps = 10;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) step(all_ops, false);
      g.gpu->synchronize();
      return seconds_since(t0) / reps * 1e3;
    };
    const double ms = time_ms(true), linear_ms = time_ms(false);
    times.clear();
    for (int i = 0; i < 3; ++i) step(true, true);
    breakdowns.push_back(times.summary(b, 3));
    const double kv_bytes = double(b) * context * kLayers * 2 * kKvHeads * kDim * 2;
    const double bytes = weight_bytes + kv_bytes;
    // The copy moved read + written bytes; a step mostly reads, so its floor is bytes over that rate.
    const double roofline_ms = bytes / bandwidth * 1e3;
    std::printf("%6d %10.3f %10.3f %12.2f %12.3f %9.0f%%\n", b, ms, linear_ms, bytes / 1e9, roofline_ms,
                100.0 * roofline_ms / ms);
  }
  std::printf("\nwhere a step's GPU time goes (each op between CUDA events, so the gaps between ops are left out):\n");
  for (const std::string& line : breakdowns) std::printf("%s", line.c_str());
}
