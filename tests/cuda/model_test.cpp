// Whole models on the GPU: logits against transformers' reference on every fixture, several
// sequences in one batch against each alone, and decode steps against one full prefill.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>

#include "../fixture_util.h"
#include "../float_compare.h"
#include "../paged_runner.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "model/score.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

std::unique_ptr<Backend> gpu_backend() { return make_backend(Device{DeviceKind::CUDA, 0}); }

// Rows [row0, row0 + rows) of a and b agree within tol of b's largest magnitude.
void expect_rows_close(const std::vector<float>& a, size_t a_row0, const std::vector<float>& b, size_t b_row0,
                       size_t rows, int vocab, float tol, const std::string& what) {
  std::vector<float> x(a.begin() + a_row0 * vocab, a.begin() + (a_row0 + rows) * vocab);
  std::vector<float> y(b.begin() + b_row0 * vocab, b.begin() + (b_row0 + rows) * vocab);
  expect_close(x, y, tol, what);
}

// How close a model's logits come to a reference's at each position: the same top-1, and the
// largest |difference| on the reference's top ids over the reference's largest |logit| (its
// median over the positions).
struct TopAgreement {
  size_t positions = 0, same_top1 = 0;
  std::vector<float> top_err;

  // One position: `row` (vocab logits) against the reference's top ids (best first) and logits.
  void add(const float* row, int vocab, const std::vector<int>& top_ids, const std::vector<float>& top_logits,
           float max_ref) {
    same_top1 += std::max_element(row, row + vocab) - row == top_ids[0];
    ++positions;
    float err = 0.0f;
    for (size_t j = 0; j < top_ids.size(); ++j) err = std::max(err, std::fabs(row[top_ids[j]] - top_logits[j]));
    top_err.push_back(err / max_ref);
  }

  // Median top error within max_median, the same top-1 at min_top1 of the positions or more.
  void expect(const std::string& what, float max_median, double min_top1) {
    std::nth_element(top_err.begin(), top_err.begin() + top_err.size() / 2, top_err.end());
    const float median = top_err[top_err.size() / 2];
    EXPECT_LE(median, max_median) << what << ": median top-32 error " << median;
    EXPECT_GE(same_top1, min_top1 * positions) << what << ": same top-1 at " << same_top1 << " of " << positions
                                               << " positions";
    std::printf("%s: same top-1 at %zu of %zu positions, median top-32 error %.4f of the largest logit\n",
                what.c_str(), same_top1, positions, median);
  }
};

}  // namespace

// The fixtures' random weights make attention and routing nearly argmax, so bf16 activations
// move some logits far from the float32 reference: transformers itself, run in bf16 on an H100,
// reaches only 82-89% top-1 agreement, row errors up to 0.18 of the largest logit and median
// top-32 errors up to 0.024 (docs/cuda.md). The bounds sit just outside that envelope: a wrong
// kernel (rope, masking, routing) lands far beyond them, bf16 rounding does not.
static void expect_bf16_close_to_reference(const std::string& name, Model& model, Backend& backend) {
  const int vocab = model.config().vocab_size;
  TopAgreement agreement;  // on the reference's top 32
  const nlohmann::json ref = fixture_ref(name);
  ASSERT_FALSE(ref["sequences"].empty());
  for (const auto& seq : ref["sequences"]) {
    std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    const std::string what = name + ": sequence of " + std::to_string(ids.size()) + " tokens";
    std::vector<float> got = score_tokens(model, backend, ids);
    // Full rows where ref.bin has them (every row, or the last when the vocabulary is large).
    std::vector<float> want = fixture_logits(name, seq, vocab);
    const size_t offset = got.size() - want.size();
    expect_close(std::vector<float>(got.begin() + offset, got.end()), want, 0.25f, what);
    const auto top_ids = seq["top_ids"].get<std::vector<std::vector<int>>>();
    const auto top_logits = seq["top_logits"].get<std::vector<std::vector<float>>>();
    float max_ref = 0.0f;
    for (const auto& row : top_logits)
      for (float v : row) max_ref = std::max(max_ref, std::fabs(v));
    for (size_t r = 0; r < ids.size(); ++r)
      agreement.add(got.data() + r * vocab, vocab, top_ids[r], top_logits[r], max_ref);
  }
  agreement.expect(name, 0.04f, 0.8);
}

static void expect_bf16_close_to_reference(const std::string& name, const ModelOptions& options) {
  auto backend = gpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, options);
  expect_bf16_close_to_reference(name, *model, *backend);
}

class GpuFixtureLogits : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuFixtureLogits, AsCloseAsBf16Allows) {
  SKIP_WITHOUT_GPU();
  expect_bf16_close_to_reference(GetParam(), {});
}

// Every prompt of the DeepSeek fixtures through the expanded MLA form (the fixtures' prompts are
// shorter than auto's threshold, so the test above runs them absorbed).
TEST_P(GpuFixtureLogits, ExpandedMlaPrefillAsCloseAsBf16Allows) {
  SKIP_WITHOUT_GPU();
  if (!ModelConfig::from_json(ModelDir::open(fixture_dir(GetParam())).config).is_deepseek())
    GTEST_SKIP() << "no MLA layers";
  expect_bf16_close_to_reference(GetParam(), {MlaPrefill::Expanded});
}

INSTANTIATE_TEST_SUITE_P(GpuFixtures, GpuFixtureLogits, ::testing::ValuesIn(all_fixtures()), fixture_test_name);

// --kv-dtype fp8 on the GPU against the CPU reference with the same FP8 cache: both write and
// read the same row format (the ops alone match the CPU: GpuAttention.MlaOverFp8Rows,
// GpuOps.MlaRopeAndCacheIntoFp8Rows), so the models differ by bf16 activations and the e4m3
// roundings those flip, each 16 times a bf16 rounding. Measured on an H100 (session 43): the same
// top-1 at 71 of 97 / 60 of 79 positions, median top-32 errors 0.033 / 0.056 of the largest logit
// (ds3-tiny / ds2-lite-tiny), against bf16's 82-89 % and <= 0.024. The bounds (65 %, 0.08) sit
// outside that; a wrong scale or row lands far beyond them.
class GpuKvFp8 : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuKvFp8, CloseToTheCpuOverTheSameFormat) {
  SKIP_WITHOUT_GPU();
  const std::string name = GetParam();
  ModelOptions o;
  o.kv_dtype = KvCacheDtype::Fp8;
  auto cpu = make_cpu_backend();
  auto gpu = gpu_backend();
  const ModelDir dir = ModelDir::open(fixture_dir(name));
  auto want_model = load_model(dir, *cpu, o);
  auto got_model = load_model(dir, *gpu, o);
  const int vocab = want_model->config().vocab_size;
  TopAgreement agreement;  // on the CPU's top 32
  for (const std::vector<int>& ids : fixture_sequences(name)) {
    const std::vector<float> want = score_tokens(*want_model, *cpu, ids);
    const std::vector<float> got = score_tokens(*got_model, *gpu, ids);
    ASSERT_EQ(got.size(), want.size());
    const float max_ref = max_abs(want);
    for (size_t r = 0; r < want.size() / vocab; ++r) {
      const float* w = want.data() + r * vocab;
      std::vector<int> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 32, order.end(), [&](int a, int b) { return w[a] > w[b]; });
      order.resize(32);
      std::vector<float> top_logits;
      for (int id : order) top_logits.push_back(w[id]);
      agreement.add(got.data() + r * vocab, vocab, order, top_logits, max_ref);
    }
  }
  agreement.expect(name + ", fp8 cache", 0.08f, 0.65);
}

INSTANTIATE_TEST_SUITE_P(GpuFixtures, GpuKvFp8, ::testing::Values("ds3-tiny", "ds2-lite-tiny"), fixture_test_name);

class GpuModel : public ::testing::TestWithParam<std::string> {};

// The batching and decode tests below hold MLA to its absorbed form: under auto a batch of
// prompts may run expanded where each alone runs absorbed (and decode always does), and the two
// forms' bf16 roundings differ enough to flip the tiny fixtures' near-tied expert choices (8.9
// against a 0.2 bound on ds3-tiny). The forms are checked against each other in float32
// (tests/model/mla_prefill_test.cpp) and each against the reference above.
const ModelOptions kAbsorbed{MlaPrefill::Absorbed};

TEST_P(GpuModel, BatchedSequencesEqualEachAlone) {
  SKIP_WITHOUT_GPU();
  const std::string name = GetParam();
  auto backend = gpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, kAbsorbed);
  const int vocab = model->config().vocab_size;
  std::vector<std::vector<int>> seqs = fixture_sequences(name);
  seqs.resize(std::min<size_t>(seqs.size(), 3));
  ASSERT_GE(seqs.size(), 2u);
  std::vector<std::pair<int, std::vector<int>>> work;
  for (size_t i = 0; i < seqs.size(); ++i) work.emplace_back(static_cast<int>(i), seqs[i]);
  PagedRunner runner(*model, *backend, 64);
  std::vector<float> batched = runner.step(work);
  size_t row = 0;
  for (const auto& ids : seqs) {
    std::vector<float> solo = score_tokens(*model, *backend, ids);
    expect_rows_close(batched, row, solo, 0, ids.size(), vocab, 1e-2f,
                      name + ": sequence of " + std::to_string(ids.size()) + " tokens, batched vs alone");
    row += ids.size();
  }
}

TEST_P(GpuModel, DecodeStepsMatchOnePrefill) {
  SKIP_WITHOUT_GPU();
  const std::string name = GetParam();
  auto backend = gpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, kAbsorbed);
  const int vocab = model->config().vocab_size, steps = 4;
  std::vector<std::vector<int>> seqs = fixture_sequences(name);
  seqs.resize(2);
  std::vector<std::vector<float>> full;
  for (const auto& ids : seqs) full.push_back(score_tokens(*model, *backend, ids));
  // Prefill both but their last `steps` tokens, then decode both together one token at a time.
  PagedRunner runner(*model, *backend, 64);
  std::vector<std::pair<int, std::vector<int>>> prefill;
  for (int i = 0; i < 2; ++i) prefill.emplace_back(i, std::vector<int>(seqs[i].begin(), seqs[i].end() - steps));
  runner.step(prefill);
  for (int s = steps; s > 0; --s) {
    std::vector<float> got = runner.step({{0, {seqs[0].end()[-s]}}, {1, {seqs[1].end()[-s]}}});
    for (int i = 0; i < 2; ++i)
      expect_rows_close(got, i, full[i], seqs[i].size() - s, 1, vocab, 2e-2f,
                        name + ": sequence " + std::to_string(i) + ", decode of position " +
                            std::to_string(seqs[i].size() - s));
  }
}

INSTANTIATE_TEST_SUITE_P(GpuFixtures, GpuModel, ::testing::ValuesIn(all_fixtures()), fixture_test_name);

namespace {

using Work = std::vector<std::pair<int, std::vector<int>>>;  // (sequence, new tokens) of a step

// Two copies of a fixture's model, one replaying recorded steps (`drafts`: verification buckets
// recorded too), fed the same five prefilled sequences, then `steps` steps of work(step, vocab):
// every new token's logits agree. Each copy has its own backend, so the eager one's scratch
// buffers never invalidate the recordings.
void expect_recorded_steps_equal_eager(const std::string& name, bool drafts, int steps,
                                       const std::function<Work(int, int)>& work) {
  auto backend = gpu_backend(), graph_backend = gpu_backend();
  auto eager = load_model(ModelDir::open(fixture_dir(name)), *backend);
  auto graphed = load_model(ModelDir::open(fixture_dir(name)), *graph_backend);
  const int vocab = eager->config().vocab_size;
  std::vector<std::vector<int>> seqs = fixture_sequences(name);
  PagedRunner a(*eager, *backend, 128), b(*graphed, *graph_backend, 128);
  graphed->record_decode_steps(8, b.cache(), drafts);
  Work prefill;
  for (int i = 0; i < 5; ++i) prefill.emplace_back(i, seqs[i % seqs.size()]);
  a.step(prefill);
  b.step(prefill);
  for (int s = 0; s < steps; ++s) {
    const Work w = work(s, vocab);
    size_t rows = 0;
    for (const auto& [id, tokens] : w) rows += tokens.size();
    const std::vector<float> want = a.step(w), got = b.step(w);
    ASSERT_EQ(got.size(), want.size()) << name << ": step " << s;
    expect_rows_close(got, 0, want, 0, rows, vocab, 1e-2f,
                      name + ": step " + std::to_string(s) + " of " + std::to_string(w.size()) + " sequences");
  }
}

}  // namespace

// Decode steps replayed from CUDA graphs (padded to their bucket) against the same steps run op
// by op: across block boundaries and 64-key attention tiles (the recordings were made on padding
// alone, with contexts of one key), and as the batch shrinks from 5 sequences (bucket 8) to 3
// (bucket 4) to 1.
TEST_P(GpuModel, RecordedDecodeStepsEqualEager) {
  SKIP_WITHOUT_GPU();
  expect_recorded_steps_equal_eager(GetParam(), false, 24, [](int s, int vocab) {
    Work w;
    const int live = s < 10 ? 5 : s < 18 ? 3 : 1;
    for (int i = 0; i < live; ++i) w.push_back({i, {(7 * s + 13 * i) % vocab}});
    return w;
  });
}

// Verification steps (a sequence's token and its drafts, a logit row each) replay buckets of
// 2-8 tokens a sequence, each sequence padded at its last position: every real row against an
// eager step, with widths mixed in one step and contexts crossing 16-key blocks.
TEST_P(GpuModel, RecordedDraftStepsEqualEager) {
  SKIP_WITHOUT_GPU();
  expect_recorded_steps_equal_eager(GetParam(), true, 12, [](int s, int vocab) {
    Work w;
    const int live = s < 6 ? 5 : s < 10 ? 3 : 1;
    for (int i = 0; i < live; ++i) {
      std::vector<int> tokens(1 + (s + 2 * i) % 8);  // 1 to 8 tokens
      for (size_t j = 0; j < tokens.size(); ++j) tokens[j] = static_cast<int>((7 * s + 13 * i + 3 * j) % vocab);
      w.emplace_back(i, std::move(tokens));
    }
    return w;
  });
}

// Proposes the tokens of known sequences after any prefix of them (every fifth one wrong).
class KnownDrafter final : public Drafter {
 public:
  explicit KnownDrafter(std::vector<std::vector<int>> seqs) : seqs_(std::move(seqs)) {}
  std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const override {
    for (const auto& s : seqs_) {
      if (s.size() <= tokens.size() || !std::equal(tokens.begin(), tokens.end(), s.begin())) continue;
      std::vector<int> d;
      for (size_t p = tokens.size(); p < s.size() && static_cast<int>(d.size()) < std::min(max_tokens, 4); ++p)
        d.push_back(p % 5 == 0 ? s[p] ^ 1 : s[p]);
      return d;
    }
    return {};
  }

 private:
  std::vector<std::vector<int>> seqs_;
};

// Speculative decoding on the GPU (verification steps run op by op beside recorded decode
// steps): drafts are accepted, and every token is the greedy one of the model's logits for its
// prefix, within bf16 noise (the steps' products run at other row counts than plain decode, so
// their roundings differ and exact equality with a run without drafts is not expected; on the
// MoE fixtures that noise can flip near-tied experts, the 0.18 envelope of
// expect_bf16_close_to_reference).
TEST_P(GpuModel, SpeculativeTokensAreGreedy) {
  SKIP_WITHOUT_GPU();
  const std::string name = GetParam();
  auto backend = gpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, kAbsorbed);
  const int vocab = model->config().vocab_size;
  std::vector<std::vector<int>> prompts = fixture_sequences(name);
  auto generate = [&](std::shared_ptr<const Drafter> drafter, EngineStats* stats) {
    EngineOptions eo;
    eo.kv_cache_tokens = 2048;
    eo.drafter = std::move(drafter);
    Engine engine(*model, *backend, eo);
    std::map<uint64_t, std::vector<int>> out;
    std::mutex mu;
    std::vector<uint64_t> ids;
    for (const auto& p : prompts) {
      GenerationRequest r;
      r.prompt = p;
      r.max_tokens = 16;
      r.sampling.temperature = 0.0f;
      r.ignore_eos = true;
      ids.push_back(engine.submit(r, [&](const TokenEvent& ev) {
        std::lock_guard lock(mu);
        if (ev.token >= 0) out[ev.request_id].push_back(ev.token);
        return true;
      }));
    }
    engine.wait_idle();
    if (stats) *stats = engine.stats();
    std::vector<std::vector<int>> seqs;
    for (size_t i = 0; i < ids.size(); ++i) {
      seqs.push_back(prompts[i]);
      seqs.back().insert(seqs.back().end(), out[ids[i]].begin(), out[ids[i]].end());
    }
    return seqs;
  };
  EngineStats stats;
  const auto seqs = generate(std::make_shared<KnownDrafter>(generate(nullptr, nullptr)), &stats);
  EXPECT_GT(stats.accepted_draft_tokens, 0) << name;
  const float tol = model->config().n_routed_experts > 0 ? 0.2f : 0.05f;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::vector<float> logits = score_tokens(*model, *backend, seqs[i]);
    for (size_t p = prompts[i].size(); p < seqs[i].size(); ++p) {
      const float* row = logits.data() + (p - 1) * vocab;
      float top = row[0], scale = 0.0f;
      for (int v = 0; v < vocab; ++v) top = std::max(top, row[v]), scale = std::max(scale, std::fabs(row[v]));
      EXPECT_GE(row[seqs[i][p]], top - tol * scale) << name << ": sequence " << i << ", position " << p;
    }
  }
}

// Tensor parallelism over two GPUs (NCCL): every fixture split in two stays within the bf16
// envelope of the reference, and the engine's greedy tokens replayed from CUDA graphs (the
// all-reduces recorded with the rest) equal those of eager steps. Needs 2 GPUs.
class GpuTensorParallel : public ::testing::TestWithParam<std::string> {};

static int gpu_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

// The fixture on cuda:0 and cuda:1.
static LoadedModel load_on_two_gpus(const std::string& name, bool expert_parallel = false) {
  LoadOptions o;
  o.device = "cuda";
  o.tensor_parallel = 2;
  o.model.expert_parallel = expert_parallel;
  return load_for_generation(fixture_dir(name), o);
}

TEST_P(GpuTensorParallel, TwoGpusAsCloseAsBf16Allows) {
  if (gpu_count() < 2) GTEST_SKIP() << "needs 2 GPUs";
  LoadedModel m = load_on_two_gpus(GetParam());
  expect_bf16_close_to_reference(GetParam(), *m.model, *m.backend);
  if (m.model->config().n_routed_experts == 0) return;
  LoadedModel experts = load_on_two_gpus(GetParam(), /*expert_parallel=*/true);
  expect_bf16_close_to_reference(GetParam(), *experts.model, *experts.backend);
}

TEST_P(GpuTensorParallel, RecordedGreedyTokensEqualEager) {
  if (gpu_count() < 2) GTEST_SKIP() << "needs 2 GPUs";
  LoadedModel m = load_on_two_gpus(GetParam());
  auto run = [&](bool graphs) {
    EngineOptions eo;
    eo.kv_cache_tokens = 2048;
    eo.cuda_graphs = graphs;
    Engine engine(*m.model, *m.backend, eo);
    std::map<uint64_t, std::vector<int>> tokens;
    std::mutex mu;
    for (const auto& ids : fixture_sequences(GetParam())) {
      GenerationRequest r;
      r.prompt = ids;
      r.max_tokens = 8;
      r.sampling.temperature = 0.0f;
      r.ignore_eos = true;
      engine.submit(r, [&](const TokenEvent& ev) {
        std::lock_guard lock(mu);
        if (ev.token >= 0) tokens[ev.request_id].push_back(ev.token);
        return true;
      });
    }
    engine.wait_idle();
    std::vector<std::vector<int>> out;
    for (auto& [id, t] : tokens) out.push_back(t);
    return out;
  };
  const auto eager = run(false);
  EXPECT_EQ(run(true), eager);
  EXPECT_FALSE(eager.empty());
}

INSTANTIATE_TEST_SUITE_P(GpuFixtures, GpuTensorParallel, ::testing::ValuesIn(all_fixtures()), fixture_test_name);
