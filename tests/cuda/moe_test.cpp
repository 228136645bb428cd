// MoE routing and expert compute of the CUDA backend against the CPU reference.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "backend/cuda/moe_kernels.h"
#include "core/fp8_blocks.h"
#include "gpu_test_util.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

void check_route(const MoeRouting& r, std::vector<float> logits, int tokens, int experts, bool with_bias,
                 uint32_t seed) {
  GpuTest g;
  HostWeight bias(random_values(experts, 0.5f, seed + 1), {experts}, DType::F32);
  const Weight* cpu_bias = with_bias ? &bias.weight : nullptr;
  std::vector<int> ids(tokens * r.top_k);
  std::vector<float> weights(tokens * r.top_k);
  g.cpu->moe_route(host_view(logits, {tokens, experts}), cpu_bias, r, host_view(ids, {tokens, r.top_k}),
                   host_view(weights, {tokens, r.top_k}));
  Weight gpu_bias = g.gpu->upload_weight(bias.weight, g.keep);
  Tensor gids = g.gpu_tensor(DType::I32, {tokens, r.top_k}), gweights = g.gpu_tensor(DType::F32, {tokens, r.top_k});
  g.gpu->moe_route(g.gpu_f32(logits, {tokens, experts}), with_bias ? &gpu_bias : nullptr, r, gids, gweights);
  std::vector<int> got_ids(ids.size());
  g.gpu->copy_to_host(gids, got_ids.data());
  EXPECT_EQ(got_ids, ids);
  expect_close(g.read(gweights), weights, 1e-5f, "routing weights");
}

void check_route(const MoeRouting& r, int tokens, int experts, bool with_bias, uint32_t seed) {
  check_route(r, random_values(tokens * experts, 4.0f, seed), tokens, experts, with_bias, seed);
}

// DeepSeek-V3's: sigmoid scores, a correction bias, top-4 of 8 groups by their top-2 sums, top-8.
MoeRouting v3_routing() {
  MoeRouting r;
  r.top_k = 8;
  r.n_group = 8;
  r.topk_group = 4;
  r.sigmoid = true;
  r.group_limited = true;
  r.group_by_top2_sum = true;
  r.normalize = true;
  r.scaling = 2.5f;
  return r;
}

// The router's product and routing as one op, three times on one backend (the fused kernel's
// counter resets itself): logits against the CPU's product, and the ids and weights exactly what
// the CPU's routing makes of the GPU's logits (so near-ties cannot flip a choice).
void check_gate_route(const MoeRouting& r, int tokens, int hidden, int experts, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << tokens << " tokens, hidden " << hidden << ", " << experts << " experts");
  GpuTest g;
  std::vector<float> x = random_values(tokens * hidden, 1.0f, seed);
  HostWeight gate(random_values(experts * hidden, 0.05f, seed + 1), {experts, hidden}, DType::BF16);
  HostWeight bias(random_values(experts, 0.5f, seed + 2), {experts}, DType::F32);
  std::vector<float> want(tokens * experts);
  g.cpu->linear(host_view(x, {tokens, hidden}), gate.weight, nullptr, host_view(want, {tokens, experts}));
  const Weight ggate = g.gpu->upload_weight(gate.weight, g.keep), gbias = g.gpu->upload_weight(bias.weight, g.keep);
  const Tensor gx = g.gpu_bf16(x, {tokens, hidden});
  for (int rep = 0; rep < 3; ++rep) {
    Tensor glogits = g.gpu_tensor(DType::F32, {tokens, experts});
    Tensor gids = g.gpu_tensor(DType::I32, {tokens, r.top_k}), gweights = g.gpu_tensor(DType::F32, {tokens, r.top_k});
    g.gpu->moe_gate_route(gx, ggate, with_bias ? &gbias : nullptr, r, glogits, gids, gweights);
    std::vector<float> logits = g.read(glogits);
    expect_close(logits, want, 1e-3f, "router logits");
    std::vector<int> ids(tokens * r.top_k), got_ids(ids.size());
    std::vector<float> weights(tokens * r.top_k);
    g.cpu->moe_route(host_view(logits, {tokens, experts}), with_bias ? &bias.weight : nullptr, r,
                     host_view(ids, {tokens, r.top_k}), host_view(weights, {tokens, r.top_k}));
    g.gpu->copy_to_host(gids, got_ids.data());
    EXPECT_EQ(got_ids, ids);
    expect_close(g.read(gweights), weights, 1e-5f, "routing weights");
  }
}

}  // namespace

// One launch for 1-4 tokens (V2-Lite's softmax routing, V3's grouped sigmoid with a bias), and the
// two ops beyond 4 tokens. Up to 64 experts route in one cluster (10: most of its warps idle),
// more on the grid (70: its last block has 2 rows).
TEST(GpuMoe, GateAndRouteInOneOp) {
  SKIP_WITHOUT_GPU();
  MoeRouting v2;
  v2.top_k = 6;
  v2.scaling = 1.0f;
  for (int tokens : {1, 2, 3, 4, 7}) check_gate_route(v2, tokens, 2048, 64, false, 60 + tokens);
  for (int tokens : {1, 3}) check_gate_route(v3_routing(), tokens, 7168, 256, true, 70 + tokens);
  check_gate_route(v3_routing(), 2, 2048, 64, true, 74);  // the cluster with V3's rules
  v2.top_k = 2;
  check_gate_route(v2, 2, 40, 10, false, 80);
  check_gate_route(v2, 3, 2048, 70, false, 81);
}

TEST(GpuMoe, RouteSigmoidBiasGroupLimitedAsDeepSeekV3) {
  SKIP_WITHOUT_GPU();
  MoeRouting r = v3_routing();
  check_route(r, 37, 256, true, 41);
  r.top_k = 2;  // ds3-tiny: 8 experts in 4 groups, keep 2
  r.n_group = 4;
  r.topk_group = 2;
  check_route(r, 9, 8, true, 42);
}

TEST(GpuMoe, RouteSoftmaxGreedyAndGroupMax) {
  SKIP_WITHOUT_GPU();
  MoeRouting r;
  r.top_k = 6;
  r.scaling = 1.0f;
  check_route(r, 33, 64, false, 43);  // V2-Lite: softmax, greedy, no renormalisation
  r.group_limited = true;            // V2: group score = its best expert
  r.n_group = 8;
  r.topk_group = 3;
  r.normalize = true;
  check_route(r, 20, 160, false, 44);
}

TEST(GpuMoe, ExpertsMatchCpu) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int tokens = 9, hidden = 64, inter = 32, n_experts = 8, k = 3;
  std::vector<HostWeight> host;
  for (int e = 0; e < n_experts; ++e) {
    host.emplace_back(random_values(inter * hidden, 0.3f, 50 + 3 * e), Shape{inter, hidden}, DType::BF16);
    host.emplace_back(random_values(inter * hidden, 0.3f, 51 + 3 * e), Shape{inter, hidden}, DType::BF16);
    host.emplace_back(random_values(hidden * inter, 0.3f, 52 + 3 * e), Shape{hidden, inter}, DType::BF16);
  }
  std::vector<ExpertWeights> cpu_experts, gpu_experts;
  for (int e = 0; e < n_experts; ++e) {
    cpu_experts.push_back({host[3 * e].weight, host[3 * e + 1].weight, host[3 * e + 2].weight});
    gpu_experts.push_back({g.gpu->upload_weight(host[3 * e].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 1].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 2].weight, g.keep)});
  }
  // Distinct experts per token; expert 7 is never chosen, expert 0 often.
  std::vector<int> ids;
  std::mt19937 rng(53);
  for (int t = 0; t < tokens; ++t) {
    std::vector<int> pick(n_experts - 1);
    std::iota(pick.begin(), pick.end(), 0);
    std::shuffle(pick.begin(), pick.end(), rng);
    if (t % 2 == 0) std::swap(*std::find(pick.begin(), pick.end(), 0), pick[0]);
    ids.insert(ids.end(), pick.begin(), pick.begin() + k);
  }
  std::vector<float> x = random_values(tokens * hidden, 1.0f, 54), weights = random_values(tokens * k, 1.0f, 55);
  std::vector<float> want(tokens * hidden);
  g.cpu->moe_experts(host_view(x, {tokens, hidden}), host_view(ids, {tokens, k}), host_view(weights, {tokens, k}),
                     cpu_experts, host_view(want, {tokens, hidden}));
  Tensor out = g.gpu_tensor(DType::BF16, {tokens, hidden});
  g.gpu->moe_experts(g.gpu_bf16(x, {tokens, hidden}), g.gpu_i32(ids, {tokens, k}), g.gpu_f32(weights, {tokens, k}),
                     gpu_experts, out);
  expect_close(g.read(out), want, 2e-2f, "moe_experts");
}

// Expert parallelism: a rank holding experts 4-7 of 8 maps the router's ids to its own (-1 for
// the others' pairs, which add nothing), at decode sizes (the few-token kernels read the ids
// themselves) and beyond (the permutation drops them: the grouped kernels, and the per-expert
// products, which gather only the rows of the rank's pairs), as the CPU does.
TEST(GpuMoe, ARanksExpertsTakeOnlyTheirPairs) {
  SKIP_WITHOUT_GPU();
  GpuTest g;
  const int hidden = 64, inter = 32, n_experts = 8, first = 4, k = 3;
  std::vector<HostWeight> host;
  std::vector<ExpertWeights> cpu_experts, gpu_experts;
  for (int e = 0; e < 4; ++e)
    for (int m = 0; m < 3; ++m)
      host.emplace_back(random_values(inter * hidden, 0.3f, 70 + 3 * e + m), m < 2 ? Shape{inter, hidden} : Shape{hidden, inter},
                        DType::BF16);
  for (int e = 0; e < 4; ++e) {
    cpu_experts.push_back({host[3 * e].weight, host[3 * e + 1].weight, host[3 * e + 2].weight});
    gpu_experts.push_back({g.gpu->upload_weight(host[3 * e].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 1].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 2].weight, g.keep)});
  }
  for (int tokens : {1, 3, 9, 16}) {  // 16 x 3 pairs: past 8 a local expert, the per-expert products
    std::vector<int> ids;
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < k; ++j) ids.push_back((t * 5 + j * 3) % n_experts);  // distinct within a token
    std::vector<float> x = random_values(tokens * hidden, 1.0f, 80 + tokens), weights = random_values(tokens * k, 1.0f, 90);
    std::vector<int> local = ids;
    g.cpu->moe_local_ids(host_view(local, {tokens, k}), first, 4);
    Tensor gids = g.gpu_i32(ids, {tokens, k});
    g.gpu->moe_local_ids(gids, first, 4);
    std::vector<int> got(ids.size());
    g.gpu->copy_to_host(gids, got.data());
    EXPECT_EQ(got, local) << tokens << " tokens";
    std::vector<float> want(tokens * hidden);
    g.cpu->moe_experts(host_view(x, {tokens, hidden}), host_view(local, {tokens, k}), host_view(weights, {tokens, k}),
                       cpu_experts, host_view(want, {tokens, hidden}));
    Tensor out = g.gpu_tensor(DType::BF16, {tokens, hidden});
    g.gpu->moe_experts(g.gpu_bf16(x, {tokens, hidden}), gids, g.gpu_f32(weights, {tokens, k}), gpu_experts, out);
    expect_close(g.read(out), want, 2e-2f, "moe_experts of a rank, " + std::to_string(tokens) + " tokens");
  }
}

namespace {

// One expert matrix as the CPU and the GPU see it: BF16, or FP8 e4m3 with block scales.
struct ExpertMatrix {
  std::vector<uint16_t> bf16;
  Fp8Blocks fp8;
  Weight weight;

  ExpertMatrix(int rows, int cols, bool fp8_blocks, int block, uint32_t seed) {
    std::vector<float> v = random_values(static_cast<size_t>(rows) * cols, 0.3f, seed);
    if (fp8_blocks) {
      fp8 = quantize_fp8_blocks(v.data(), rows, cols, block, block);
      weight.w = Tensor{DType::F8_E4M3, {rows, cols}, fp8.values.data(), {}};
      weight.scale = Tensor{DType::F32, {(rows + block - 1) / block, (cols + block - 1) / block}, fp8.scales.data(), {}};
      weight.block_rows = weight.block_cols = block;
    } else {
      bf16 = to_bf16(v);
      weight.w = Tensor{DType::BF16, {rows, cols}, bf16.data(), {}};
    }
  }
};

struct ExpertCase {
  int tokens, n_experts, k, hidden, inter;
  bool fp8 = false;
  int unused = 0;     // the last `unused` experts are never chosen
  bool skewed = false;  // every token's first choice is expert 0 (many passes of one expert)
  bool repeated = false;  // every choice of every token is expert 1 (ids that repeat an expert)
  bool out_of_range = false;  // every token's last choice is -1 or n_experts (the pair adds nothing)
  int block = 32;             // FP8 block size, rows and columns
};

// FP8 experts in DeepSeek's blocks of 128 quantize x and act per 128 columns (the few-token
// tensor-core kernels up to kFewMmaTokens, the grouped FP8 GEMM beyond), which the CPU and the ops in
// sequence do not: their outputs then differ by up to ~5 % of the largest (the recipe itself is
// checked against the host in moe_gemm_fp8_test.cpp); a wrong row or scale still misses by far more.
float tolerance(const ExpertCase& c, float exact) {
  cuda::GroupedExperts ex;
  ex.dtype = DType::F8_E4M3;
  ex.hidden = c.hidden, ex.inter = c.inter, ex.block_rows = ex.block_cols = c.block;
  const bool recipe = cuda::moe_few_mma_takes(ex, c.tokens) || c.tokens > cuda::kFewFp8Tokens;
  return c.fp8 && cuda::moe_few_mma_fits(ex) && recipe ? 8e-2f : exact;
}

// Distinct random experts per token from [0, n_experts - unused).
std::vector<int> choose_experts(const ExpertCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> ids;
  std::vector<int> pick(c.n_experts - c.unused);
  if (c.repeated) return std::vector<int>(static_cast<size_t>(c.tokens) * c.k, 1);
  for (int t = 0; t < c.tokens; ++t) {
    std::iota(pick.begin(), pick.end(), 0);
    std::shuffle(pick.begin(), pick.end(), rng);
    if (c.skewed) std::swap(*std::find(pick.begin(), pick.end(), 0), pick[0]);
    ids.insert(ids.end(), pick.begin(), pick.begin() + c.k);
  }
  return ids;
}

// Shared experts two routed experts wide, of the routed experts' dtype, given as weights: where the
// device fuses them into the routed experts' launches (bf16 experts at decode sizes, FP8 ones too
// where rows are whole 16-byte pieces and each chunk whole scale blocks), the block's end against
// the shared MLP's ops with its output joined in sequence (the fused parts are summed in another
// order).
void check_fused_shared(GpuTest& g, const ExpertCase& c, const Tensor& gx, const Tensor& gids, const Tensor& gw,
                        const std::vector<ExpertWeights>& gpu_experts, uint32_t seed) {
  const int width = 2 * c.inter;
  ExpertMatrix gate(width, c.hidden, c.fp8, c.block, seed + 20), up(width, c.hidden, c.fp8, c.block, seed + 21),
      down(c.hidden, width, c.fp8, c.block, seed + 22);
  const ExpertWeights shared{g.gpu->upload_weight(gate.weight, g.keep), g.gpu->upload_weight(up.weight, g.keep),
                             g.gpu->upload_weight(down.weight, g.keep)};
  const bool fused = g.gpu->fuses_shared_experts(gids, gpu_experts, shared);
  const std::string what = "fused shared experts, " + std::to_string(c.tokens) + " tokens, top-" +
                           std::to_string(c.k) + (c.fp8 ? ", fp8" : ", bf16");
  // Up to two tokens by default; DSINFER_FUSED_SHARED=N (up to 4) runs these checks at N tokens.
  const char* env = std::getenv("DSINFER_FUSED_SHARED");
  const int max_tokens = env ? std::atoi(env) : 2;
  const bool fp8_fits = c.hidden % 16 == 0 && c.inter % c.block == 0;  // whole pieces, chunks of whole blocks
  EXPECT_EQ(fused, c.tokens <= std::min(max_tokens, 4) && c.tokens * c.k <= 32 && c.inter % 8 == 0 &&
                       (!c.fp8 || fp8_fits))
      << what;
  if (!fused) return;
  const Shape rows{c.tokens, c.hidden};
  HostWeight norm(random_values(c.hidden, 1.5f, seed + 23), {c.hidden}, DType::BF16);
  const Weight gnorm = g.gpu->upload_weight(norm.weight, g.keep);
  const std::vector<float> residual = random_values(static_cast<size_t>(c.tokens) * c.hidden, 2.0f, seed + 24);
  Tensor act = g.gpu_tensor(DType::BF16, {c.tokens, width}), up_out = g.gpu_tensor(DType::BF16, {c.tokens, width});
  Tensor shared_out = g.gpu_tensor(DType::BF16, rows);
  g.gpu->linear_silu_mul(gx, shared.gate, shared.up, act, up_out);
  g.gpu->linear(act, shared.down, nullptr, shared_out);
  struct Step {
    Tensor out, x, normed;
  };
  auto run = [&](const SharedExperts& sh, bool as_ops) {
    Step s{g.gpu_tensor(DType::BF16, rows), g.gpu_bf16(residual, rows), g.gpu_tensor(DType::BF16, rows)};
    const ResidualNorm r{s.x, &gnorm, 1e-6f, s.normed};
    if (as_ops)
      g.gpu->Backend::moe_experts_residual(gx, gids, gw, gpu_experts, sh, s.out, r);
    else
      g.gpu->moe_experts_residual(gx, gids, gw, gpu_experts, sh, s.out, r);
    return s;
  };
  const Step want = run(SharedExperts{&shared_out}, true);
  // Twice: the second launch finds the first's rows of act and y in the scratch.
  for (int round = 0; round < 2; ++round) {
    const Step got = run(SharedExperts{nullptr, &shared}, false);
    const float tol = tolerance(c, 1e-2f);
    expect_close(g.read(got.out), g.read(want.out), tol, what + ": output");
    expect_close(g.read(got.x), g.read(want.x), tol, what + ": residual");
    expect_close(g.read(got.normed), g.read(want.normed), tol, what + ": normed");
  }
}

void check_experts(const ExpertCase& c, uint32_t seed) {
  GpuTest g;
  std::vector<ExpertMatrix> host;
  host.reserve(3 * c.n_experts);
  for (int e = 0; e < c.n_experts; ++e) {
    host.emplace_back(c.inter, c.hidden, c.fp8, c.block, seed + 3 * e);
    host.emplace_back(c.inter, c.hidden, c.fp8, c.block, seed + 3 * e + 1);
    host.emplace_back(c.hidden, c.inter, c.fp8, c.block, seed + 3 * e + 2);
  }
  std::vector<ExpertWeights> cpu_experts, gpu_experts;
  for (int e = 0; e < c.n_experts; ++e) {
    cpu_experts.push_back({host[3 * e].weight, host[3 * e + 1].weight, host[3 * e + 2].weight});
    gpu_experts.push_back({g.gpu->upload_weight(host[3 * e].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 1].weight, g.keep),
                           g.gpu->upload_weight(host[3 * e + 2].weight, g.keep)});
  }
  std::vector<int> ids = choose_experts(c, seed + 7);
  std::vector<float> x = random_values(static_cast<size_t>(c.tokens) * c.hidden, 1.0f, seed + 8),
                     weights = random_values(static_cast<size_t>(c.tokens) * c.k, 1.0f, seed + 9);
  std::vector<float> want(static_cast<size_t>(c.tokens) * c.hidden);
  // The CPU rejects ids out of range: it gets the chosen expert with weight 0 instead.
  std::vector<float> cpu_weights = weights;
  std::vector<int> cpu_ids = ids;
  for (int t = 0; c.out_of_range && t < c.tokens; ++t) {
    ids[(t + 1) * c.k - 1] = t % 2 ? -1 : c.n_experts;
    cpu_weights[(t + 1) * c.k - 1] = 0.0f;
  }
  g.cpu->moe_experts(host_view(x, {c.tokens, c.hidden}), host_view(cpu_ids, {c.tokens, c.k}),
                     host_view(cpu_weights, {c.tokens, c.k}), cpu_experts, host_view(want, {c.tokens, c.hidden}));
  Tensor gx = g.gpu_bf16(x, {c.tokens, c.hidden}), gids = g.gpu_i32(ids, {c.tokens, c.k}),
         gw = g.gpu_f32(weights, {c.tokens, c.k});
  const std::string what = "moe_experts, " + std::to_string(c.tokens) + " tokens, top-" + std::to_string(c.k) + " of " +
                           std::to_string(c.n_experts) + (c.fp8 ? ", fp8" : ", bf16");
  // Twice: the second call finds the layer's cached expert table.
  for (int run = 0; run < 2; ++run) {
    Tensor out = g.gpu_tensor(DType::BF16, {c.tokens, c.hidden});
    g.gpu->moe_experts(gx, gids, gw, gpu_experts, out);
    expect_close(g.read(out), want, tolerance(c, 2e-2f), what + (run ? " (cached table)" : ""));
  }
  // The block's end with the residual step, with and without a shared experts' output: against
  // the ops in sequence on the GPU (the output and residual bit for bit; the norm sums in another
  // order).
  const Shape rows{c.tokens, c.hidden};
  HostWeight norm(random_values(c.hidden, 1.5f, seed + 10), {c.hidden}, DType::BF16);
  const Weight gnorm = g.gpu->upload_weight(norm.weight, g.keep);
  const std::vector<float> residual = random_values(static_cast<size_t>(c.tokens) * c.hidden, 2.0f, seed + 11);
  const Tensor shared = g.gpu_bf16(random_values(static_cast<size_t>(c.tokens) * c.hidden, 1.0f, seed + 12), rows);
  for (bool with_shared : {false, true}) {
    struct Step {
      Tensor out, x, normed;
    };
    auto run = [&](bool as_ops) {
      Step s{g.gpu_tensor(DType::BF16, rows), g.gpu_bf16(residual, rows), g.gpu_tensor(DType::BF16, rows)};
      const ResidualNorm r{s.x, &gnorm, 1e-6f, s.normed};
      if (as_ops)
        g.gpu->Backend::moe_experts_residual(gx, gids, gw, gpu_experts, SharedExperts{with_shared ? &shared : nullptr}, s.out, r);
      else
        g.gpu->moe_experts_residual(gx, gids, gw, gpu_experts, SharedExperts{with_shared ? &shared : nullptr}, s.out, r);
      return s;
    };
    const Step want_step = run(true), got = run(false);
    const std::string step = what + (with_shared ? " + shared" : "") + " + residual step";
    EXPECT_EQ(g.read(got.out), g.read(want_step.out)) << step << ": output";
    EXPECT_EQ(g.read(got.x), g.read(want_step.x)) << step << ": residual";
    expect_close(g.read(got.normed), g.read(want_step.normed), 1e-2f, step + ": normed");
  }
  check_fused_shared(g, c, gx, gids, gw, gpu_experts, seed);
}

}  // namespace

// Decode sizes take the grouped kernels (<= 8 pairs per expert on average), larger batches the
// per-expert cuBLASLt path: both against the CPU.
TEST(GpuMoe, ExpertsTop6Of64TokensOneTo300) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 2, 7, 33, 85, 86, 300}) check_experts({tokens, 64, 6, 128, 48, false, 5}, 60 + tokens);
}

// V2-Lite's widths (hidden 2048, inter 1408: down rows of 176 16-byte pieces, not a whole load
// step) and 1032 (129 pieces): at hidden 2048 the few-token kernels give a warp 2 rows.
TEST(GpuMoe, ExpertsWithRowsOfPartialLoadSteps) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 2, 4}) check_experts({tokens, 4, 2, 2048, 1408}, 90 + tokens);
  check_experts({1, 4, 2, 2048, 1032}, 95);
  check_experts({3, 4, 2, 2048, 1032, false, 0, false, false, true}, 96);
}

// Top-1 at one token: the routed grid (26 blocks of 4 warps) has fewer warps than the fused shared
// experts have gate/up rows (208), so each warp streams 2 of them.
TEST(GpuMoe, ExpertsTop1SharedRowsOutnumberWarps) {
  SKIP_WITHOUT_GPU();
  check_experts({1, 4, 1, 256, 104}, 97);
}

TEST(GpuMoe, ExpertsTop8Of32WithUnusedExperts) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 3, 32, 33, 300}) check_experts({tokens, 32, 8, 96, 64, false, 10}, 70 + tokens);
}

TEST(GpuMoe, ExpertsOneExpertWithManyTokens) {
  SKIP_WITHOUT_GPU();
  // Expert 0 gets all 60 tokens: 8 passes of 8 tokens in one block (120 pairs <= 8 x 16).
  check_experts({60, 16, 2, 64, 40, false, 0, true}, 80);
}

TEST(GpuMoe, ExpertsFp8BlockScaledWithPartialBlocks) {
  SKIP_WITHOUT_GPU();
  // hidden 80 and inter 48 leave partial 32-blocks at the edges.
  for (int tokens : {1, 9, 40, 200}) check_experts({tokens, 16, 6, 80, 48, true, 3}, 90 + tokens);
}

// Up to kFewTokens tokens take the GEMV-shaped grouped kernels: wide rows (K over one batch of
// loads per lane), an expert given more rows than that by repeated ids (several passes over its
// weights), and FP8 block-scaled weights there too, read as stored where rows and blocks are
// whole 16-byte pieces (144 x 48 in blocks of 32, a partial one at the end of each row); 136 x 40
// are not, and take the tensor-core grouped kernels. The residual step's rows longer than one
// block's chunk (2304, and 2100 with a partial last part) are combined by a cluster of blocks at up
// to 16 tokens (with fused shared parts at 2 tokens; bf16 rows through the permutation from the
// grouped FP8 GEMM at 9), by one block a token at 20.
TEST(GpuMoe, ExpertsFewTokensWideRowsRepeatedIdsAndFp8) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 2, 4}) check_experts({tokens, 16, 6, 2304, 200, false, 2}, 100 + tokens);
  check_experts({3, 16, 6, 2100, 64, false, 2}, 105);
  check_experts({20, 16, 6, 2304, 64, false, 2}, 106);
  check_experts({.tokens = 9, .n_experts = 8, .k = 4, .hidden = 2304, .inter = 256, .fp8 = true, .block = 128}, 107);
  check_experts({3, 8, 4, 256, 72, false, 0, false, true}, 110);
  check_experts({4, 8, 3, 136, 40, true, 0, false, true}, 111);
  check_experts({4, 8, 3, 144, 48, true, 0, false, true}, 112);
  // FP8 shared experts fused at 1-2 tokens: two chunks of 64 rows, whole blocks of 32.
  for (int tokens : {1, 2}) check_experts({tokens, 8, 4, 256, 64, true, 1}, 113 + tokens);
  for (int tokens : {2, 4}) check_experts({tokens, 16, 6, 144, 80, true, 3}, 120 + tokens);
}

// FP8 experts in DeepSeek's blocks of 128 take the tensor-core few-token kernels at 1-4 tokens
// (moe_few_mma.cu; x and act quantized per 128 columns). A warp takes at least 4 steps of K
// (kMinWarpSteps: a gate/up step is a group of 128, a down step two), so gate/up over 2 groups and
// down over 3 are not split, gate/up over 8 groups is split over 2 warps a tile, with ids that
// repeat an expert (3 passes over its rows: one token's 3 pairs of it, a column each, and two
// tokens' 6, two columns each), gate/up over 32 groups over 8 and down over 16 over 2; shared
// experts fused (two chunks), and ids out of range (their rows of y are zeros).
TEST(GpuMoe, ExpertsFp8FewTokensOnTensorCores) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 2, 3, 4})
    check_experts({.tokens = tokens, .n_experts = 8, .k = 4, .hidden = 256, .inter = 384, .fp8 = true, .unused = 1,
                   .block = 128},
                  150 + tokens);
  for (int tokens : {1, 2})
    check_experts({.tokens = tokens, .n_experts = 8, .k = 3, .hidden = 1024, .inter = 512, .fp8 = true,
                   .repeated = true, .block = 128},
                  158 + tokens);
  check_experts({.tokens = 2, .n_experts = 8, .k = 4, .hidden = 4096, .inter = 128, .fp8 = true, .block = 128}, 162);
  check_experts({.tokens = 3, .n_experts = 8, .k = 4, .hidden = 256, .inter = 2048, .fp8 = true, .block = 128}, 163);
  check_experts({.tokens = 1, .n_experts = 16, .k = 6, .hidden = 384, .inter = 256, .fp8 = true,
                 .out_of_range = true, .block = 128},
                161);
}

// Pairs whose id is outside [0, experts) add nothing, on every path: few tokens (no permutation),
// the grouped tensor-core kernels, per-expert cuBLASLt. Up to kFewTokens tokens with more than
// kFewMaxPairs pairs (top-9 of 16 at 4 tokens) take the grouped tensor-core kernels.
TEST(GpuMoe, ExpertsIdsOutOfRangeAndFewTokensWithManyPairs) {
  SKIP_WITHOUT_GPU();
  for (int tokens : {1, 4, 7, 300}) {
    ExpertCase c{tokens, 16, 6, 128, 48};
    c.out_of_range = true;
    check_experts(c, 130 + tokens);
  }
  check_experts({4, 16, 9, 128, 48}, 140);
}

// Logits on a coarse grid, so many experts tie: each pick must take the lowest index among the
// best, as the CPU's comparator does, also across the register slots of a lane (up to 1024
// experts, 32 a lane) and among groups of equal scores.
TEST(GpuMoe, RouteTiesGoToTheLowerIndex) {
  SKIP_WITHOUT_GPU();
  auto coarse = [](int n, uint32_t seed) {
    std::vector<float> v = random_values(n, 2.0f, seed);
    for (float& x : v) x = std::round(x);
    return v;
  };
  MoeRouting r;
  r.top_k = 8;
  r.scaling = 1.0f;
  for (int experts : {64, 300, 1024}) check_route(r, coarse(5 * experts, 90 + experts), 5, experts, false, 91);
  check_route(r, std::vector<float>(3 * 256, 0.5f), 3, 256, false, 92);  // all equal: experts 0-7
  r = v3_routing();
  check_route(r, coarse(6 * 256, 93), 6, 256, true, 94);
  check_route(r, std::vector<float>(2 * 256, 0.0f), 2, 256, false, 95);  // equal groups too
}
