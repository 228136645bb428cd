// The three fixture tokenizers against HF tokenizers' ids and decoded text.
#include <gtest/gtest.h>

#include "fixtures.h"

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

}  // namespace
