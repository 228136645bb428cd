// The fixtures' real chat templates against transformers' apply_chat_template renderings.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "text/chat_template.h"

using namespace dsinfer;
using dsinfer::testing::fixture_tokenizer;
using dsinfer::testing::tokenizer_config_of;
using dsinfer::testing::tokenizer_refs;

namespace {

TEST(ChatTemplateRefs, RenderingsMatchTransformers) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    ChatTemplate t = ChatTemplate::from_tokenizer_config(tokenizer_config_of(name));
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"])
      EXPECT_EQ(t.render(c["messages"], true), c["rendered"].get<std::string>()) << name;
  }
}

TEST(ChatTemplateRefs, TokenizedRenderingsMatchTransformers) {
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"}) {
    ChatTemplate t = ChatTemplate::from_tokenizer_config(tokenizer_config_of(name));
    for (const auto& c : tokenizer_refs()["tokenizers"][name]["chat"])
      EXPECT_EQ(fixture_tokenizer(name).encode(t.render(c["messages"], true), false), c["ids"].get<std::vector<int>>()) << name;
  }
}

TEST(ChatTemplateRefs, FixtureTemplatesDoNotOpenThinkBlocks) {
  // DeepSeek-V3's and Llama-3's prompts end at the assistant header; Qwen3's closes its think
  // block only when thinking is disabled, which is not the default.
  for (const std::string name : {"deepseek_v3", "qwen", "llama3"})
    EXPECT_FALSE(ChatTemplate::from_tokenizer_config(tokenizer_config_of(name)).opens_think_block()) << name;
}

}  // namespace
