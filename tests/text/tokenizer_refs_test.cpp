// The three fixture tokenizers against HF tokenizers' ids and decoded text.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "io/json_file.h"

using namespace dsinfer;
using dsinfer::testing::fixture_tokenizer;
using dsinfer::testing::tokenizer_refs;

namespace {

std::vector<std::string> tokenizer_names() { return {"deepseek_v3", "qwen", "llama3"}; }

TEST(TokenizerRefs, EncodeMatchesHuggingFace) {
  for (const std::string& name : tokenizer_names()) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["cases"]) {
      std::string text = c["text"];
      EXPECT_EQ(tok.encode(text, false), c["ids"].get<std::vector<int>>()) << name << ": " << text;
    }
  }
}

TEST(TokenizerRefs, DecodeMatchesHuggingFace) {
  for (const std::string& name : tokenizer_names()) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["cases"])
      EXPECT_EQ(tok.decode(c["ids"].get<std::vector<int>>(), false), c["decoded"].get<std::string>()) << name;
  }
}

TEST(TokenizerRefs, ChatIdsEncodeTheRendering) {
  for (const std::string& name : tokenizer_names()) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"])
      EXPECT_EQ(tok.encode(c["rendered"].get<std::string>(), false), c["ids"].get<std::vector<int>>()) << name;
  }
}

// More strings (normalization, scripts, whitespace, added tokens in context), checked against
// HF tokenizers once and stored beside this test.
TEST(TokenizerRefs, ExtraStringsMatchHuggingFace) {
  nlohmann::json refs = read_json_file(std::string(DSINFER_SOURCE_DIR) + "/tests/text/tokenizer_extra_refs.json");
  for (const std::string& name : tokenizer_names()) {
    const Tokenizer& tok = fixture_tokenizer(name);
    for (const auto& c : refs["tokenizers"][name]) {
      std::string text = c["text"];
      std::vector<int> ids = c["ids"];
      EXPECT_EQ(tok.encode(text, false), ids) << name << ": " << text;
      EXPECT_EQ(tok.encode(text, true), c["ids_with_special"].get<std::vector<int>>()) << name << ": " << text;
      EXPECT_EQ(tok.decode(ids, false), c["decoded"].get<std::string>()) << name << ": " << text;
      EXPECT_EQ(tok.decode(ids, true), c["decoded_skip"].get<std::string>()) << name << ": " << text;
    }
  }
}

TEST(TokenizerRefs, VocabularyFacts) {
  const Tokenizer& ds3 = fixture_tokenizer("deepseek_v3");
  EXPECT_EQ(ds3.vocab_size(), 128815);
  EXPECT_EQ(ds3.bos_id(), 0);
  EXPECT_EQ(ds3.eos_id(), 1);
  EXPECT_TRUE(ds3.is_special(0));
  EXPECT_FALSE(ds3.is_special(128803));  // <｜User｜> is an added, non-special token
  EXPECT_EQ(ds3.token_to_id("<｜User｜>"), 128803);
  const Tokenizer& qwen = fixture_tokenizer("qwen");
  EXPECT_EQ(qwen.vocab_size(), 151669);
  EXPECT_EQ(qwen.bos_id(), std::nullopt);
  EXPECT_EQ(qwen.eos_id(), 151645);
  EXPECT_EQ(qwen.token_to_id("Ġthe"), 279);
  EXPECT_EQ(qwen.token_text(279), " the");
  const Tokenizer& llama = fixture_tokenizer("llama3");
  EXPECT_EQ(llama.vocab_size(), 128256);
  EXPECT_EQ(llama.bos_id(), 128000);
  EXPECT_EQ(llama.eos_id(), 128009);
  EXPECT_EQ(llama.encode("Hi", true).front(), 128000);
}

TEST(TokenizerRefs, LongTextEncodesLikeItsPieces) {
  // The per-word cache must not change results: the second encoding (served from the cache)
  // equals the first, and the ids decode back to the text.
  const Tokenizer& tok = fixture_tokenizer("qwen");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "The quick brown fox jumps over the lazy dog. 深度求索 😀\n";
  std::vector<int> first = tok.encode(text, false), second = tok.encode(text, false);
  EXPECT_EQ(first, second);
  EXPECT_EQ(tok.decode(first, false), text);
}

}  // namespace
