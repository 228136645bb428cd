// Structured outputs in the engine: the vocabulary trie finds exactly the tokens a grammar state
// takes, and generated outputs (greedy, sampled, with drafts) are texts of the grammar that end
// the request once nothing more can follow.
#include "runtime/output_grammar.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "engine_test_util.h"
#include "io/model_dir.h"
#include "runtime/engine.h"
#include "runtime/ngram_drafter.h"
#include "text/json_schema_grammar.h"
#include "text/tokenizer.h"

using namespace dsinfer;
using namespace dsinfer::testing;
using ojson = nlohmann::ordered_json;

namespace {

const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::from_model_dir(ModelDir::open(fixture_dir("qwen2-tiny")));
  return t;
}

const std::shared_ptr<const TokenTrie>& trie() {
  static const auto t = std::make_shared<const TokenTrie>(tokenizer());
  return t;
}

// Every text of it is short, so every output ends within its max_tokens.
const char* kSchema = R"({"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]},
  "size": {"enum": [1, 2, 3]}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
  "required": ["color"]})";

std::shared_ptr<const OutputGrammar> schema_grammar(std::optional<int> after = std::nullopt) {
  const ojson schema = ojson::parse(kSchema);
  return std::make_shared<OutputGrammar>(std::make_shared<const Grammar>(json_schema_grammar(schema)), trie(), after);
}

}  // namespace

// Inside a string, subtrees of the trie whose bytes all lead the state back to itself are taken
// whole; the brute force here checks every token's bytes one by one.
TEST(TokenTrie, FindsExactlyTheTokensAStateTakes) {
  const Grammar g = json_object_grammar();
  std::vector<GrammarState> states(6, GrammarState(g));
  ASSERT_TRUE(states[1].accept(R"({"ke)"));                 // inside a key
  ASSERT_TRUE(states[2].accept(R"({"key": [1, 2)"));        // a number in an array
  ASSERT_TRUE(states[3].accept(R"({"key": "some text )"));  // inside a string value
  ASSERT_TRUE(states[4].accept(R"({"key": "a\)"));          // after a backslash
  ASSERT_TRUE(states[5].accept(R"({"key": "\u00)"));        // inside a \u escape
  for (size_t i = 0; i < states.size(); ++i) {
    std::vector<char> got;
    trie()->allowed(states[i], got);
    int count = 0;
    for (int id = 0; id < trie()->vocab_size(); ++id) {
      GrammarState s = states[i];
      const std::string& b = trie()->bytes(id);
      const bool want = !b.empty() && s.accept(b);
      ASSERT_EQ(got[id] != 0, want) << "state " << i << ", token " << id << " '" << b << "'";
      count += want;
    }
    EXPECT_GT(count, 0) << i;
  }
}

TEST(OutputGrammar, MasksUntilItsStartTokenThenHoldsTheText) {
  const auto g = schema_grammar(/*after=*/42);
  OutputGrammarState s = g->start();
  std::vector<float> logits(static_cast<size_t>(trie()->vocab_size()), 1.0f);
  EXPECT_EQ(g->mask(s, logits.data(), trie()->vocab_size(), {7}), trie()->vocab_size());  // free before token 42
  g->advance(s, 5, {7});
  EXPECT_FALSE(s.active);
  g->advance(s, 42, {7});
  ASSERT_TRUE(s.active);
  const int left = g->mask(s, logits.data(), trie()->vocab_size(), {7});
  EXPECT_GT(left, 0);
  EXPECT_LT(left, 100);                // "{" with or without whitespace after it
  EXPECT_TRUE(std::isinf(logits[7]));  // no EOS before the text is whole
  EXPECT_THROW(g->advance(s, tokenizer().encode("[", false)[0], {7}), Error);
}

namespace {

struct Output {
  std::vector<int> tokens;
  FinishReason reason = FinishReason::None;
};

std::vector<Output> generate(Model& model, Backend& backend, std::vector<GenerationRequest> reqs, int drafts,
                             EngineStats* stats = nullptr) {
  EngineOptions o;
  o.kv_cache_tokens = 4096;
  o.drafter = make_ngram_drafter({drafts, 1, 3});
  Engine engine(model, backend, o);
  std::mutex mu;
  std::map<uint64_t, Output> out;
  std::vector<uint64_t> ids;
  for (GenerationRequest& r : reqs)
    ids.push_back(engine.submit(std::move(r), [&](const TokenEvent& ev) {
      std::lock_guard lock(mu);
      if (ev.token >= 0) out[ev.request_id].tokens.push_back(ev.token);
      if (ev.finished) out[ev.request_id].reason = ev.reason;
      return true;
    }));
  engine.wait_idle();
  if (stats) *stats = engine.stats();
  std::vector<Output> result;
  for (uint64_t id : ids) result.push_back(out[id]);
  return result;
}

}  // namespace

// The tiny model's random weights would write anything: held to the schema, greedy and sampled
// outputs are objects of it, whole, ended by the grammar, the same with drafts as without.
TEST(OutputGrammar, GeneratedTextIsAWholeTextOfTheSchema) {
  Loaded m("qwen2-tiny");
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 4; ++i) {
    GenerationRequest r;
    r.prompt = tokenizer().encode(i % 2 ? "Describe a ball as JSON:" : "Hello", true);
    r.max_tokens = 200;
    r.sampling.temperature = i < 2 ? 0.0f : 1.0f;
    r.sampling.seed = 11 + i;
    r.sampling.grammar = schema_grammar();
    r.eos_ids = {151643};
    reqs.push_back(std::move(r));
  }
  const std::vector<Output> plain = generate(*m.model, *m.backend, reqs, 0);
  for (const Output& o : plain) {
    const std::string text = tokenizer().decode(o.tokens, true);
    EXPECT_EQ(o.reason, FinishReason::Stop) << text;
    const auto j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text;
    EXPECT_TRUE(j.contains("color")) << text;
    for (auto it = j.begin(); it != j.end(); ++it)
      EXPECT_TRUE(it.key() == "color" || it.key() == "size" || it.key() == "tags") << text;
  }
  // Drafts (prompt lookup: the outputs repeat their whitespace) are checked against the grammar as
  // the model's own tokens are: the same outputs.
  int64_t accepted = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EngineStats stats;
    EXPECT_EQ(generate(*m.model, *m.backend, {reqs[i]}, 3, &stats)[0].tokens, plain[i].tokens) << "request " << i;
    accepted += stats.accepted_draft_tokens;
  }
  EXPECT_GT(accepted, 0);
}

// With the EOS ids barred (ignore_eos, min_tokens) the grammar still ends the output once it is
// closed; and a grammar whose text needs an EOS-only ending is not sampled into garbage.
TEST(OutputGrammar, EndsTheOutputWhenClosedWhateverBarsTheEos) {
  Loaded m("qwen2-tiny");
  for (bool ignore_eos : {true, false}) {
    GenerationRequest r;
    r.prompt = tokenizer().encode("Pick:", true);
    r.max_tokens = 50;
    r.sampling.temperature = 0.0f;
    r.eos_ids = {151643};
    r.ignore_eos = ignore_eos;
    r.min_tokens = ignore_eos ? 0 : 40;
    const ojson choice = ojson::parse(R"({"enum": ["alpha", "beta"]})");
    r.sampling.grammar =
        std::make_shared<OutputGrammar>(std::make_shared<const Grammar>(json_schema_grammar(choice)), trie());
    const Output out = generate(*m.model, *m.backend, {r}, 0)[0];
    const std::string text = tokenizer().decode(out.tokens, true);
    EXPECT_TRUE(text == "\"alpha\"" || text == "\"beta\"") << text;
    EXPECT_EQ(out.reason, FinishReason::Stop) << text;
  }
}

// Masks along a JSON text from one grammar, whose states repeat (inside strings) and come from
// its cache, equal those of a fresh grammar at each prefix, which walks the vocabulary.
TEST(OutputGrammar, MasksOfRepeatedStatesEqualFreshWalks) {
  const auto grammar = std::make_shared<const Grammar>(json_object_grammar());
  const OutputGrammar warm(grammar, trie());
  const std::string text = R"({"name": "a long string value", "list": [1, 22, 333], "ok": true})";
  const int vocab = trie()->vocab_size();
  OutputGrammarState s = warm.start();
  for (size_t i = 0; i <= text.size(); ++i) {
    std::vector<float> got(static_cast<size_t>(vocab), 0.0f), want = got;
    const int left = warm.mask(s, got.data(), vocab, {0});
    EXPECT_EQ(left, OutputGrammar(grammar, trie()).mask(s, want.data(), vocab, {0})) << text.substr(0, i);
    EXPECT_EQ(got, want) << text.substr(0, i);
    if (i < text.size()) ASSERT_TRUE(s.text.accept(text.substr(i, 1)));
  }
}

// The mask's cost at DeepSeek-V3's vocabulary (129k tokens), from four states of JSON mode:
// prints ms a mask, the first from a state (the vocabulary walk) and the repeats (the state's
// cached result), run with --gtest_also_run_disabled_tests; docs/benchmarks.md.
TEST(OutputGrammarBench, DISABLED_MaskAtV3Vocabulary) {
  const Tokenizer v3 = Tokenizer::from_model_dir(ModelDir::open(fixture_dir("ds3-tiny")));
  auto start = std::chrono::steady_clock::now();
  const auto trie = std::make_shared<const TokenTrie>(v3);
  std::printf("trie of %d tokens: %.1f ms\n", trie->vocab_size(),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  const OutputGrammar g(std::make_shared<const Grammar>(json_object_grammar()), trie);
  std::vector<float> logits(static_cast<size_t>(trie->vocab_size()));
  for (const char* prefix : {"", R"({"ke)", R"({"key": [1, 2)", R"({"key": "some text )"}) {
    OutputGrammarState s = g.start();
    ASSERT_TRUE(s.text.accept(prefix));
    const auto time_ms = [&](int repeats, int& left) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < repeats; ++i) left = g.mask(s, logits.data(), trie->vocab_size(), {1});
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / repeats;
    };
    int left = 0;
    const double first = time_ms(1, left), repeat = time_ms(10, left);
    std::printf("after '%s': %d tokens allowed, %.2f ms the first mask, %.2f ms a repeat\n", prefix, left, first,
                repeat);
  }
}
