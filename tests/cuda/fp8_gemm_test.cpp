// The block-scaled FP8 linear on Hopper (DeepSeek's recipe) against the CPU backend on the same
// FP8 weights: the activation quantizer byte for byte against the host quantizer, the product
// against the CPU run on the quantized activations (only bf16 output rounding apart), and against
// the CPU run on the original activations within the error e4m3 activations imply. Shapes with
// partial 128-blocks must take the dequantizing fallback.
//
// The bound: a group of 128 activations is stored as e4m3(x / s) * s with s = amax / 448. e4m3
// keeps 3 mantissa bits, so rounding a normal value costs at most half an ulp, 2^-4 of |x|; values
// below e4m3's smallest normal 2^-6 (in units of s) lose at most half the subnormal step,
// 2^-10 s. The weights are FP8 on both sides and products accumulate in float32, so output i of
// the GPU differs from the CPU by at most
//   sum_k (2^-4 |x_k| + 2^-10 s_group(k)) |w_ik|  +  2^-8 |out_i|   (bf16 output rounding, margin)
// This per-element bound is what the test asserts. On random data the errors are independent
// and of random sign, so they mostly cancel: observed rms error / rms output is printed (~2-3 %).
#include <cmath>
#include <cstdio>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_fp8.h"
#include "backend/cuda/gemv_fp8.h"
#include "backend/cuda/kernels.h"
#include "core/fp8_blocks.h"
#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kGroup = 128;

// An FP8 e4m3 weight [n, k] with block x block scales made by the repo's quantizer, from random
// values whose magnitude varies by block (so the scales differ).
struct Fp8Weight {
  Fp8Blocks q;
  Weight weight;
  std::vector<float> dequant;  // fp8 * scale, [n, k]

  Fp8Weight(int64_t n, int64_t k, int block, uint32_t seed) {
    std::vector<float> w = random_values(n * k, 0.05f, seed);
    for (int64_t i = 0; i < n * k; ++i) w[i] *= 1.0f + static_cast<float>((i / k / block * 3 + i % k / block) % 7);
    q = quantize_fp8_blocks(w.data(), n, k, block, block);
    weight.w = Tensor{DType::F8_E4M3, Shape{n, k}, q.values.data(), {}};
    weight.scale = Tensor{DType::F32, {(n + block - 1) / block, (k + block - 1) / block}, q.scales.data(), {}};
    weight.block_rows = weight.block_cols = block;
    dequant.resize(n * k);
    for (int64_t r = 0; r < n; ++r) weight_row_to_f32(weight, r, dequant.data() + r * k);
  }
};

// Random activations with what the recipe must handle: a token of zeros, a group of zeros, and
// an outlier that coarsens its own group only.
std::vector<float> activations(int64_t m, int64_t k, uint32_t seed) {
  std::vector<float> x = random_values(m * k, 1.0f, seed);
  if (m > 2) std::fill(x.begin() + k, x.begin() + 2 * k, 0.0f);
  std::fill(x.begin(), x.begin() + std::min<int64_t>(k, kGroup), 0.0f);
  x[m * k - 1] = 60.0f;
  return x;
}

// The host's copy of the GPU's activation recipe: the repo's block quantizer with 1 x 128 blocks.
struct HostActs {
  Fp8Blocks q;                 // values [m, k], scales [m, k / 128]
  std::vector<float> dequant;  // e4m3 * scale, [m, k]
};

HostActs quantize_acts(const std::vector<float>& x, int64_t m, int64_t k) {
  HostActs a;
  a.q = quantize_fp8_blocks(x.data(), m, k, 1, kGroup);
  a.dequant.resize(m * k);
  for (int64_t i = 0; i < m * k; ++i) a.dequant[i] = fp8e4m3_to_f32(a.q.values[i]) * a.q.scales[i / kGroup];
  return a;
}

cuda::CudaBackend& cuda_backend(GpuTest& g) { return dynamic_cast<cuda::CudaBackend&>(*g.gpu); }

bool block_scaling_here() { return cuda::fp8_block_scaling_enabled(0); }

struct Mnk {
  int64_t m, n, k;
};

std::string name(const Mnk& s) {
  return "M=" + std::to_string(s.m) + " N=" + std::to_string(s.n) + " K=" + std::to_string(s.k);
}

// The GPU's linear on x (bf16) with the FP8 weight, as float.
std::vector<float> gpu_linear(GpuTest& g, const std::vector<float>& x, const Fp8Weight& w, const Mnk& s, DType out_dtype,
                              const Weight* bias = nullptr) {
  Tensor out = g.gpu_tensor(out_dtype, {s.m, s.n});
  g.gpu->linear(g.gpu_bf16(x, {s.m, s.k}), g.gpu->upload_weight(w.weight, g.keep), bias, out);
  return g.read(out);
}

std::vector<float> cpu_linear(GpuTest& g, std::vector<float> x, const Fp8Weight& w, const Mnk& s) {
  std::vector<float> out(s.m * s.n);
  g.cpu->linear(host_view(x, {s.m, s.k}), w.weight, nullptr, host_view(out, {s.m, s.n}));
  return out;
}

}  // namespace

TEST(GpuFp8Gemm, QuantizerMatchesTheHostRecipe) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int64_t m = 7, m_pad = 16, k = 512, groups = k / kGroup;  // tokens 7..15 are padding
  std::vector<float> x = activations(m, k, 1);
  for (int64_t i = 3 * k + 128; i < 3 * k + 256; ++i) x[i] = 0.0f;
  x[3 * k + 200] = bf16_to_f32(f32_to_bf16(1e-30f));  // a group whose scale is tiny but not zero
  const HostActs want = quantize_acts(x, m, k);
  Tensor xg = g.gpu_bf16(x, {m, k});
  Tensor q = g.gpu_tensor(DType::U8, {m_pad, k});
  Tensor scales = g.gpu_tensor(DType::F32, {groups, m_pad});
  cuda::launch_quantize_fp8_act(xg.ptr<cuda::bf16>(), m, m_pad, k, q.ptr<uint8_t>(), scales.ptr<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint8_t> got_q(m_pad * k);
  std::vector<float> got_s(groups * m_pad);
  g.gpu->copy_to_host(q, got_q.data());
  g.gpu->copy_to_host(scales, got_s.data());
  for (int64_t t = 0; t < m_pad; ++t)
    for (int64_t grp = 0; grp < groups; ++grp)
      EXPECT_EQ(got_s[grp * m_pad + t], t < m ? want.q.scales[t * groups + grp] : 1.0f)
          << "scale of token " << t << " group " << grp;
  int64_t differ = 0, padding_nonzero = 0;
  for (int64_t i = 0; i < m * k; ++i) differ += got_q[i] != want.q.values[i];
  for (int64_t i = m * k; i < m_pad * k; ++i) padding_nonzero += got_q[i] != 0;
  EXPECT_EQ(differ, 0) << "e4m3 bytes differing from the host quantizer";
  EXPECT_EQ(padding_nonzero, 0) << "padding tokens that are not zero";
}

TEST(GpuFp8Gemm, NativeProductEqualsTheRecipeOnTheCpu) {
  SKIP_WITHOUT_GPU();
  if (!block_scaling_here()) GTEST_SKIP() << "no cuBLASLt block-scaled FP8 on this GPU";
  GpuTest g;
  // V3-like shapes scaled down (q_b_proj 24576x1536, expert down 7168x2048 at its real size),
  // K/128 not a multiple of 4, and token counts that are not multiples of 16: all padded (small
  // M), or a direct product plus a padded tail (M = 333; M = 130 with f32 out). 1-4 tokens take
  // the skinny FP8 kernel (SkinnyProductForOneToFourTokens).
  const Mnk shapes[] = {{6, 256, 384},     {5, 512, 1024},   {33, 3072, 1536}, {16, 7168, 2048},
                        {130, 1024, 640}, {333, 512, 256}, {64, 256, 1024}};
  uint32_t seed = 10;
  for (const Mnk& s : shapes) {
    Fp8Weight w(s.n, s.k, kGroup, seed++);
    const std::vector<float> x = activations(s.m, s.k, seed++);
    const std::vector<float> want = cpu_linear(g, quantize_acts(x, s.m, s.k).dequant, w, s);
    const int64_t before = cuda_backend(g).fp8_linear_stats().native;
    expect_close(gpu_linear(g, x, w, s, DType::BF16), want, 5e-3f, "bf16 out, " + name(s));
    expect_close(gpu_linear(g, x, w, s, DType::F32), want, 1e-3f, "f32 out, " + name(s));
    EXPECT_EQ(cuda_backend(g).fp8_linear_stats().native - before, 2) << name(s) << " did not take the FP8 path";
  }
}

TEST(GpuFp8Gemm, WithinTheActivationQuantizationBound) {
  SKIP_WITHOUT_GPU();
  if (!block_scaling_here()) GTEST_SKIP() << "no cuBLASLt block-scaled FP8 on this GPU";
  GpuTest g;
  const Mnk shapes[] = {{32, 7168, 2048}, {48, 3072, 1536}, {7, 1024, 7168}};
  uint32_t seed = 40;
  for (const Mnk& s : shapes) {
    Fp8Weight w(s.n, s.k, kGroup, seed++);
    const std::vector<float> x = activations(s.m, s.k, seed++);
    const HostActs qa = quantize_acts(x, s.m, s.k);
    const std::vector<float> want = cpu_linear(g, x, w, s);
    const int64_t before = cuda_backend(g).fp8_linear_stats().native;
    const std::vector<float> got = gpu_linear(g, x, w, s, DType::BF16);
    EXPECT_EQ(cuda_backend(g).fp8_linear_stats().native - before, 1) << name(s) << " did not take the FP8 path";
    std::vector<double> per_x(s.m * s.k), abs_w(s.n * s.k);  // the bound's factors
    for (int64_t i = 0; i < s.m * s.k; ++i)
      per_x[i] = std::ldexp(std::fabs(x[i]), -4) + std::ldexp(qa.q.scales[i / kGroup], -10);
    for (int64_t i = 0; i < s.n * s.k; ++i) abs_w[i] = std::fabs(w.dequant[i]);
    double err2 = 0, ref2 = 0;
    int64_t over = 0, worst = 0;
    double worst_ratio = 0;
    for (int64_t t = 0; t < s.m; ++t)
      for (int64_t n = 0; n < s.n; ++n) {
        double bound = 0;
        for (int64_t c = 0; c < s.k; ++c) bound += per_x[t * s.k + c] * abs_w[n * s.k + c];
        const int64_t i = t * s.n + n;
        bound += std::ldexp(std::fabs(want[i]), -8) + 1e-6;
        const double err = std::fabs(got[i] - want[i]);
        ASSERT_FALSE(std::isnan(got[i])) << name(s) << " NaN at " << i;
        over += err > bound;
        if (err / bound > worst_ratio) worst_ratio = err / bound, worst = i;
        err2 += err * err;
        ref2 += static_cast<double>(want[i]) * want[i];
      }
    EXPECT_EQ(over, 0) << name(s) << ": outputs beyond the bound; worst at " << worst << " (got " << got[worst]
                       << ", want " << want[worst] << ", error / bound " << worst_ratio << ")";
    std::printf("[ fp8 error ] %s: rms error / rms output %.4f, largest error / bound %.3f\n", name(s).c_str(),
                std::sqrt(err2 / ref2), worst_ratio);
  }
}

TEST(GpuFp8Gemm, BiasIsAddedOnTheNativePath) {
  SKIP_WITHOUT_GPU();
  if (!block_scaling_here()) GTEST_SKIP() << "no cuBLASLt block-scaled FP8 on this GPU";
  GpuTest g;
  const Mnk s{9, 256, 256};
  Fp8Weight w(s.n, s.k, kGroup, 70);
  const std::vector<float> x = activations(s.m, s.k, 71);
  std::vector<float> want = cpu_linear(g, quantize_acts(x, s.m, s.k).dequant, w, s);
  HostWeight bias(random_values(s.n, 1.0f, 72), {s.n}, DType::BF16);
  for (int64_t i = 0; i < s.m * s.n; ++i) want[i] += bf16_to_f32(bias.half[i % s.n]);
  const Weight b = g.gpu->upload_weight(bias.weight, g.keep);
  expect_close(gpu_linear(g, x, w, s, DType::BF16, &b), want, 5e-3f, "bf16 out with bias");
  expect_close(gpu_linear(g, x, w, s, DType::F32, &b), want, 1e-3f, "f32 out with bias");
}

TEST(GpuFp8Gemm, PartialOrSmallBlocksTakeTheDequantizingFallback) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  struct Case {
    Mnk s;
    int block;
  };
  // N or K not a multiple of 128 (DeepSeek's kv_a_proj_with_mqa is 576 x 7168), or blocks != 128.
  const Case cases[] = {{{6, 576, 512}, 128}, {{6, 256, 200}, 128}, {{6, 256, 256}, 64}};
  uint32_t seed = 80;
  for (const Case& c : cases) {
    Fp8Weight w(c.s.n, c.s.k, c.block, seed++);
    const std::vector<float> x = activations(c.s.m, c.s.k, seed++);
    const int64_t before = cuda_backend(g).fp8_linear_stats().dequantized;
    // The fallback multiplies bf16 activations by the bf16-rounded dequantized weight.
    expect_close(gpu_linear(g, x, w, c.s, DType::F32), cpu_linear(g, x, w, c.s), 1e-2f,
                 "fallback " + name(c.s) + " block " + std::to_string(c.block));
    EXPECT_EQ(cuda_backend(g).fp8_linear_stats().dequantized - before, 1) << name(c.s) << " did not fall back";
  }
  EXPECT_FALSE(cuda::fp8_block_shape_supported(576, 7168, 128, 128));
  EXPECT_FALSE(cuda::fp8_block_shape_supported(7168, 7168, 64, 64));
  EXPECT_TRUE(cuda::fp8_block_shape_supported(24576, 1536, 128, 128));
}

// 1-4 tokens take a skinny kernel. Where K and the blocks are multiples of 128 it is the
// tensor-core one (gemv_fp8_mma.cu), which quantizes x by DeepSeek's recipe as it reads it: it matches the CPU on the
// host-quantized activations up to float summation order. Elsewhere the CUDA-core one multiplies
// the bf16 activations themselves, and matches the CPU on them. Partial tiles of rows (kv_a_proj's
// 576 rows is 36 tiles of 16; 200 is not whole), a bias, and long rows few enough to be split over
// several warps (on a GPU of 100+ SMs: the last four cases) too, and both forms of the tensor-core
// kernel (gemv_fp8_mma_plan): the last cases are wide on any GPU (more 16-row tiles than two blocks
// an SM hold warps), 512 x 16384 and 1024 x 4096 deep on any of 16 SMs or more. Run without
// DSINFER_FP8_GEMV_MMA=0, which sends every case to the CUDA-core kernel.
TEST(GpuFp8Gemm, SkinnyProductForOneToFourTokens) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  struct Case {
    Mnk s;
    int block;
  };
  int sm_count = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const int64_t wide_rows = 16 * (int64_t{sm_count} * 16 + 1);
  std::vector<Case> cases = {{{1, 7168, 2048}, 128}, {{2, 576, 7168}, 128},   {{3, 1536, 7168}, 128},
                             {{4, 256, 384}, 64},    {{1, 200, 256}, 128},    {{1, 512, 16384}, 128},
                             {{2, 4096, 8192}, 128}, {{3, 4096, 16384}, 128}, {{4, 200, 8192}, 64},
                             {{4, 1024, 4096}, 128}};
  for (int64_t m : {1, 2, 3, 4}) cases.push_back({{m, wide_rows, 256}, 128});
  bool deep = false, wide = false;
  uint32_t seed = 90;
  for (const Case& c : cases) {
    Fp8Weight w(c.s.n, c.s.k, c.block, seed++);
    std::vector<float> x = activations(c.s.m, c.s.k, seed++);
    for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));  // what the GPU holds
    const bool recipe = c.s.k % kGroup == 0 && c.block % kGroup == 0;
    if (recipe) {
      const bool d = cuda::gemv_fp8_mma_device_plan(c.s.m, (c.s.n + 15) / 16, c.s.k, false, DType::F32, sm_count,
                                                    cuda::gemv_fp8_quantizes_first(c.s.m))
                         .deep;
      (d ? deep : wide) = true;
    }
    std::vector<float> want = cpu_linear(g, recipe ? quantize_acts(x, c.s.m, c.s.k).dequant : x, w, c.s);
    HostWeight bias(random_values(c.s.n, 1.0f, seed++), {c.s.n}, DType::BF16);
    const Weight b = g.gpu->upload_weight(bias.weight, g.keep);
    const int64_t before = cuda_backend(g).fp8_linear_stats().skinny;
    const std::string what = name(c.s) + " block " + std::to_string(c.block) + (recipe ? " (recipe)" : "");
    expect_close(gpu_linear(g, x, w, c.s, DType::F32), want, 1e-4f, "f32 out, " + what);
    for (int64_t i = 0; i < c.s.m * c.s.n; ++i) want[i] += bf16_to_f32(bias.half[i % c.s.n]);
    expect_close(gpu_linear(g, x, w, c.s, DType::BF16, &b), want, 5e-3f, "bf16 out with bias, " + what);
    EXPECT_EQ(cuda_backend(g).fp8_linear_stats().skinny - before, 2) << what << " did not take the skinny kernel";
  }
  EXPECT_TRUE(deep && wide) << "a form of the tensor-core kernel untested on " << sm_count << " SMs";
}

// The residency that gemv_fp8_mma_plan's forms were measured with, on this Hopper GPU, read back
// through the plans the launches take (the occupancy the runtime reports for each compiled form):
// deep holds exactly two blocks of 8 warps an SM (one tile more than 16 an SM goes wide, 16 an SM
// stay deep) and wide at least three (12 tiles an SM of 4-group rows take 2 splits in one wave of
// 24 warps an SM, where 16 would leave them 1). A register count that moved a form's residency (a
// compiler's or an edit's) fails here before it moves the measured choices.
TEST(GpuFp8Gemm, SkinnyFormsHoldTheirMeasuredBlocksAnSm) {
  SKIP_WITHOUT_GPU();
  int sm_count = 0, major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  if (major != 9) GTEST_SKIP() << "the forms' residency was measured on Hopper";
  const int64_t sms = sm_count;
  for (int64_t m = 1; m <= cuda::kGemvFp8MaxRows; ++m)
    for (bool many : {false, true})
      for (DType out : {DType::BF16, DType::F32}) {
        const std::string what = "M=" + std::to_string(m) + (many ? " many " : " one ") + dtype_name(out);
        for (bool first : {false, true}) {
          const std::string how = what + (first ? ", x quantized first" : "");
          EXPECT_FALSE(cuda::gemv_fp8_mma_device_plan(m, 16 * sms + 1, 256, many, out, sm_count, first).deep) << how;
          EXPECT_TRUE(cuda::gemv_fp8_mma_device_plan(m, 16 * sms, 256, many, out, sm_count, first).deep) << how;
          EXPECT_EQ(cuda::gemv_fp8_mma_device_plan(m, 12 * sms, 512, many, out, sm_count, first).splits, 2) << how;
        }
      }
}

// x quantized by a pass before the tensor-core kernel (gemv_fp8_quantizes_first) is the same
// recipe as the kernel's own quantizing, so the two give the same bits: 1-4 tokens, both forms
// (the wide rows of the test above, and 512 x 16384 deep), split and unsplit K, one product and
// two of one x, with a bias, to bf16 and f32.
TEST(GpuFp8Gemm, SkinnyProductOverXQuantizedFirstEqualsTheKernelsOwnQuantizing) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  int sm_count = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const cudaStream_t stream = cuda_backend(g).stream();
  const std::vector<Mnk> shapes = {{0, 16 * (int64_t{sm_count} * 16 + 1), 256}, {0, 512, 16384}, {0, 576, 7168}};
  uint32_t seed = 400;
  for (const Mnk& shape : shapes) {
    const Fp8Weight w0(shape.n, shape.k, 128, seed++), w1(256, shape.k, 128, seed++);
    const Weight gw0 = g.gpu->upload_weight(w0.weight, g.keep), gw1 = g.gpu->upload_weight(w1.weight, g.keep);
    HostWeight bias(random_values(shape.n, 1.0f, seed++), {shape.n}, DType::BF16);
    const Weight b = g.gpu->upload_weight(bias.weight, g.keep);
    for (int64_t m = 1; m <= cuda::kGemvFp8MaxRows; ++m)
      for (DType dt : {DType::BF16, DType::F32})
        for (bool many : {false, true}) {
          const std::string what = name({m, shape.n, shape.k}) + " " + dtype_name(dt) + (many ? ", two products" : "");
          const Tensor x = g.gpu_bf16(activations(m, shape.k, seed++), {m, shape.k});
          Tensor act = g.gpu_tensor(DType::U8, {static_cast<int64_t>(cuda::fp8_act_bytes(m, shape.k))});
          std::vector<float> outs[2];
          for (bool first : {false, true}) {
            Tensor y0 = g.gpu_tensor(dt, {m, shape.n}), y1 = g.gpu_tensor(dt, {m, 256});
            cuda::GemvFp8Products products;
            products.add(cuda::device_weight(gw0), cuda::device_weight(b), y0.data, shape.n);
            if (many) products.add(cuda::device_weight(gw1), {}, y1.data, 256);
            const cuda::Fp8Act a = first ? cuda::fp8_act_at(act.data, m, shape.k) : cuda::Fp8Act{};
            if (first) cuda::launch_quantize_fp8_act_chained(x.ptr<__nv_bfloat16>(), m, shape.k, a.q, a.scale, stream);
            cuda::launch_gemv_fp8_mma(x.ptr<__nv_bfloat16>(), a, products, dt, m, shape.k, sm_count, stream);
            outs[first] = g.read(y0);
            if (many) {
              const std::vector<float> second = g.read(y1);
              outs[first].insert(outs[first].end(), second.begin(), second.end());
            }
          }
          EXPECT_EQ(outs[0], outs[1]) << what;
        }
  }
}

// Several FP8 products of one input at 1-4 tokens (MLA's q_a and kv_a) share one skinny launch:
// each output equals its own linear() bit for bit (the same rows, the same sums; linear() itself
// is checked against the CPU above), with a bias on one of them, a partial block of rows (kv_a's
// 576), to bf16 and to f32. At 5 tokens they take linear() one by one.
TEST(GpuFp8Gemm, LinearManyOfFp8WeightsSharesOneSkinnyLaunch) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int64_t k = 384;
  const std::vector<int64_t> ns = {256, 72, 40};
  std::vector<Fp8Weight> ws;
  std::vector<Weight> gw;
  for (size_t i = 0; i < ns.size(); ++i) ws.emplace_back(ns[i], k, 128, 300 + i);
  for (const Fp8Weight& w : ws) gw.push_back(g.gpu->upload_weight(w.weight, g.keep));
  HostWeight bias(random_values(ns[1], 1.0f, 310), {ns[1]}, DType::BF16);
  const Weight b = g.gpu->upload_weight(bias.weight, g.keep);
  for (int64_t m : {1, 2, 4, 5})
    for (DType dt : {DType::BF16, DType::F32}) {
      const std::string what = "M=" + std::to_string(m) + " " + dtype_name(dt);
      const Tensor x = g.gpu_bf16(activations(m, k, 320 + m), {m, k});
      std::vector<Tensor> many, alone;
      std::vector<LinearOut> outs;
      for (size_t i = 0; i < ns.size(); ++i) {
        many.push_back(g.gpu_tensor(dt, {m, ns[i]}));
        alone.push_back(g.gpu_tensor(dt, {m, ns[i]}));
        outs.push_back({&gw[i], i == 1 ? &b : nullptr, many[i]});
      }
      const int64_t before = cuda_backend(g).fp8_linear_stats().skinny;
      g.gpu->linear_many(x, outs);
      EXPECT_EQ(cuda_backend(g).fp8_linear_stats().skinny - before, m <= cuda::kGemvFp8MaxRows ? 3 : 0)
          << what << ": products through the skinny kernel";
      for (size_t i = 0; i < ns.size(); ++i) {
        g.gpu->linear(x, gw[i], i == 1 ? &b : nullptr, alone[i]);
        EXPECT_EQ(g.read(many[i]), g.read(alone[i])) << what << ", product " << i << " differs from its own linear()";
      }
    }
}

// A gated MLP of FP8 weights where down's x is quantized first (gemv_fp8_quantizes_first: 2-4
// tokens) computes the activation in that pass (launch_gemv_fp8_silu): the same bits as
// linear_many, silu_mul and linear, to bf16 and f32, where K and the blocks are whole groups of
// 128. act is scratch: the fold leaves gate's product there (the pass writes only the quantized
// activation), the ops one by one the activation itself, which tells the two paths apart. Beyond
// 4 tokens (16, and 37 with a padded tail) the FP8 GEMM's quantizing pass computes it. One
// token and blocks of 64 take the ops.
TEST(GpuFp8Gemm, GatedMlpFoldsTheActivationIntoDownsQuantizingPass) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int64_t hidden = 384, inter = 512;
  uint32_t seed = 500;
  for (int block : {128, 64}) {
    const Fp8Weight gate(inter, hidden, block, seed++), up(inter, hidden, block, seed++),
        down(hidden, inter, block, seed++);
    const Weight gg = g.gpu->upload_weight(gate.weight, g.keep), gu = g.gpu->upload_weight(up.weight, g.keep),
                 gd = g.gpu->upload_weight(down.weight, g.keep);
    for (int64_t m : {1, 2, 3, 4, 5, 16, 37})
      for (DType dt : {DType::BF16, DType::F32}) {
        const std::string what = "M=" + std::to_string(m) + " " + dtype_name(dt) + " block " + std::to_string(block);
        const Tensor x = g.gpu_bf16(activations(m, hidden, seed++), {m, hidden});
        Tensor act = g.gpu_tensor(DType::BF16, {m, inter}), up_out = g.gpu_tensor(DType::BF16, {m, inter});
        Tensor out = g.gpu_tensor(dt, {m, hidden});
        g.gpu->gated_mlp(x, gg, gu, gd, act, up_out, out);
        Tensor a1 = g.gpu_tensor(DType::BF16, {m, inter}), u1 = g.gpu_tensor(DType::BF16, {m, inter});
        Tensor want = g.gpu_tensor(dt, {m, hidden});
        g.gpu->linear_many(x, {{&gg, nullptr, a1}, {&gu, nullptr, u1}});
        const std::vector<float> gate_product = g.read(a1);
        g.gpu->silu_mul(a1, u1, a1);
        g.gpu->linear(a1, gd, nullptr, want);
        EXPECT_EQ(g.read(out), g.read(want)) << what;
        const bool folds = block == 128 && (m <= cuda::kGemvFp8MaxRows ? cuda::gemv_fp8_quantizes_first(m)
                                                                        : block_scaling_here());
        EXPECT_EQ(g.read(act), folds ? gate_product : g.read(a1)) << what << (folds ? ": folded" : ": one by one");
      }
  }
}
