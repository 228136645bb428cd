// Streaming detokenization never splits a UTF-8 character and adds up to decode().
#include <gtest/gtest.h>

#include "fixtures.h"
#include "text/incremental_detokenizer.h"
#include "text/utf8.h"

using namespace dsinfer;
using dsinfer::testing::fixture_tokenizer;

namespace {

// Pushes ids one at a time; every piece must be valid UTF-8 on its own.
std::string stream(const Tokenizer& tok, const std::vector<int>& ids, bool skip_special = false) {
  IncrementalDetokenizer detok(tok, skip_special);
  std::string all;
  for (int id : ids) {
    std::string piece = detok.push(id);
    EXPECT_EQ(utf8_lossy(piece), piece) << "half a character emitted for id " << id;
    all += piece;
  }
  return all + detok.flush();
}

TEST(IncrementalDetokenizer, MultibyteCharactersSplitAcrossTokensWaitUntilComplete) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const std::string text : {"emoji 😀🚀 and accents: café", "深度求索的推理系统如何降低显存占用？", "日本語のテキスト"}) {
      std::vector<int> ids = tok.encode(text, false);
      EXPECT_EQ(stream(tok, ids), text) << name;
    }
  }
}

TEST(IncrementalDetokenizer, EmojiBytesArriveInSeveralTokens) {
  // Llama-3 spells 😀 (F0 9F 98 80) as more than one byte-level token: the first pushes
  // must hold the bytes back and the last must release the whole character.
  const Tokenizer& tok = fixture_tokenizer("llama3");
  std::vector<int> ids = tok.encode("😀", false);
  ASSERT_GT(ids.size(), 1u);
  IncrementalDetokenizer detok(tok);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(detok.push(ids[i]), "");
  EXPECT_EQ(detok.push(ids.back()), "😀");
  EXPECT_EQ(detok.flush(), "");
}

TEST(IncrementalDetokenizer, MatchesDecodeOnEveryFixtureCase) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const auto& c : dsinfer::testing::tokenizer_refs()["tokenizers"][name]["cases"]) {
      std::vector<int> ids = c["ids"];
      EXPECT_EQ(stream(tok, ids), tok.decode(ids, false)) << name;
    }
  }
}

TEST(IncrementalDetokenizer, AnUnfinishedCharacterBecomesReplacementOnFlush) {
  const Tokenizer& tok = fixture_tokenizer("llama3");
  std::vector<int> ids = tok.encode("😀", false);
  ids.pop_back();
  IncrementalDetokenizer detok(tok);
  std::string text;
  for (int id : ids) text += detok.push(id);
  EXPECT_EQ(text, "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode(ids, false), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, SpecialTokensAreKeptOrSkipped) {
  const Tokenizer& tok = fixture_tokenizer("qwen");
  std::vector<int> ids = tok.encode("<|im_start|>user\nHi<|im_end|>", false);
  EXPECT_EQ(stream(tok, ids), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(stream(tok, ids, true), "user\nHi");
  EXPECT_EQ(tok.decode(ids, true), "user\nHi");
}

TEST(IncrementalDetokenizer, IdsOutsideTheTokenizerAreSkippedAsHuggingFaceDoes) {
  // The model's embedding table can be larger than the tokenizer (Qwen: 151936 vs 151669).
  const Tokenizer& tok = fixture_tokenizer("qwen");
  EXPECT_EQ(stream(tok, {9707, 151900, 0}), tok.decode({9707, 0}, false));
  EXPECT_EQ(tok.token_text(151900), "");
}

}  // namespace
