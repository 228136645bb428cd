// DeepSeek-V3's multi-token-prediction layer on the GPU: its logits against the CPU reference, and
// its drafts from recorded decode steps (whose hidden states are the recording's logit rows)
// against those of eager steps.
#include <cmath>
#include <map>
#include <mutex>

#include "../mtp_checkpoint_util.h"
#include "../temp_path.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/mtp_batch.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

constexpr int kBlock = 16;

// The MTP layer's logits for every position of `tokens` but the last, after the main model's
// prefill of the same positions.
std::vector<float> mtp_logits(Backend& backend, const std::string& dir, const std::vector<int>& tokens) {
  ModelOptions o;
  o.mtp = true;
  auto model = load_model(ModelDir::open(dir), backend, o);
  KvCache cache(backend, model->kv_spec(), 8, kBlock);
  Sequence s;
  s.tokens = tokens;
  s.blocks = {3, 1, 6, 0};
  const int n = static_cast<int>(tokens.size()) - 1;
  ForwardBatch step;
  step.block_size = kBlock;
  step.seqs.push_back(SeqSlice{0, n, n, s.blocks});
  for (int p = 0; p < n; ++p) {
    step.tokens.push_back(tokens[p]);
    step.positions.push_back(p);
    step.slots.push_back(s.blocks[p / kBlock] * kBlock + p % kBlock);
  }
  step.logit_rows = {n - 1};
  model->forward(step, cache);
  MtpBatch m = mtp_batch({{&s, 0, n, 0, true}}, kBlock);
  m.batch.logit_rows.clear();
  for (int r = 0; r < n; ++r) m.batch.logit_rows.push_back(r);
  const Tensor logits = model->mtp_forward(m.batch, m.hidden_rows, cache);
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend.copy_to_host(logits, out.data());
  return out;
}

std::vector<int> prompt(int n) {
  std::vector<int> ids = fixture_ref("ds3-tiny")["sequences"][1]["input_ids"].get<std::vector<int>>();
  ids.resize(static_cast<size_t>(n));
  return ids;
}

}  // namespace

// EmbeddingOnly leaves the decoder layer out (bf16 rounding alone); RandomProjection adds the
// hidden half of eh_proj's input; RandomSoft runs the whole layer, its matrices a quarter of the
// fixture's. Both random kinds scale the main model's matrices by 1/16: its hidden states are
// the layer's input, and at the fixture's scale (rms-0.7 weights: attention and routing nearly
// argmax) bf16 parts them at some positions before the layer runs (the H100's rows 7 and 11
// parted by their whole largest logit with the layer silenced, session 38; on the CPU, the main
// model's input jittered by 0.4 / 1 % moves rows 11, 27, 29 / 7, 11, 12, 23, 27, 29 of the
// silenced layer by more than 0.25 of their largest logit, none at 1/16: worst 0.007 / 0.016,
// 0.048 at 3 %). Routing stays discrete at any scale: the soft layer's row 2 routes apart from
// a 1 % jitter on (0.52), so each random kind may part one row; a wrong row, cache or position
// parts many, and moves the median.
TEST(GpuMtp, LogitsAsCloseAsBf16Allows) {
  SKIP_WITHOUT_GPU();
  struct Kind {
    MtpWeights weights;
    const char* what;
    float tol;     // of a row's largest |logit|
    int outliers;  // rows allowed beyond tol
    float median;  // bound on the median row's error
  };
  for (const Kind& k : {Kind{MtpWeights::EmbeddingOnly, "embedding-only MTP layer", 0.02f, 0, 0.02f},
                        Kind{MtpWeights::RandomProjection, "random eh_proj, layer silenced", 0.25f, 1, 0.05f},
                        Kind{MtpWeights::RandomSoft, "random MTP layer, matrices / 4", 0.25f, 1, 0.05f}}) {
    TempPath dir("gpu_mtp");
    make_mtp_checkpoint("ds3-tiny", k.weights, dir.path());
    auto cpu = make_cpu_backend();
    auto gpu = make_backend(Device{DeviceKind::CUDA, 0});
    const std::vector<int> tokens = prompt(40);
    const std::vector<float> got = mtp_logits(*gpu, dir.path().string(), tokens),
                             want = mtp_logits(*cpu, dir.path().string(), tokens);
    ASSERT_EQ(got.size(), want.size()) << k.what;
    const size_t rows = tokens.size() - 1, vocab = want.size() / rows;
    std::vector<float> row_err(rows);  // max |diff| of a row over its largest |logit|
    int over = 0;
    for (size_t r = 0; r < rows; ++r) {
      float err = 0, ref = 0;
      for (size_t v = 0; v < vocab; ++v) {
        err = std::max(err, std::fabs(got[r * vocab + v] - want[r * vocab + v]));
        ref = std::max(ref, std::fabs(want[r * vocab + v]));
      }
      row_err[r] = err / ref;
      if (row_err[r] > k.tol) {
        ++over;
        std::printf("%s: position %zu parts by %.3f of its largest logit\n", k.what, r, row_err[r]);
      }
    }
    EXPECT_LE(over, k.outliers) << k.what << ": " << over << " of " << rows << " positions beyond " << k.tol;
    std::nth_element(row_err.begin(), row_err.begin() + rows / 2, row_err.end());
    EXPECT_LE(row_err[rows / 2], k.median) << k.what << ": median row error";
    std::printf("%s: median row error %.4f of the largest logit\n", k.what, row_err[rows / 2]);
  }
}

// HiddenOnly drafts repeat the last token, so some are accepted; Random ones run the whole layer
// (its cache reads, positions and tokens).
TEST(GpuMtp, RecordedDecodeStepsDraftAsEagerOnes) {
  SKIP_WITHOUT_GPU();
  for (MtpWeights kind : {MtpWeights::HiddenOnly, MtpWeights::Random}) {
    TempPath dir("gpu_mtp_graphs");
    make_mtp_checkpoint("ds3-tiny", kind, dir.path());
    auto gpu = make_backend(Device{DeviceKind::CUDA, 0});
    ModelOptions mo;
    mo.mtp = true;
    auto model = load_model(ModelDir::open(dir.path().string()), *gpu, mo);
    auto run = [&](bool graphs, EngineStats& stats) {
      EngineOptions eo;
      eo.kv_cache_tokens = 2048;
      eo.cuda_graphs = graphs;
      eo.mtp_drafts = 2;
      Engine engine(*model, *gpu, eo);
      std::mutex mu;
      std::map<uint64_t, std::vector<int>> out;
      // One at a time: a batch's drafts depend on when its requests arrive.
      for (const std::vector<int>& p : {prompt(5), prompt(31), std::vector<int>{3}, std::vector<int>{77}}) {
        GenerationRequest r;
        r.prompt = p;
        r.max_tokens = 40;
        r.sampling.temperature = 0.0f;
        r.ignore_eos = true;
        engine.submit(r, [&](const TokenEvent& ev) {
          std::lock_guard lock(mu);
          if (ev.token >= 0) out[ev.request_id].push_back(ev.token);
          return true;
        });
        engine.wait_idle();
      }
      stats = engine.stats();
      return out;
    };
    EngineStats recorded, eager;
    EXPECT_EQ(run(true, recorded), run(false, eager));
    EXPECT_GT(recorded.draft_tokens, 0);
    EXPECT_EQ(recorded.draft_tokens, eager.draft_tokens);
    EXPECT_EQ(recorded.accepted_draft_tokens, eager.accepted_draft_tokens);
    std::printf("MTP drafts (%s layer): %lld of %lld accepted\n", kind == MtpWeights::Random ? "random" : "repeating",
                static_cast<long long>(recorded.accepted_draft_tokens), static_cast<long long>(recorded.draft_tokens));
  }
}

// A prompt longer than the step's budget runs in chunks that sample nothing: steps without a
// logit row, in the main pass and in the MTP pass after it.
TEST(GpuMtp, PromptChunksThatSampleNothing) {
  SKIP_WITHOUT_GPU();
  TempPath dir("gpu_mtp_chunks");
  make_mtp_checkpoint("ds3-tiny", MtpWeights::Random, dir.path());
  auto gpu = make_backend(Device{DeviceKind::CUDA, 0});
  ModelOptions mo;
  mo.mtp = true;
  auto model = load_model(ModelDir::open(dir.path().string()), *gpu, mo);
  for (int drafts : {0, 1}) {
    EngineOptions eo;
    eo.kv_cache_tokens = 512;
    eo.max_batched_tokens = 8;
    eo.mtp_drafts = drafts;
    Engine engine(*model, *gpu, eo);
    GenerationRequest r;
    r.prompt = prompt(31);
    r.max_tokens = 6;
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    std::vector<int> out;
    FinishReason reason = FinishReason::None;
    engine.submit(r, [&](const TokenEvent& ev) {
      if (ev.token >= 0) out.push_back(ev.token);
      if (ev.finished) reason = ev.reason;
      return true;
    });
    engine.wait_idle();
    EXPECT_EQ(out.size(), 6u) << drafts;
    EXPECT_EQ(reason, FinishReason::Length) << drafts;
  }
}
