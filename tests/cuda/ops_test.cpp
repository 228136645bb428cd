// The CUDA backend's pointwise, data-movement and matrix ops against the CPU reference, on random
// inputs (bf16-representable, so both see the same values).
#include <numeric>
#include <utility>

#include "backend/copy_bandwidth.h"
#include "gpu_test_util.h"
#include "core/latent_fp8.h"
#include "../paged_batch.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

// Tokens at scattered positions, one sequence per token, slot = position.
ForwardBatch scattered_batch(const std::vector<int>& positions) {
  ForwardBatch b;
  const int n = static_cast<int>(positions.size());
  b.block_size = 16;
  b.positions = positions;
  b.slots = positions;
  b.tokens.assign(n, 0);
  for (int t = 0; t < n; ++t) {
    SeqSlice s;
    s.query_start = t;
    s.query_len = 1;
    s.context_len = positions[t] + 1;
    s.block_table.resize(positions[t] / 16 + 1);
    std::iota(s.block_table.begin(), s.block_table.end(), 0);
    b.seqs.push_back(s);
  }
  return b;
}

// Three tokens of one sequence at positions 0, 5 and 9; the middle one at slot -1 (a padding
// token of a recorded batch: rotated, written nowhere).
ForwardBatch three_token_batch() {
  ForwardBatch b;
  b.tokens = {1, 2, 3};
  b.positions = {0, 5, 9};
  b.slots = {6, -1, 2};
  b.seqs = {SeqSlice{0, 3, 10, {0}}};
  b.block_size = 16;
  return b;
}

// linear_many of the weights ws (their device copies gw; biases on every product but the second)
// for each row count in ms, to bf16 and to f32, against the CPU.
void check_linear_many(GpuTest& g, const std::vector<HostWeight>& ws, const std::vector<HostWeight>& bs,
                       const std::vector<Weight>& gw, const std::vector<Weight>& gb, int k, std::vector<int> ms,
                       uint32_t seed, const std::string& what) {
  for (int m : ms)
    for (DType out_dtype : {DType::BF16, DType::F32}) {
      std::vector<float> x = random_values(m * k, 1.0f, seed + m);
      std::vector<std::vector<float>> want(ws.size());
      std::vector<LinearOut> cpu_outs, gpu_outs;
      for (size_t i = 0; i < ws.size(); ++i) {
        const int n = static_cast<int>(ws[i].weight.out_features());
        want[i].resize(m * n);
        const bool biased = i != 1;
        cpu_outs.push_back({&ws[i].weight, biased ? &bs[i].weight : nullptr, host_view(want[i], {m, n})});
        gpu_outs.push_back({&gw[i], biased ? &gb[i] : nullptr, g.gpu_tensor(out_dtype, {m, n})});
      }
      g.cpu->linear_many(host_view(x, {m, k}), cpu_outs);
      g.gpu->linear_many(g.gpu_bf16(x, {m, k}), gpu_outs);
      for (size_t i = 0; i < ws.size(); ++i)
        expect_close(g.read(gpu_outs[i].out), want[i], out_dtype == DType::F32 ? 1e-3f : 1e-2f,
                     what + " m=" + std::to_string(m) + " product " + std::to_string(i) + " -> " +
                         dtype_name(out_dtype));
    }
}

}  // namespace

TEST(GpuOps, Embedding) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int vocab = 50, hidden = 40;
  HostWeight table(random_values(vocab * hidden, 1.0f, 1), {vocab, hidden}, DType::BF16);
  ForwardBatch b = scattered_batch({0, 1, 2, 3, 4, 5, 6});
  b.tokens = {3, 49, 0, 7, 7, 12, 30};
  std::vector<float> want(b.tokens.size() * hidden);
  g.cpu->embedding(b, table.weight, 0, host_view(want, {7, hidden}));
  g.gpu->begin_forward(b);
  Tensor out = g.gpu_tensor(DType::BF16, {7, hidden});
  const Weight on_gpu = g.gpu->upload_weight(table.weight, g.keep);
  g.gpu->embedding(b, on_gpu, 0, out);
  EXPECT_EQ(g.read(out), want);
  // A tensor-parallel rank's slice of the vocabulary, ids [20, 50): the others read as zeros.
  Weight slice = on_gpu;
  slice.w = on_gpu.w.slice_rows(20, 50);
  g.gpu->embedding(b, slice, 20, out);
  const std::vector<float> got = g.read(out);
  for (size_t t = 0; t < b.tokens.size(); ++t)
    for (int i = 0; i < hidden; ++i)
      EXPECT_EQ(got[t * hidden + i], b.tokens[t] >= 20 ? want[t * hidden + i] : 0.0f) << "token " << b.tokens[t];
}

TEST(GpuOps, RmsnormWithEachWeightDtype) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int rows = 5, h = 300;
  std::vector<float> x = random_values(rows * h, 3.0f, 2);
  for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
    HostWeight w(random_values(h, 1.5f, 3), {h}, dt);
    std::vector<float> want(x.size()), xin = x;
    g.cpu->rmsnorm(host_view(xin, {rows, h}), w.weight, 1e-6f, host_view(want, {rows, h}));
    Tensor gx = g.gpu_bf16(x, {rows, h});
    g.gpu->rmsnorm(gx, g.gpu->upload_weight(w.weight, g.keep), 1e-6f, gx);  // in place, as the model does
    expect_close(g.read(gx), want, 1e-2f, "rmsnorm " + dtype_name(dt));
  }
}

TEST(GpuOps, AddAndSiluMul) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int n = 1000;
  std::vector<float> a = random_values(n, 4.0f, 4), b = random_values(n, 4.0f, 5);
  std::vector<float> sum = a, act(n);
  g.cpu->add(host_view(sum, {n}), host_view(b, {n}));
  g.cpu->silu_mul(host_view(a, {n}), host_view(b, {n}), host_view(act, {n}));
  Tensor ga = g.gpu_bf16(a, {n}), gb = g.gpu_bf16(b, {n}), gact = g.gpu_tensor(DType::BF16, {n});
  g.gpu->silu_mul(ga, gb, gact);
  g.gpu->add(ga, gb);
  expect_close(g.read(ga), sum, 1e-2f, "add");
  expect_close(g.read(gact), act, 1e-2f, "silu_mul");
}

TEST(GpuOps, LinearBf16WithBiasToBf16AndF32) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int m = 7, k = 80, n = 96;
  std::vector<float> x = random_values(m * k, 1.0f, 6);
  HostWeight w(random_values(n * k, 0.2f, 7), {n, k}, DType::BF16);
  HostWeight bias(random_values(n, 1.0f, 8), {n}, DType::BF16);
  std::vector<float> want(m * n);
  g.cpu->linear(host_view(x, {m, k}), w.weight, &bias.weight, host_view(want, {m, n}));
  Weight gw = g.gpu->upload_weight(w.weight, g.keep), gbias = g.gpu->upload_weight(bias.weight, g.keep);
  Tensor gx = g.gpu_bf16(x, {m, k});
  for (DType out_dtype : {DType::BF16, DType::F32}) {
    Tensor out = g.gpu_tensor(out_dtype, {m, n});
    g.gpu->linear(gx, gw, &gbias, out);
    expect_close(g.read(out), want, out_dtype == DType::F32 ? 1e-3f : 1e-2f, "linear -> " + dtype_name(out_dtype));
  }
}

TEST(GpuOps, LinearF16AndF32Weights) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int m = 3, k = 64, n = 40;
  std::vector<float> x = random_values(m * k, 1.0f, 9);
  for (DType dt : {DType::F16, DType::F32}) {
    HostWeight w(random_values(n * k, 0.2f, 10), {n, k}, dt);
    std::vector<float> want(m * n);
    g.cpu->linear(host_view(x, {m, k}), w.weight, nullptr, host_view(want, {m, n}));
    Tensor out = g.gpu_tensor(DType::F32, {m, n});
    g.gpu->linear(g.gpu_bf16(x, {m, k}), g.gpu->upload_weight(w.weight, g.keep), nullptr, out);
    expect_close(g.read(out), want, 1e-2f, "linear with " + dtype_name(dt) + " weights");
  }
}

TEST(GpuOps, LinearFp8BlockScaledWithPartialBlocks) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int m = 5, k = 72, n = 80, block = 32;  // 3 x 3 blocks, the last row and column partial
  std::vector<float> x = random_values(m * k, 1.0f, 11), raw = random_values(n * k, 400.0f, 12);
  std::vector<uint8_t> fp8(n * k);
  for (size_t i = 0; i < fp8.size(); ++i) fp8[i] = f32_to_fp8e4m3(raw[i]);
  std::vector<float> scales = random_values(3 * 3, 1e-3f, 13);
  for (float& s : scales) s = std::fabs(s) + 1e-4f;
  Weight w;
  w.w = Tensor{DType::F8_E4M3, {n, k}, fp8.data(), {}};
  w.scale = Tensor{DType::F32, {3, 3}, scales.data(), {}};
  w.block_rows = w.block_cols = block;
  std::vector<float> want(m * n);
  g.cpu->linear(host_view(x, {m, k}), w, nullptr, host_view(want, {m, n}));
  Tensor out = g.gpu_tensor(DType::BF16, {m, n});
  g.gpu->linear(g.gpu_bf16(x, {m, k}), g.gpu->upload_weight(w, g.keep), nullptr, out);
  expect_close(g.read(out), want, 1e-2f, "fp8 linear");
}

TEST(GpuOps, RopeBothStylesWithOffsetAndScaling) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int heads = 3, stride = 24, offset = 8, rot = 16;
  ForwardBatch b = scattered_batch({0, 5, 17, 100, 1000, 4000});
  const int t = b.num_tokens();
  std::vector<float> inv_freq(rot / 2);
  for (int i = 0; i < rot / 2; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / rot);
  std::vector<float> x = random_values(t * heads * stride, 2.0f, 14);
  g.gpu->begin_forward(b);
  for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
    RopeParams cpu_p{host_view(inv_freq, {rot / 2}), 1.3f, style};
    RopeParams gpu_p{g.gpu_f32(inv_freq, {rot / 2}), 1.3f, style};
    std::vector<float> want = x;
    g.cpu->rope(b, host_view(want, {t, heads, stride}), offset, rot, cpu_p);
    Tensor gx = g.gpu_bf16(x, {t, heads, stride});
    g.gpu->rope(b, gx, offset, rot, gpu_p);
    expect_close(g.read(gx), want, 1e-2f, style == RopeStyle::Neox ? "rope neox" : "rope interleaved");
  }
}

TEST(GpuOps, CacheWriteGatherRowsCopyColumnsFillZero) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int width = 24, slots = 64;
  ForwardBatch b = scattered_batch({40, 3, 17, 63});
  const int t = b.num_tokens();
  std::vector<float> src = random_values(t * width, 1.0f, 15);
  Tensor cache = g.gpu_tensor(DType::BF16, {slots, width});
  g.gpu->fill_zero(cache);
  g.gpu->begin_forward(b);
  g.gpu->cache_write(b, g.gpu_bf16(src, {t, width}), cache);
  std::vector<float> got = g.read(cache), want(slots * width, 0.0f);
  for (int i = 0; i < t; ++i) std::copy_n(src.begin() + i * width, width, want.begin() + b.slots[i] * width);
  EXPECT_EQ(got, want);

  Tensor rows = g.gpu_tensor(DType::BF16, {3, width});
  g.gpu->gather_rows(cache, {63, 40, 63}, rows);
  std::vector<float> rows_want;
  for (int r : {63, 40, 63}) rows_want.insert(rows_want.end(), want.begin() + r * width, want.begin() + (r + 1) * width);
  EXPECT_EQ(g.read(rows), rows_want);

  Tensor cols = g.gpu_tensor(DType::BF16, {3, 1, 10});
  g.gpu->fill_zero(cols);
  g.gpu->copy_columns(rows, 5, cols, 2, 7);
  std::vector<float> cols_got = g.read(cols);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 10; ++c)
      EXPECT_EQ(cols_got[r * 10 + c], c >= 2 && c < 9 ? rows_want[r * width + 5 + c - 2] : 0.0f) << r << "," << c;
}

// What MLA's expanded prefill moves: each sequence's cache rows packed back to back (shuffled
// pages), and columns copied into rows repeated per head (16-byte and 2-byte units).
TEST(GpuOps, GatherContextAndRepeatedCopyColumnsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const std::vector<SeqSpec> specs = {{0, 40}, {37, 20}, {3, 1}};
  const int blocks = blocks_needed(specs, 16), slots = blocks * 16, width = 72;
  ForwardBatch b = paged_batch(specs, blocks, 5, 16);
  const int c = static_cast<int>(b.context_starts().back());
  std::vector<float> cache = random_values(slots * width, 1.0f, 16), want(c * width);
  g.cpu->gather_context(b, host_view(cache, {slots, width}), host_view(want, {c, width}));
  g.gpu->begin_forward(b);
  Tensor rows = g.gpu_tensor(DType::BF16, {c, width});
  g.gpu->gather_context(b, g.gpu_bf16(cache, {slots, width}), rows);
  EXPECT_EQ(g.read(rows), want);

  for (const auto& [off, n] : std::vector<std::pair<int, int>>{{64, 8}, {3, 5}}) {
    const int heads = 3, dst_w = 20;
    std::vector<float> dst_want(c * heads * dst_w, 0.0f);
    g.cpu->copy_columns(host_view(want, {c, width}), off, host_view(dst_want, {c * heads, dst_w}), 8, n);
    Tensor dst = g.gpu_tensor(DType::BF16, {c * heads, dst_w});
    g.gpu->fill_zero(dst);
    g.gpu->copy_columns(rows, off, dst, 8, n);
    EXPECT_EQ(g.read(dst), dst_want) << n << " columns from " << off;
  }
}

TEST(GpuOps, HeadMatmulBothDirections) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int t = 5, heads = 3, n = 8, k = 16;
  std::vector<float> w = random_values(heads * n * k, 0.5f, 16);
  Tensor gw = g.gpu_bf16(w, {heads, n, k});  // as the model uploads them: the activation dtype
  for (bool transpose : {false, true}) {
    const int in = transpose ? n : k, out_dim = transpose ? k : n;
    std::vector<float> x = random_values(t * heads * in, 1.0f, 17), want(t * heads * out_dim);
    g.cpu->head_matmul(host_view(x, {t, heads, in}), host_view(w, {heads, n, k}), transpose,
                       host_view(want, {t, heads, out_dim}));
    Tensor out = g.gpu_tensor(DType::BF16, {t, heads, out_dim});
    g.gpu->head_matmul(g.gpu_bf16(x, {t, heads, in}), gw, transpose, out);
    expect_close(g.read(out), want, 1e-2f, transpose ? "head_matmul transposed" : "head_matmul");
  }
}

TEST(GpuOps, ErrorsNameTheOp) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  Tensor a = g.gpu_tensor(DType::BF16, {4, 8}), b = g.gpu_tensor(DType::F32, {4, 8});
  try {
    g.gpu->add(a, b);
    FAIL() << "add of bf16 and f32 did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add"), std::string::npos) << e.what();
  }
  ForwardBatch other = scattered_batch({0});
  EXPECT_THROW(g.gpu->cache_write(other, a, a), Error);  // begin_forward was never called with it
}

// The fused residual add + norm, on rows that take the 16-byte paths (h % 8 == 0: a word per
// thread up to 8192 values, several past that) and rows that do not, with bf16 and f32 norm
// weights: both the updated residual and the normed output.
TEST(GpuOps, AddRmsnormOnWordAndElementPaths) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int rows = 3;
  for (int h : {300, 3584, 8200})
    for (DType dt : {DType::BF16, DType::F32}) {
      std::vector<float> x = random_values(rows * h, 3.0f, 11), y = random_values(rows * h, 3.0f, 12);
      HostWeight w(random_values(h, 1.5f, 13), {h}, dt);
      std::vector<float> want_x = x, want(x.size());
      g.cpu->add_rmsnorm(host_view(want_x, {rows, h}), host_view(y, {rows, h}), w.weight, 1e-6f, host_view(want, {rows, h}));
      Tensor gx = g.gpu_bf16(x, {rows, h}), gy = g.gpu_bf16(y, {rows, h}), out = g.gpu_tensor(DType::BF16, {rows, h});
      g.gpu->add_rmsnorm(gx, gy, g.gpu->upload_weight(w.weight, g.keep), 1e-6f, out);
      const std::string what = "add_rmsnorm h=" + std::to_string(h) + " " + dtype_name(dt);
      expect_close(g.read(gx), want_x, 1e-2f, what + ": residual");
      expect_close(g.read(out), want, 1e-2f, what + ": output");
      Tensor in_place = g.gpu_bf16(want_x, {rows, h});
      g.gpu->rmsnorm(in_place, g.gpu->upload_weight(w.weight, g.keep), 1e-6f, in_place);
      expect_close(g.read(in_place), want, 1e-2f, "rmsnorm in place h=" + std::to_string(h) + " " + dtype_name(dt));
    }
}

// Products of one input in one skinny launch (1-4 rows) against the CPU, with and without
// biases, to bf16 and f32; 5 rows take the GEMM path and must agree too.
TEST(GpuOps, LinearManySharesOneLaunchForFewRows) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int k = 136;
  const std::vector<int> ns = {96, 32, 40};
  std::vector<HostWeight> ws, bs;
  for (size_t i = 0; i < ns.size(); ++i) {
    ws.emplace_back(random_values(ns[i] * k, 0.2f, 20 + i), Shape{ns[i], k}, DType::BF16);
    bs.emplace_back(random_values(ns[i], 1.0f, 30 + i), Shape{ns[i]}, DType::BF16);
  }
  std::vector<Weight> gw, gb;
  for (size_t i = 0; i < ns.size(); ++i) {
    gw.push_back(g.gpu->upload_weight(ws[i].weight, g.keep));
    gb.push_back(g.gpu->upload_weight(bs[i].weight, g.keep));
  }
  check_linear_many(g, ws, bs, gw, gb, k, {1, 3, 4, 5}, 40, "linear_many");
}

// 3-4 tokens take the tensor-core skinny kernel (gemv_mma.cu; 2 the CUDA-core one, checked the
// same way): several products in one launch, row counts that leave a warp's 8 rows partly
// empty, biases, bf16 and f32 outputs, K shorter than one staged chunk of 256, K not a multiple
// of 32 (a zero-filled tail), K of 16 chunks (rows split over warps).
TEST(GpuOps, SkinnyProductOnTensorCoresForThreeAndFourTokens) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const std::vector<int> ns = {300, 13, 40};
  for (int k : {64, 200, 4096}) {
    std::vector<HostWeight> ws, bs;
    std::vector<Weight> gw, gb;
    for (size_t i = 0; i < ns.size(); ++i) {
      ws.emplace_back(random_values(ns[i] * k, 0.1f, 800 + k % 91 + i), Shape{ns[i], k}, DType::BF16);
      bs.emplace_back(random_values(ns[i], 1.0f, 810 + i), Shape{ns[i]}, DType::BF16);
      gw.push_back(g.gpu->upload_weight(ws[i].weight, g.keep));
      gb.push_back(g.gpu->upload_weight(bs[i].weight, g.keep));
    }
    check_linear_many(g, ws, bs, gw, gb, k, {2, 3, 4}, 820, "k=" + std::to_string(k));
  }
}

// Weights uploaded together lie back to back, and linear_many then runs them as one product at
// any row count (GEMM sizes here); with and without biases, against the CPU.
TEST(GpuOps, AdjacentWeightsShareOneProduct) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int k = 96;
  const std::vector<int> ns = {64, 32, 32};
  std::vector<HostWeight> ws, bs;
  std::vector<Weight> hw, hb;
  for (size_t i = 0; i < ns.size(); ++i) {
    ws.emplace_back(random_values(ns[i] * k, 0.2f, 50 + i), Shape{ns[i], k}, DType::BF16);
    bs.emplace_back(random_values(ns[i], 1.0f, 60 + i), Shape{ns[i]}, DType::BF16);
    hw.push_back(ws[i].weight);
    hb.push_back(bs[i].weight);
  }
  const std::vector<Weight> gw = g.gpu->upload_weights(hw, g.keep), gb = g.gpu->upload_weights(hb, g.keep);
  for (size_t i = 1; i < ns.size(); ++i) {
    EXPECT_EQ(static_cast<const char*>(gw[i - 1].w.data) + gw[i - 1].w.nbytes(), gw[i].w.data) << "weight " << i;
    EXPECT_EQ(static_cast<const char*>(gb[i - 1].w.data) + gb[i - 1].w.nbytes(), gb[i].w.data) << "bias " << i;
  }
  for (int m : {5, 17, 64})
    for (bool biased : {true, false}) {
      std::vector<float> x = random_values(m * k, 1.0f, 70 + m);
      std::vector<std::vector<float>> want(ns.size());
      std::vector<LinearOut> cpu_outs, gpu_outs;
      for (size_t i = 0; i < ns.size(); ++i) {
        want[i].resize(m * ns[i]);
        cpu_outs.push_back({&ws[i].weight, biased ? &bs[i].weight : nullptr, host_view(want[i], {m, ns[i]})});
        gpu_outs.push_back({&gw[i], biased ? &gb[i] : nullptr, g.gpu_tensor(DType::BF16, {m, ns[i]})});
      }
      g.cpu->linear_many(host_view(x, {m, k}), cpu_outs);
      g.gpu->linear_many(g.gpu_bf16(x, {m, k}), gpu_outs);
      for (size_t i = 0; i < ns.size(); ++i)
        expect_close(g.read(gpu_outs[i].out), want[i], 1e-2f,
                     "adjacent m=" + std::to_string(m) + (biased ? " biased" : "") + " product " + std::to_string(i));
    }
}

namespace {

// linear of an n x k bf16 weight (values of `scale`, seed w_seed) at each of `ms` tokens (seeds
// x_seed + m), the GPU against the CPU.
void check_skinny(GpuTest& g, int n, int k, float scale, uint32_t w_seed, uint32_t x_seed,
                  std::initializer_list<int> ms, const std::string& what) {
  HostWeight w(random_values(int64_t{n} * k, scale, w_seed), Shape{n, k}, DType::BF16);
  const Weight gw = g.gpu->upload_weight(w.weight, g.keep);
  for (int m : ms) {
    std::vector<float> x = random_values(m * k, 1.0f, x_seed + m), want(m * n);
    g.cpu->linear(host_view(x, {m, k}), w.weight, nullptr, host_view(want, {m, n}));
    Tensor out = g.gpu_tensor(DType::F32, {m, n});
    g.gpu->linear(g.gpu_bf16(x, {m, k}), gw, nullptr, out);
    expect_close(g.read(out), want, 1e-3f, what + " m=" + std::to_string(m));
  }
}

}  // namespace

// Long rows split over 2 or 4 warps each (few rows, K of 8192 and of 8200, whose 16-byte pieces
// do not divide evenly among the parts) against the CPU.
TEST(GpuOps, SkinnyProductSplitsLongRows) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  for (int k : {8192, 8200, 4096})
    check_skinny(g, 50, k, 0.05f, 700 + k % 97, 710, {1, 2, 4}, "split rows k=" + std::to_string(k));
}

// A skinny product whose blocks all fit on the GPU at once stages its rows in shared memory; one
// of more blocks (20000 rows) streams them through registers. Both against the CPU.
TEST(GpuOps, SkinnyProductStagedAndStreamed) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  for (int n : {300, 20000}) check_skinny(g, n, 264, 0.1f, 720 + n % 89, 730, {1, 3}, "skinny n=" + std::to_string(n));
}

// Rows of exactly 48 KB a block to stage, which with the kernel's static partial sums pass the
// default shared-memory limit, so the launcher must not stage them without opting in: 64 rows
// of k 24576 in 4 warps a row (few enough blocks to stage), and DeepSeek-V2's dense down_proj
// (5120 rows of k 12288 in 2 warps a row on 132 SMs). Against the CPU.
TEST(GpuOps, SkinnyProductAtTheSharedMemoryLimit) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  for (const auto& [n, k] : {std::pair{64, 24576}, std::pair{5120, 12288}})
    check_skinny(g, n, k, 0.05f, 740, 750, {1, 2}, "48 KB rows n=" + std::to_string(n));
}

// linear_silu_mul against linear_many + silu_mul, bit for bit, and the CPU: at 1-2 tokens one
// launch for short rows (staged: 301 rows, an odd count; streamed: 20000) and the two ops for
// long rows that a launch would split over warps (50 rows of 4096); at 4 tokens the tensor-core
// products and the SiLU launch; cuBLASLt's path for 9 tokens.
TEST(GpuOps, LinearSiluMulInOneLaunchEqualsTheOpsInSequence) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  for (auto [n, k] : {std::pair{301, 264}, std::pair{20000, 264}, std::pair{50, 4096}}) {
    HostWeight gate(random_values(n * k, 0.1f, 740 + n % 83), Shape{n, k}, DType::BF16);
    HostWeight up(random_values(n * k, 0.1f, 750 + n % 79), Shape{n, k}, DType::BF16);
    const Weight gg = g.gpu->upload_weight(gate.weight, g.keep), gu = g.gpu->upload_weight(up.weight, g.keep);
    for (int m : {1, 2, 4, 9}) {
      std::vector<float> x = random_values(m * k, 1.0f, 760 + m), want(m * n), cu(m * n);
      g.cpu->linear(host_view(x, {m, k}), gate.weight, nullptr, host_view(want, {m, n}));
      g.cpu->linear(host_view(x, {m, k}), up.weight, nullptr, host_view(cu, {m, n}));
      g.cpu->silu_mul(host_view(want, {m, n}), host_view(cu, {m, n}), host_view(want, {m, n}));
      Tensor gx = g.gpu_bf16(x, {m, k});
      Tensor act = g.gpu_tensor(DType::BF16, {m, n}), up_out = g.gpu_tensor(DType::BF16, {m, n});
      Tensor seq = g.gpu_tensor(DType::BF16, {m, n}), seq_up = g.gpu_tensor(DType::BF16, {m, n});
      g.gpu->linear_silu_mul(gx, gg, gu, act, up_out);
      g.gpu->linear_many(gx, {{&gg, nullptr, seq}, {&gu, nullptr, seq_up}});
      g.gpu->silu_mul(seq, seq_up, seq);
      const std::string at = " n=" + std::to_string(n) + " k=" + std::to_string(k) + " m=" + std::to_string(m);
      EXPECT_EQ(g.read(act), g.read(seq)) << "one launch vs the ops" << at;
      expect_close(g.read(act), want, 2e-2f, "linear_silu_mul vs cpu" + at);
    }
  }
}

// Up to 4 tokens take the skinny per-head kernels (both directions), the larger shape MLA's
// absorbed products at V2-Lite's sizes.
TEST(GpuOps, HeadMatmulSkinnyBothDirections) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  struct Case { int t, heads, n, k; };
  for (const Case c : {Case{1, 3, 24, 40}, Case{4, 3, 24, 40}, Case{2, 5, 37, 264}, Case{1, 16, 128, 512}}) {
    std::vector<float> w = random_values(c.heads * c.n * c.k, 0.5f, 160 + c.t);
    Tensor gw = g.gpu_bf16(w, {c.heads, c.n, c.k});
    for (bool transpose : {false, true}) {
      const int in = transpose ? c.n : c.k, out_dim = transpose ? c.k : c.n;
      std::vector<float> x = random_values(c.t * c.heads * in, 1.0f, 170 + c.k), want(c.t * c.heads * out_dim);
      g.cpu->head_matmul(host_view(x, {c.t, c.heads, in}), host_view(w, {c.heads, c.n, c.k}), transpose,
                         host_view(want, {c.t, c.heads, out_dim}));
      Tensor out = g.gpu_tensor(DType::BF16, {c.t, c.heads, out_dim});
      g.gpu->head_matmul(g.gpu_bf16(x, {c.t, c.heads, in}), gw, transpose, out);
      expect_close(g.read(out), want, 1e-2f,
                   std::string(transpose ? "head_matmul transposed" : "head_matmul") + " t=" + std::to_string(c.t) +
                       " " + std::to_string(c.heads) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k));
    }
  }
}

// Greedy sampling's argmax on the device: rows on the 16-byte path (width % 4 == 0) and not,
// with the row's maximum planted twice so that the first index must win the tie; a row with a
// NaN gives -1.
TEST(GpuOps, ArgmaxRowsTakesTheFirstOfTiedMaximaAndRefusesNan) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int rows = 3;
  for (int cols : {1001, 152064}) {
    std::vector<float> x = random_values(static_cast<size_t>(rows) * cols, 5.0f, 50);
    for (int r = 0; r < rows; ++r) {
      const int first = (r * 7919 + 11) % cols, second = (first + cols / 2 + r) % cols;
      x[static_cast<size_t>(r) * cols + std::max(first, second)] = 9.0f;
      x[static_cast<size_t>(r) * cols + std::min(first, second)] = 9.0f;
    }
    x[static_cast<size_t>(rows - 1) * cols + cols / 3] = NAN;  // the last row: no token is right
    std::vector<int> want(rows), got(rows);
    g.cpu->argmax_rows(host_view(x, {rows, cols}), host_view(want, {rows}));
    Tensor ids = g.gpu_tensor(DType::I32, {rows});
    g.gpu->argmax_rows(g.gpu_f32(x, {rows, cols}), ids);
    g.gpu->copy_to_host(ids, got.data());
    EXPECT_EQ(got, want) << "width " << cols;
    EXPECT_EQ(got[rows - 1], -1) << "width " << cols;
  }
}

// GQA's fused rope + cache writes against the CPU's rope and cache_write, both rope styles; the
// token at slot -1 (a padding token of a recorded batch) is rotated but written nowhere.
TEST(GpuOps, RopeAndCacheEqualsRopeThenCacheWrites) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int t = 3, hq = 6, hk = 2, d = 64, slots = 8;
  const ForwardBatch b = three_token_batch();
  std::vector<float> inv = rope_frequencies(d);
  for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
    std::vector<float> q = random_values(t * hq * d, 1.0f, 60), k = random_values(t * hk * d, 1.0f, 61),
                       v = random_values(t * hk * d, 1.0f, 62);
    std::vector<float> kc(slots * hk * d, 0.0f), vc(slots * hk * d, 0.0f);
    RopeParams cpu_p{host_view(inv, {d / 2}), 1.25f, style};
    std::vector<float> wq = q, wk = k;
    g.cpu->rope_and_cache(b, host_view(wq, {t, hq, d}), host_view(wk, {t, hk, d}), host_view(v, {t, hk, d}),
                          KvLayer{host_view(kc, {slots, hk * d}), host_view(vc, {slots, hk * d})}, cpu_p);
    Tensor gq = g.gpu_bf16(q, {t, hq, d}), gk = g.gpu_bf16(k, {t, hk, d}), gv = g.gpu_bf16(v, {t, hk, d});
    KvLayer gkv{g.gpu_bf16(std::vector<float>(slots * hk * d, 0.0f), {slots, hk * d}),
                g.gpu_bf16(std::vector<float>(slots * hk * d, 0.0f), {slots, hk * d})};
    g.gpu->begin_forward(b);
    g.gpu->rope_and_cache(b, gq, gk, gv, gkv, RopeParams{g.gpu_f32(inv, {d / 2}), 1.25f, style});
    const std::string what = style == RopeStyle::Neox ? "neox" : "interleaved";
    expect_close(g.read(gq), wq, 1e-2f, what + ": q");
    expect_close(g.read(gk), wk, 1e-2f, what + ": k");
    expect_close(g.read(gkv.k), kc, 1e-2f, what + ": k cache");
    expect_close(g.read(gkv.v), vc, 1e-2f, what + ": v cache");
  }
}

// The fused MLA step equals what the model did before it, op by op on the CPU: rope on q's rope
// part, the split of q, rmsnorm of the latent, rope of the key part, the cache write.
TEST(GpuOps, MlaRopeAndCacheEqualsTheOpsItReplaces) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int t = 3, heads = 5, nope = 32, rope = 16, lora = 48, width = lora + rope, slots = 8;
  const ForwardBatch b = three_token_batch();
  std::vector<float> inv = rope_frequencies(rope);
  HostWeight norm(random_values(lora, 1.5f, 70), {lora}, DType::BF16);
  for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
    const std::vector<float> q = random_values(t * heads * (nope + rope), 1.0f, 71),
                             kv = random_values(t * width, 2.0f, 72);
    const RopeParams cpu_p{host_view(inv, {rope / 2}), 1.25f, style};
    std::vector<float> wq = q, wkv = kv, latent(t * lora), cache(slots * width, 0.0f);
    g.cpu->rope(b, host_view(wq, {t, heads, nope + rope}), nope, rope, cpu_p);
    std::vector<float> want_nope(t * heads * nope), want_rope(t * heads * rope);
    g.cpu->copy_columns(host_view(wq, {t * heads, nope + rope}), 0, host_view(want_nope, {t * heads, nope}), 0, nope);
    g.cpu->copy_columns(host_view(wq, {t * heads, nope + rope}), nope, host_view(want_rope, {t * heads, rope}), 0,
                        rope);
    g.cpu->copy_columns(host_view(wkv, {t, width}), 0, host_view(latent, {t, lora}), 0, lora);
    g.cpu->rmsnorm(host_view(latent, {t, lora}), norm.weight, 1e-6f, host_view(latent, {t, lora}));
    g.cpu->copy_columns(host_view(latent, {t, lora}), 0, host_view(wkv, {t, width}), 0, lora);
    g.cpu->rope(b, host_view(wkv, {t, 1, width}), lora, rope, cpu_p);
    g.cpu->cache_write(b, host_view(wkv, {t, width}), host_view(cache, {slots, width}));

    Tensor gq_nope = g.gpu_tensor(DType::BF16, {t, heads, nope}), gq_rope = g.gpu_tensor(DType::BF16, {t, heads, rope});
    Tensor gcache = g.gpu_bf16(std::vector<float>(slots * width, 0.0f), {slots, width});
    g.gpu->begin_forward(b);
    g.gpu->mla_rope_and_cache(b, g.gpu_bf16(q, {t, heads, nope + rope}), g.gpu_bf16(kv, {t, width}),
                              g.gpu->upload_weight(norm.weight, g.keep), 1e-6f,
                              RopeParams{g.gpu_f32(inv, {rope / 2}), 1.25f, style}, gq_nope, gq_rope, gcache);
    const std::string what = style == RopeStyle::Neox ? "neox" : "interleaved";
    expect_close(g.read(gq_nope), want_nope, 1e-2f, what + ": q_nope");
    expect_close(g.read(gq_rope), want_rope, 1e-2f, what + ": q_rope");
    expect_close(g.read(gcache), cache, 2e-2f, what + ": latent cache");
  }
}

// The same into an FP8 latent cache (--kv-dtype fp8), V3's row, an odd one (a partial scale
// group, a row padded to 16 bytes) and one of ten groups (more than the row write's eight maxima
// at once), against the CPU's rows: every value within a step of its group's e4m3 grid (the GPU
// quantizes bf16 inputs), the rope key within bf16's rounding, the padding zeros, and a padding
// token (slot -1) written nowhere; dequantize_latent reads the rows back as the CPU does.
TEST(GpuOps, MlaRopeAndCacheIntoFp8Rows) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  for (const auto& [lora, rope] : {std::pair{512, 64}, std::pair{136, 8}, std::pair{1160, 8}}) {
    SCOPED_TRACE(::testing::Message() << "latent " << lora << " + rope " << rope);
    const int t = 3, heads = 2, nope = 16, width = lora + rope, slots = 8;
    const LatentFp8Layout l = latent_fp8_layout(lora, rope);
    const ForwardBatch b = three_token_batch();  // slots 6, -1 (a padding token) and 2
    std::vector<float> inv = rope_frequencies(rope);
    HostWeight norm(random_values(lora, 1.5f, 170), {lora}, DType::BF16);
    // bf16 inputs, so that both backends start from the same values.
    auto bf16_values = [](std::vector<float> v) {
      for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
      return v;
    };
    const std::vector<float> q = bf16_values(random_values(t * heads * (nope + rope), 1.0f, 171));
    const std::vector<float> kv = bf16_values(random_values(t * width, 2.0f, 172));
    std::vector<float> wq = q, wkv = kv, q_nope(t * heads * nope), q_rope(t * heads * rope);
    std::vector<uint8_t> want(slots * l.row_bytes, 0);
    const Tensor cpu_cache{DType::U8, {slots, l.row_bytes}, want.data(), {}};
    g.cpu->mla_rope_and_cache(b, host_view(wq, {t, heads, nope + rope}), host_view(wkv, {t, width}), norm.weight, 1e-6f,
                              RopeParams{host_view(inv, {rope / 2}), 1.25f, RopeStyle::Interleaved},
                              host_view(q_nope, {t, heads, nope}), host_view(q_rope, {t, heads, rope}), cpu_cache);
    Tensor gcache = g.gpu_tensor(DType::U8, {slots, l.row_bytes});
    g.gpu->copy_to_device(std::vector<uint8_t>(slots * l.row_bytes, 0).data(), gcache);
    g.gpu->begin_forward(b);
    g.gpu->mla_rope_and_cache(b, g.gpu_bf16(q, {t, heads, nope + rope}), g.gpu_bf16(kv, {t, width}),
                              g.gpu->upload_weight(norm.weight, g.keep), 1e-6f,
                              RopeParams{g.gpu_f32(inv, {rope / 2}), 1.25f, RopeStyle::Interleaved},
                              g.gpu_tensor(DType::BF16, {t, heads, nope}), g.gpu_tensor(DType::BF16, {t, heads, rope}),
                              gcache);
    std::vector<uint8_t> got(slots * l.row_bytes);
    g.gpu->copy_to_host(gcache, got.data());
    std::vector<float> a(width), e(width);
    for (int slot = 0; slot < slots; ++slot) {
      const uint8_t* gr = got.data() + slot * l.row_bytes;
      const uint8_t* wr = want.data() + slot * l.row_bytes;
      dequantize_latent_row(l, gr, a.data());
      dequantize_latent_row(l, wr, e.data());
      for (int c = 0; c < lora; ++c) {
        float scale;
        std::memcpy(&scale, wr + l.scale_offset + 4 * (c / kLatentFp8Group), 4);
        // e4m3's step near |v| is 2^(floor(log2 |v|) - 3); the groups' scales may differ by a rounding.
        const float step = std::max(std::exp2(std::floor(std::log2(std::fabs(e[c]) + 1e-30f)) - 3.0f), scale * 0x1p-9f);
        ASSERT_LE(std::fabs(a[c] - e[c]), 1.01f * step) << "slot " << slot << ", value " << c;
      }
      for (int i = 0; i < rope; ++i) ASSERT_NEAR(a[lora + i], e[lora + i], 1e-2f * (1.0f + std::fabs(e[lora + i])));
      for (int byte = l.rope_offset + 2 * rope; byte < l.row_bytes; ++byte) ASSERT_EQ(gr[byte], 0) << byte;
    }
    for (int slot = 0; slot < slots; ++slot)  // the padding token wrote nothing: only 2 and 6 hold rows
      for (int byte = 0; byte < l.row_bytes && slot != 2 && slot != 6; ++byte)
        ASSERT_EQ(got[slot * l.row_bytes + byte], 0) << "slot " << slot;
    std::vector<float> host_back(slots * width);
    g.cpu->dequantize_latent(Tensor{DType::U8, {slots, l.row_bytes}, got.data(), {}}, lora,
                             host_view(host_back, {slots, width}));
    Tensor back = g.gpu_tensor(DType::BF16, {slots, width});
    g.gpu->dequantize_latent(gcache, lora, back);
    expect_close(g.read(back), host_back, 1e-2f, "dequantize_latent");
  }
}

// The absorbed query in one launch (1-4 tokens, V2's head dims, a padding token among three)
// equals mla_rope_and_cache then the W_UK head product, bit for bit; 5 tokens run the two ops.
TEST(GpuOps, MlaRopeCacheAbsorbEqualsTheTwoOps) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int heads = 3, nope = 128, rope = 64, lora = 512, width = lora + rope, slots = 48;
  std::vector<float> inv = rope_frequencies(rope);
  HostWeight norm(random_values(lora, 1.5f, 80), {lora}, DType::BF16);
  const Weight gnorm = g.gpu->upload_weight(norm.weight, g.keep);
  const Tensor w_uk = g.gpu_bf16(random_values(heads * nope * lora, 0.1f, 81), {heads, nope, lora});
  const std::vector<int> positions = {3, 17, 0, 40, 9};
  for (int t : {1, 3, 4, 5})
    for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
      const ForwardBatch b = t == 3 ? three_token_batch() : scattered_batch({positions.begin(), positions.begin() + t});
      const Tensor q = g.gpu_bf16(random_values(t * heads * (nope + rope), 1.0f, 82 + t), {t, heads, nope + rope});
      const Tensor kv = g.gpu_bf16(random_values(t * width, 2.0f, 83 + t), {t, width});
      const RopeParams p{g.gpu_f32(inv, {rope / 2}), 1.25f, style};
      struct Outputs {
        Tensor q_nope, q_rope, q_lat, cache;
      };
      auto outputs = [&] {
        return Outputs{g.gpu_tensor(DType::BF16, {t, heads, nope}), g.gpu_tensor(DType::BF16, {t, heads, rope}),
                       g.gpu_tensor(DType::BF16, {t, heads, lora}),
                       g.gpu_bf16(std::vector<float>(slots * width, 0.0f), {slots, width})};
      };
      Outputs want = outputs(), got = outputs();
      g.gpu->begin_forward(b);
      g.gpu->Backend::mla_rope_cache_absorb(b, q, kv, gnorm, 1e-6f, p, w_uk, want.q_nope, want.q_rope, want.q_lat,
                                            want.cache);
      g.gpu->mla_rope_cache_absorb(b, q, kv, gnorm, 1e-6f, p, w_uk, got.q_nope, got.q_rope, got.q_lat, got.cache);
      const std::string what = std::to_string(t) + " tokens, " + (style == RopeStyle::Neox ? "neox" : "interleaved");
      EXPECT_EQ(g.read(got.q_rope), g.read(want.q_rope)) << what << ": q_rope";
      EXPECT_EQ(g.read(got.q_lat), g.read(want.q_lat)) << what << ": q_lat";
      EXPECT_EQ(g.read(got.cache), g.read(want.cache)) << what << ": latent cache";
    }
}

// A branch (begin/end/join_branch): a shared-expert-shaped MLP queued on the branch while a
// product of another input runs on the main line gives exactly the results of running both in
// line, and matches the CPU; at 40 rows the products leave the skinny kernel, so the branch
// returns to the main stream part-way and still gives the same results.
TEST(GpuOps, BranchEqualsInLine) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int k = 256, inter = 384, n2 = 200;
  HostWeight gate(random_values(inter * k, 0.1f, 901), Shape{inter, k}, DType::BF16);
  HostWeight up(random_values(inter * k, 0.1f, 902), Shape{inter, k}, DType::BF16);
  HostWeight down(random_values(k * inter, 0.1f, 903), Shape{k, inter}, DType::BF16);
  HostWeight other(random_values(n2 * k, 0.1f, 904), Shape{n2, k}, DType::BF16);
  const Weight gg = g.gpu->upload_weight(gate.weight, g.keep), gu = g.gpu->upload_weight(up.weight, g.keep),
               gd = g.gpu->upload_weight(down.weight, g.keep), go = g.gpu->upload_weight(other.weight, g.keep);
  for (int m : {1, 3, 40}) {
    std::vector<float> x = random_values(m * k, 1.0f, 910 + m), x2 = random_values(m * k, 1.0f, 920 + m);
    // CPU reference: mlp(x) and other(x2) + mlp(x).
    std::vector<float> cg(m * inter), cu(m * inter), cmlp(m * k), co(m * n2);
    g.cpu->linear(host_view(x, {m, k}), gate.weight, nullptr, host_view(cg, {m, inter}));
    g.cpu->linear(host_view(x, {m, k}), up.weight, nullptr, host_view(cu, {m, inter}));
    g.cpu->silu_mul(host_view(cg, {m, inter}), host_view(cu, {m, inter}), host_view(cg, {m, inter}));
    g.cpu->linear(host_view(cg, {m, inter}), down.weight, nullptr, host_view(cmlp, {m, k}));
    g.cpu->linear(host_view(x2, {m, k}), other.weight, nullptr, host_view(co, {m, n2}));
    std::vector<std::vector<float>> got[2];
    for (int branch = 0; branch < 2; ++branch) {
      Tensor gx = g.gpu_bf16(x, {m, k}), gx2 = g.gpu_bf16(x2, {m, k});
      Tensor tg = g.gpu_tensor(DType::BF16, {m, inter}), tu = g.gpu_tensor(DType::BF16, {m, inter});
      Tensor mlp = g.gpu_tensor(DType::BF16, {m, k}), o = g.gpu_tensor(DType::BF16, {m, n2});
      Tensor sum = g.gpu_tensor(DType::BF16, {m, k});
      g.gpu->synchronize();
      if (branch) g.gpu->begin_branch();
      g.gpu->linear_many(gx, {{&gg, nullptr, tg}, {&gu, nullptr, tu}});
      g.gpu->silu_mul(tg, tu, tg);
      g.gpu->linear(tg, gd, nullptr, mlp);
      if (branch) g.gpu->end_branch();
      g.gpu->linear(gx2, go, nullptr, o);
      g.gpu->copy_columns(gx, 0, sum, 0, k);
      if (branch) g.gpu->join_branch();
      g.gpu->add(sum, mlp);
      got[branch] = {g.read(mlp), g.read(o), g.read(sum)};
    }
    const std::string at = " m=" + std::to_string(m);
    EXPECT_EQ(got[0][0], got[1][0]) << "branch mlp" << at;
    EXPECT_EQ(got[0][1], got[1][1]) << "main-line product" << at;
    EXPECT_EQ(got[0][2], got[1][2]) << "sum after the join" << at;
    expect_close(got[1][0], cmlp, 2e-2f, "branch mlp vs cpu" + at);
    expect_close(got[1][1], co, 2e-2f, "main-line product vs cpu" + at);
  }
  // Branches do not nest, and an ended branch must be joined before the next one.
  g.gpu->begin_branch();
  EXPECT_THROW(g.gpu->begin_branch(), std::exception);
  g.gpu->end_branch();
  g.gpu->join_branch();
  g.gpu->synchronize();
}

// The copy rate `dsinfer bench` divides its decode bytes by, measured through the backend's ops,
// is the rate a flat cudaMemcpy reaches (a pitched copy of many rows once gave 40 % of it).
TEST(GpuOps, BackendCopyBandwidthMatchesCudaMemcpy) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const double backend = measure_copy_bandwidth(*g.gpu), memcpy = copy_bandwidth(g);
  std::printf("copy bandwidth through the backend %.0f GB/s, cudaMemcpy %.0f GB/s\n", backend / 1e9, memcpy / 1e9);
  EXPECT_GT(backend, 0.85 * memcpy);
  EXPECT_LT(backend, 1.15 * memcpy);
}
