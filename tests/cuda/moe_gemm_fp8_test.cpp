// The grouped FP8 MoE GEMM (moe_gemm_fp8.h) on Hopper against float references computed from
// exactly what it multiplies: the dequantized e4m3 weights (128 x 128 block scales) and the
// host's quantization of the activations (per row and 128 columns, byte-identical to the GPU's).
// Rows are grouped by expert with uneven counts, empty experts and tiles that are not full; then
// moe_experts against DeepSeek's recipe computed on the host (and, at 1-4 tokens, which take the
// few-token kernels, against the same experts with x and act unquantized).
#include <cmath>
#include <cstdio>
#include <numeric>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/moe_gemm_fp8.h"
#include "backend/cuda/moe_kernels.h"
#include "core/fp8_blocks.h"
#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kBlock = 128;

bool fp8_gemm_here() { return cuda::moe_fp8_gemm_device(0) && cuda::fp8_block_scaling_enabled(0); }

// A device allocation holding a copy of a host vector.
struct DeviceCopy {
  void* p = nullptr;
  template <typename T>
  explicit DeviceCopy(const std::vector<T>& v) {
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(v.size() * sizeof(T), 16)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  explicit DeviceCopy(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(bytes, 16)), cudaSuccess); }
  ~DeviceCopy() { cudaFree(p); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  template <typename T>
  T* get() const { return static_cast<T*>(p); }
  template <typename T>
  std::vector<T> read(size_t n) const {
    std::vector<T> v(n);
    EXPECT_EQ(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
};

// e4m3 [rows, cols] with 128 x 128 block scales whose magnitudes differ by block, and its
// dequantized values.
struct HostFp8 {
  Fp8Blocks q;
  std::vector<float> dequant;
  HostFp8(int64_t rows, int64_t cols, uint32_t seed) {
    std::vector<float> w = random_values(rows * cols, 0.05f, seed);
    for (int64_t i = 0; i < rows * cols; ++i) w[i] *= 1.0f + static_cast<float>((i / cols / kBlock * 3 + i % cols / kBlock) % 5);
    q = quantize_fp8_blocks(w.data(), rows, cols, kBlock, kBlock);
    dequant.resize(rows * cols);
    const int64_t scale_cols = cols / kBlock;
    for (int64_t i = 0; i < rows * cols; ++i)
      dequant[i] = fp8e4m3_to_f32(q.values[i]) * q.scales[(i / cols / kBlock) * scale_cols + i % cols / kBlock];
  }
};

// Rows quantized as the GPU does (per row and 128 columns); scales transposed to [k / 128, rows].
struct HostRows {
  Fp8Blocks q;
  std::vector<float> dequant, scales_t;
  HostRows(const std::vector<float>& x, int64_t rows, int64_t k) {
    q = quantize_fp8_blocks(x.data(), rows, k, 1, kBlock);
    dequant.resize(rows * k);
    for (int64_t i = 0; i < rows * k; ++i) dequant[i] = fp8e4m3_to_f32(q.values[i]) * q.scales[i / kBlock];
    const int64_t groups = k / kBlock;
    scales_t.resize(rows * groups);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) scales_t[g * rows + r] = q.scales[r * groups + g];
  }
};

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

float silu(float g) { return g / (1.0f + std::exp(-g)); }

// Experts on the device as the grouped GEMM reads them.
struct DeviceExperts {
  std::vector<HostFp8> gate, up, down;
  std::vector<std::unique_ptr<DeviceCopy>> keep;
  std::unique_ptr<DeviceCopy> table, maps;
  cuda::GroupedExperts ex;

  DeviceExperts(int experts, int64_t hidden, int64_t inter, uint32_t seed) {
    std::vector<cuda::ExpertPtrs> ptrs;
    std::vector<cuda::Fp8ExpertMaps> host_maps;
    auto up_load = [&](const HostFp8& w, const void*& data, const float*& scale) {
      keep.push_back(std::make_unique<DeviceCopy>(w.q.values));
      data = keep.back()->get<void>();
      keep.push_back(std::make_unique<DeviceCopy>(w.q.scales));
      scale = keep.back()->get<float>();
    };
    for (int e = 0; e < experts; ++e) {
      gate.emplace_back(inter, hidden, seed + 3 * e);
      up.emplace_back(inter, hidden, seed + 3 * e + 1);
      down.emplace_back(hidden, inter, seed + 3 * e + 2);
      cuda::ExpertPtrs p;
      up_load(gate.back(), p.gate, p.gate_scale);
      up_load(up.back(), p.up, p.up_scale);
      up_load(down.back(), p.down, p.down_scale);
      ptrs.push_back(p);
      host_maps.push_back(cuda::fp8_expert_maps(p, hidden, inter));
    }
    table = std::make_unique<DeviceCopy>(ptrs);
    maps = std::make_unique<DeviceCopy>(host_maps);
    ex.table = table->get<cuda::ExpertPtrs>();
    ex.experts = experts;
    ex.hidden = hidden;
    ex.inter = inter;
    ex.dtype = DType::F8_E4M3;
    ex.block_rows = ex.block_cols = kBlock;
    ex.gate_up_scale_cols = hidden / kBlock;
    ex.down_scale_cols = inter / kBlock;
  }
  const cuda::Fp8ExpertMaps* device_maps() const { return maps->get<cuda::Fp8ExpertMaps>(); }
};

struct GroupedCase {
  int64_t hidden, inter;
  std::vector<int> rows;  // per expert
  int col_stride = 1;     // reference columns checked: every col_stride-th (V3 shapes are large)
};

// The M tiles of `offsets` and quantized rows on the device for one product.
struct DeviceRows {
  DeviceCopy q, scales, tiles;
  cuda::MoeFp8Rows rows;
  DeviceRows(const HostRows& h, int n, const DeviceCopy& offsets, int experts)
      : q(h.q.values), scales(h.scales_t), tiles(cuda::moe_fp8_tile_slots(n, experts) * sizeof(int4)) {
    rows = {q.get<uint8_t>(), scales.get<float>(), n, tiles.get<int4>(), cuda::moe_fp8_tile_slots(n, experts)};
    cuda::launch_moe_fp8_tiles(offsets.get<int>(), experts, tiles.get<int4>(), rows.slots, nullptr);
  }
};

void check_grouped(const GroupedCase& c, uint32_t seed) {
  const int experts = static_cast<int>(c.rows.size());
  std::vector<int> offsets(experts + 1, 0);
  std::partial_sum(c.rows.begin(), c.rows.end(), offsets.begin() + 1);
  const int n = offsets.back();
  const std::string what = "hidden " + std::to_string(c.hidden) + ", inter " + std::to_string(c.inter) + ", " +
                           std::to_string(n) + " rows over " + std::to_string(experts) + " experts";
  DeviceExperts dev(experts, c.hidden, c.inter, seed);
  DeviceCopy d_offsets(offsets);
  auto expert_of = [&](int r) { return static_cast<int>(std::upper_bound(offsets.begin(), offsets.end(), r) - offsets.begin()) - 1; };

  // gate + up + SiLU.
  const HostRows x(random_values(n * c.hidden, 1.0f, seed + 100), n, c.hidden);
  DeviceRows xr(x, n, d_offsets, experts);
  DeviceCopy act(n * c.inter * sizeof(uint16_t));
  ASSERT_EQ(cudaMemset(act.p, 0xff, n * c.inter * sizeof(uint16_t)), cudaSuccess);  // NaN: unwritten rows show
  cuda::launch_moe_fp8_gate_up(dev.ex, dev.device_maps(), xr.rows, act.get<__nv_bfloat16>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const std::vector<uint16_t> act_bits = act.read<uint16_t>(n * c.inter);
  std::vector<float> got, want;
  for (int r = 0; r < n; ++r) {
    const int e = expert_of(r);
    for (int64_t col = 0; col < c.inter; col += c.col_stride) {
      const float g = static_cast<float>(dot(x.dequant.data() + r * c.hidden, dev.gate[e].dequant.data() + col * c.hidden, c.hidden));
      const float u = static_cast<float>(dot(x.dequant.data() + r * c.hidden, dev.up[e].dequant.data() + col * c.hidden, c.hidden));
      want.push_back(silu(g) * u);
      got.push_back(bf16_to_f32(act_bits[r * c.inter + col]));
    }
  }
  expect_close(got, want, 5e-3f, "gate+up, " + what);

  // down, on activations of their own.
  const HostRows a(random_values(n * c.inter, 1.0f, seed + 200), n, c.inter);
  DeviceRows ar(a, n, d_offsets, experts);
  DeviceCopy y(n * c.hidden * sizeof(uint16_t));
  ASSERT_EQ(cudaMemset(y.p, 0xff, n * c.hidden * sizeof(uint16_t)), cudaSuccess);  // NaN: unwritten rows show
  cuda::launch_moe_fp8_down(dev.ex, dev.device_maps(), ar.rows, y.get<__nv_bfloat16>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const std::vector<uint16_t> y_bits = y.read<uint16_t>(n * c.hidden);
  got.clear();
  want.clear();
  for (int r = 0; r < n; ++r) {
    const int e = expert_of(r);
    for (int64_t col = 0; col < c.hidden; col += c.col_stride) {
      want.push_back(static_cast<float>(dot(a.dequant.data() + r * c.inter, dev.down[e].dequant.data() + col * c.inter, c.inter)));
      got.push_back(bf16_to_f32(y_bits[r * c.hidden + col]));
    }
  }
  expect_close(got, want, 5e-3f, "down (bf16 rows), " + what);
}

}  // namespace

TEST(GpuMoeFp8Gemm, TileListCoversEveryRowOnce) {
  SKIP_WITHOUT_GPU();
  const std::vector<int> rows = {0, 1, 128, 129, 0, 300, 127, 0};
  std::vector<int> offsets(rows.size() + 1, 0);
  std::partial_sum(rows.begin(), rows.end(), offsets.begin() + 1);
  const int n = offsets.back(), experts = static_cast<int>(rows.size()), slots = cuda::moe_fp8_tile_slots(n, experts);
  DeviceCopy d_offsets(offsets), tiles(slots * sizeof(int4));
  cuda::launch_moe_fp8_tiles(d_offsets.get<int>(), experts, tiles.get<int4>(), slots, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<int> covered(n, 0);
  int real = 0;
  const std::vector<int4> list = tiles.read<int4>(slots);
  for (const int4& t : list) {
    if (t.x < 0) continue;
    ++real;
    ASSERT_LT(t.x, experts);
    EXPECT_EQ(t.z, offsets[t.x + 1]);
    ASSERT_GE(t.w, 0);  // the expert's first tile
    EXPECT_EQ(list[t.w].x, t.x);
    EXPECT_EQ(list[t.w].y, offsets[t.x]);
    for (int r = t.y; r < std::min(t.y + cuda::kMoeFp8TileRows, t.z); ++r) ++covered[r];
  }
  int want = 0;
  for (int r : rows) want += (r + cuda::kMoeFp8TileRows - 1) / cuda::kMoeFp8TileRows;
  EXPECT_EQ(real, want);
  for (int r = 0; r < n; ++r) EXPECT_EQ(covered[r], 1) << "row " << r;
}

TEST(GpuMoeFp8Gemm, GatherQuantizeMatchesTheHostRecipe) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int tokens = 5, m = 12, k = 384, valid = 10;  // rows 10, 11: pairs with no expert
  const std::vector<float> x = random_values(tokens * k, 2.0f, 7);
  std::vector<int> src(m), n_valid = {valid};
  for (int i = 0; i < m; ++i) src[i] = i < valid ? (i * 3) % tokens : -12345;  // garbage past n_valid
  std::vector<float> gathered(m * k, 0.0f);
  for (int i = 0; i < valid; ++i) std::copy_n(x.begin() + src[i] * k, k, gathered.begin() + i * k);
  const HostRows want(gathered, m, k);
  Tensor xg = g.gpu_bf16(x, {tokens, k});
  DeviceCopy d_src(src), d_valid(n_valid), q(m * k), scales(m * k / kBlock * sizeof(float));
  cuda::launch_gather_quantize_fp8_act(xg.ptr<__nv_bfloat16>(), d_src.get<int>(), d_valid.get<int>(), m, k,
                                       q.get<uint8_t>(), scales.get<float>(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint8_t> got_q = q.read<uint8_t>(m * k);
  const std::vector<float> got_s = scales.read<float>(m * k / kBlock);
  EXPECT_EQ(got_q, want.q.values);
  for (int i = 0; i < m * k / kBlock; ++i) EXPECT_EQ(got_s[i], want.scales_t[i]) << "scale " << i;
}

TEST(GpuMoeFp8Gemm, TinyShapesUnevenAndEmptyExperts) {
  SKIP_WITHOUT_GPU();
  if (!fp8_gemm_here()) GTEST_SKIP() << "no sm_90a FP8 grouped GEMM on this GPU";
  check_grouped({128, 128, {0, 3, 129, 0, 273, 1}}, 1);
  check_grouped({256, 384, {64, 65, 0, 200}}, 2);
  check_grouped({384, 256, {1}}, 3);
  check_grouped({128, 128, {0, 0, 0, 7}}, 4);
  // Experts of two and four 64-row boxes, ones that fill one box or less, and one of 120.
  check_grouped({128, 256, {128, 17, 256, 33, 47, 120}}, 6);
}

TEST(GpuMoeFp8Gemm, BlocksWalkManyItems) {
  SKIP_WITHOUT_GPU();
  if (!fp8_gemm_here()) GTEST_SKIP() << "no sm_90a FP8 grouped GEMM on this GPU";
  // Hundreds of items (M tile x N tile) a launch, more than blocks, so each block carries its
  // ring and outbox from item to item: wide inter for gate+up, wide hidden for down. Experts of
  // exactly one and two whole tiles (192, 384 rows), one just past a tile, and short ones.
  check_grouped({128, 8192, {192, 193, 64, 384, 1}, 7}, 7);
  check_grouped({8192, 128, {192, 193, 64, 384, 1}, 7}, 8);
}

TEST(GpuMoeFp8Gemm, DeepSeekV3Shapes) {
  SKIP_WITHOUT_GPU();
  if (!fp8_gemm_here()) GTEST_SKIP() << "no sm_90a FP8 grouped GEMM on this GPU";
  // hidden 7168, moe_intermediate_size 2048; a sample of columns in every N tile is checked.
  check_grouped({7168, 2048, {130, 0, 1}, 23}, 5);
}

namespace {

// One FP8 expert matrix as the CPU and the GPU see it.
struct ExpertFp8 {
  HostFp8 h;
  Weight weight;
  ExpertFp8(int64_t rows, int64_t cols, uint32_t seed) : h(rows, cols, seed) {
    weight.w = Tensor{DType::F8_E4M3, {rows, cols}, h.q.values.data(), {}};
    weight.scale = Tensor{DType::F32, {rows / kBlock, cols / kBlock}, h.q.scales.data(), {}};
    weight.block_rows = weight.block_cols = kBlock;
  }
};

// The experts on the host, gate and up on the dequantized weights, act = silu(gate) * up rounded
// to bf16, weighted sum over the choices. quantized: DeepSeek's recipe, as the grouped FP8 GEMM
// computes it: x and act quantized per 128 columns, down rounded to bf16. Otherwise as the
// few-token kernels compute it: x (bf16 values) and act as they are, down in float.
std::vector<float> host_moe(const std::vector<float>& x, const std::vector<int>& ids, const std::vector<float>& w,
                            const std::vector<ExpertFp8>& m, int tokens, int k, int64_t hidden, int64_t inter,
                            bool quantized) {
  const std::vector<float> xs = quantized ? HostRows(x, tokens, hidden).dequant : x;
  std::vector<float> out(tokens * hidden, 0.0f), act(inter);
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < k; ++j) {
      const int e = ids[t * k + j];
      for (int64_t c = 0; c < inter; ++c) {
        const float g = static_cast<float>(dot(xs.data() + t * hidden, m[3 * e].h.dequant.data() + c * hidden, hidden));
        const float u = static_cast<float>(dot(xs.data() + t * hidden, m[3 * e + 1].h.dequant.data() + c * hidden, hidden));
        act[c] = bf16_to_f32(f32_to_bf16(silu(g) * u));
      }
      const std::vector<float> as = quantized ? HostRows(act, 1, inter).dequant : act;
      for (int64_t c = 0; c < hidden; ++c) {
        const float y = static_cast<float>(dot(as.data(), m[3 * e + 2].h.dequant.data() + c * inter, inter));
        out[t * hidden + c] += w[t * k + j] * (quantized ? bf16_to_f32(f32_to_bf16(y)) : y);
      }
    }
  return out;
}

// V3-like experts (16 of them, 4 chosen a token, the last 3 never) for the moe_experts tests below.
struct Fp8MoeCase {
  static constexpr int kExperts = 16, kTopK = 4, kUnused = 3;
  static constexpr int64_t kHidden = 256, kInter = 384;
  std::vector<ExpertFp8> host;
  std::vector<ExpertWeights> gpu;
  explicit Fp8MoeCase(GpuTest& g) {
    host.reserve(3 * kExperts);
    for (int e = 0; e < kExperts; ++e) {
      host.emplace_back(kInter, kHidden, 300 + 3 * e);
      host.emplace_back(kInter, kHidden, 301 + 3 * e);
      host.emplace_back(kHidden, kInter, 302 + 3 * e);
    }
    for (int e = 0; e < kExperts; ++e)
      gpu.push_back({g.gpu->upload_weight(host[3 * e].weight, g.keep), g.gpu->upload_weight(host[3 * e + 1].weight, g.keep),
                     g.gpu->upload_weight(host[3 * e + 2].weight, g.keep)});
  }
  // Distinct random experts a token.
  static std::vector<int> choose(int tokens) {
    std::mt19937 rng(tokens);
    std::vector<int> ids, pick(kExperts - kUnused);
    for (int t = 0; t < tokens; ++t) {
      std::iota(pick.begin(), pick.end(), 0);
      std::shuffle(pick.begin(), pick.end(), rng);
      ids.insert(ids.end(), pick.begin(), pick.begin() + kTopK);
    }
    return ids;
  }
};

// rms(got - want) / rms(want).
double rms_error(const std::vector<float>& got, const std::vector<float>& want) {
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err2 += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    ref2 += want[i] * static_cast<double>(want[i]);
  }
  return std::sqrt(err2 / ref2);
}

}  // namespace

// moe_experts over FP8 experts of the FP8 GEMM's blocking against the host: more than
// kFewMmaTokens tokens (5 and 9: most experts get few rows, none a full tile; 130 and 300: 40 pairs
// per expert on average) take the grouped FP8 GEMM and 1-4 tokens the few-token tensor-core kernels
// (moe_few_mma.cu), which both compute DeepSeek's recipe; with DSINFER_FP8_FEW_MMA_TOKENS=0 1-2
// tokens take the CUDA-core few-token kernels, which read the weights as stored and keep x and act
// unquantized, and 3-4 the GEMM.
TEST(GpuMoeFp8Gemm, MoeExpertsTakeTheGroupedFp8PathOrTheFewTokenKernels) {
  SKIP_WITHOUT_GPU();
  if (!fp8_gemm_here()) GTEST_SKIP() << "no sm_90a FP8 grouped GEMM on this GPU";
  GpuTest g;
  const Fp8MoeCase c(g);
  const int k = Fp8MoeCase::kTopK;
  const int64_t hidden = Fp8MoeCase::kHidden, inter = Fp8MoeCase::kInter;
  for (int tokens : {1, 2, 3, 4, 5, 9, 130, 300}) {
    const std::vector<int> ids = Fp8MoeCase::choose(tokens);
    std::vector<float> x = random_values(tokens * hidden, 1.0f, tokens + 1);
    for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));  // what the GPU gets
    const std::vector<float> w = random_values(tokens * k, 1.0f, tokens + 2);
    cuda::GroupedExperts ex;
    ex.dtype = DType::F8_E4M3;
    ex.hidden = hidden, ex.inter = inter, ex.block_rows = ex.block_cols = kBlock;
    const bool mma = cuda::moe_few_mma_takes(ex, tokens);
    const bool few = !mma && tokens <= cuda::kFewFp8Tokens;  // unquantized
    const std::vector<float> want = host_moe(x, ids, w, c.host, tokens, k, hidden, inter, !few);
    Tensor out = g.gpu_tensor(DType::BF16, {tokens, hidden});
    g.gpu->moe_experts(g.gpu_bf16(x, {tokens, hidden}), g.gpu_i32(ids, {tokens, k}), g.gpu_f32(w, {tokens, k}),
                       c.gpu, out);
    // Recipe: both sides round act to bf16 and quantize it per 128 columns, but a last-bit
    // difference in a group's largest act moves its scale and so re-rounds the whole group: single
    // outputs can be off by ~1 % of the largest. The rms error stays far below the ~3 % by which
    // the two references differ, so each check tells which computation ran.
    const std::string what =
        "moe_experts, " + std::to_string(tokens) + " tokens, " +
        (few ? "few-token kernels" : mma ? "FP8 recipe, few-token tensor-core kernels" : "FP8 recipe, GEMM");
    const std::vector<float> got = g.read(out);
    expect_close(got, want, few ? 1e-2f : 3e-2f, what);
    const double rms = rms_error(got, want);
    std::printf("[ fp8 moe ] %s: rms error / rms output %.4f\n", what.c_str(), rms);
    EXPECT_LT(rms, few ? 4e-3 : 1e-2) << what;
  }
}
