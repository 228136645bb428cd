// --kv-dtype fp8 on the CPU reference: the cache holds FP8 latent rows (core/latent_fp8.h), and
// the MLA layers write and read them in every step form (the attention over them against the
// expanded form of their values: tests/backend/mla_absorbed_test.cpp).
#include <algorithm>
#include <cmath>

#include "../fixture_util.h"
#include "../float_compare.h"
#include "../paged_runner.h"
#include "backend/backend.h"
#include "core/error.h"
#include "core/latent_fp8.h"
#include "model/model.h"
#include "model/score.h"

using namespace dsinfer;
using namespace dsinfer::testing;

namespace {

ModelOptions fp8_cache(dsinfer::MlaPrefill form = dsinfer::MlaPrefill::Auto) {
  ModelOptions o;
  o.mla_prefill = form;
  o.kv_dtype = KvCacheDtype::Fp8;
  return o;
}

// The fixture's model over FP8 rows twice: its prefill expanded, and absorbed.
struct PrefillForms {
  std::unique_ptr<Model> expanded, absorbed;
};
PrefillForms load_prefill_forms(const std::string& name, Backend& backend) {
  const ModelDir dir = ModelDir::open(fixture_dir(name));
  return {load_model(dir, backend, fp8_cache(dsinfer::MlaPrefill::Expanded)),
          load_model(dir, backend, fp8_cache(dsinfer::MlaPrefill::Absorbed))};
}

class KvFp8 : public ::testing::TestWithParam<std::string> {};

TEST_P(KvFp8, CacheHoldsLatentRowsOfTheFormat) {
  auto backend = make_cpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(GetParam())), *backend, fp8_cache());
  const ModelConfig& c = model->config();
  const KvCacheSpec spec = model->kv_spec();
  EXPECT_EQ(spec.dtype, DType::U8);
  EXPECT_EQ(spec.k_width, latent_fp8_layout(c.kv_lora_rank, c.qk_rope_head_dim).row_bytes);
  EXPECT_EQ(spec.v_width, 0);
  EXPECT_EQ(spec.bytes_per_token(), static_cast<size_t>(c.num_layers) * spec.k_width);
}

// Every fixture sequence scored in one step and generated token by token over FP8 rows: the two
// write the same rows (to a rounding of their float32 inputs) and so agree closely; both stay
// within e4m3's error of transformers' float32 logits. The tiny fixtures' random weights amplify
// a cache's rounding (their bf16 GPU runs need 2e-2 of the largest |logit|; e4m3's step is 16
// times bf16's), so the bound against transformers is the largest |logit| itself.
TEST_P(KvFp8, PromptAndDecodeStepsAgree) {
  const std::string name = GetParam();
  auto backend = make_cpu_backend();
  auto model = load_model(ModelDir::open(fixture_dir(name)), *backend, fp8_cache());
  const int vocab = model->config().vocab_size;
  const nlohmann::json ref = fixture_ref(name);
  for (const auto& seq : ref["sequences"]) {
    const std::vector<int> ids = seq["input_ids"].get<std::vector<int>>();
    const std::vector<float> want = fixture_logits(name, seq, vocab);
    const size_t first = ids.size() - want.size() / vocab;  // the reference's first logit row
    std::vector<float> prompt = score_tokens(*model, *backend, ids);
    prompt.erase(prompt.begin(), prompt.end() - static_cast<std::ptrdiff_t>(want.size()));
    PagedRunner run(*model, *backend, 64);
    std::vector<float> decode;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::vector<float> row = run.step({{0, {ids[i]}}});
      if (i >= first) decode.insert(decode.end(), row.begin(), row.end());
    }
    ASSERT_EQ(prompt.size(), want.size());
    ASSERT_EQ(decode.size(), want.size());
    EXPECT_LE(max_abs_diff(prompt, decode), 1e-3f * max_abs(want)) << name << ", " << ids.size() << " tokens";
    EXPECT_LE(max_abs_diff(prompt, want), max_abs(want)) << name << ", " << ids.size() << " tokens";
  }
}

// The expanded prefill dequantizes the gathered rows (Backend::dequantize_latent), the absorbed
// one reads them in the attention: over the same FP8 rows the two agree to float32 rounding.
TEST_P(KvFp8, ExpandedEqualsAbsorbedOverTheSameRows) {
  const std::string name = GetParam();
  auto backend = make_cpu_backend();
  const PrefillForms m = load_prefill_forms(name, *backend);
  for (const std::vector<int>& ids : fixture_sequences(name)) {
    const std::vector<float> a = score_tokens(*m.absorbed, *backend, ids);
    const std::vector<float> e = score_tokens(*m.expanded, *backend, ids);
    ASSERT_EQ(a.size(), e.size());
    EXPECT_LE(max_abs_diff(a, e), 1e-4f * max_abs(a)) << name << ", " << ids.size() << " tokens";
  }
}

// The same with every fixture sequence's prompt in one step and then a decode token each, so the
// expanded step gathers the rows of several sequences back to back (a row's bytes, not floats).
TEST_P(KvFp8, ExpandedEqualsAbsorbedWithSequencesSharingAStep) {
  const std::string name = GetParam();
  auto backend = make_cpu_backend();
  const PrefillForms m = load_prefill_forms(name, *backend);
  const std::vector<std::vector<int>> seqs = fixture_sequences(name);
  ASSERT_GE(seqs.size(), 2u);
  auto run = [&](Model& m) {
    PagedRunner r(m, *backend, 64);
    std::vector<std::pair<int, std::vector<int>>> prompts, next;
    for (size_t i = 0; i < seqs.size(); ++i) {
      prompts.emplace_back(static_cast<int>(i), seqs[i]);
      next.emplace_back(static_cast<int>(i), std::vector<int>{seqs[i][0]});
    }
    std::vector<float> out = r.step(prompts);
    const std::vector<float> decode = r.step(next);
    out.insert(out.end(), decode.begin(), decode.end());
    return out;
  };
  const std::vector<float> a = run(*m.absorbed), e = run(*m.expanded);
  ASSERT_EQ(a.size(), e.size());
  EXPECT_LE(max_abs_diff(a, e), 1e-4f * max_abs(a)) << name;
}

INSTANTIATE_TEST_SUITE_P(DeepSeekFixtures, KvFp8, ::testing::Values("ds3-tiny", "ds2-lite-tiny"),
                         fixture_test_name);

TEST(KvFp8Errors, GqaModelsSayWhy) {
  auto backend = make_cpu_backend();
  try {
    load_model(ModelDir::open(fixture_dir("qwen2-tiny")), *backend, fp8_cache());
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--kv-dtype fp8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("MLA"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_kv_cache_dtype("fp8"), KvCacheDtype::Fp8);
  EXPECT_THROW(parse_kv_cache_dtype("fp16"), Error);
}

}  // namespace
