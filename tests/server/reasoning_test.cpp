// R1-style reasoning end to end: a chat template that opens <think> in the prompt turns the
// parser on by default, and the generated text (inside the open block) comes back as
// reasoning_content, streamed and not.
#include <filesystem>

#include "server_process.h"
#include "../temp_path.h"

using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

// The generation prompt of DeepSeek-R1's template (and its distills) ends with "<think>\n".
const char* kR1Template =
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}";

// ds3-tiny (DeepSeek-V3 tokenizer) with an R1 chat template beside it.
std::string r1_model_dir() {
  static const TempPath model("r1_tiny");  // removed when the test process exits
  const fs::path& dir = model.path();
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    if (!fs::exists(dir / f)) fs::create_symlink(fs::path(fixture_dir("ds3-tiny")) / f, dir / f);
  std::ofstream(dir / "chat_template.jinja") << kR1Template;
  return dir.string();
}

json chat(bool stream) {
  return {{"messages", {{{"role", "user"}, {"content", "Why is the sky blue?"}}}}, {"max_tokens", 16},
          {"temperature", 0}, {"ignore_eos", true}, {"stream", stream}};
}

TEST(Reasoning, TemplateThatOpensThinkSplitsReasoningByDefault) {
  ServerProcess s(r1_model_dir());
  ASSERT_TRUE(s.ready());
  auto full = s.post("/v1/chat/completions", chat(false));
  ASSERT_TRUE(full);
  ASSERT_EQ(full->status, 200) << full->body;
  const json message = json::parse(full->body)["choices"][0]["message"];
  // The random model never closes the block: everything it wrote is reasoning.
  ASSERT_TRUE(message["reasoning_content"].is_string()) << message.dump();
  EXPECT_FALSE(message["reasoning_content"].get<std::string>().empty());
  EXPECT_EQ(message["content"], "");
  auto stream = s.post("/v1/chat/completions", chat(true));
  ASSERT_TRUE(stream);
  std::vector<json> events = sse_events(stream->body);
  EXPECT_EQ(streamed_text(events, "reasoning_content"), message["reasoning_content"]);
  EXPECT_EQ(streamed_text(events, "content"), "");
}

TEST(Reasoning, ParserNoneReturnsTheRawText) {
  ServerProcess s(r1_model_dir(), {"--reasoning-parser", "none"});
  ASSERT_TRUE(s.ready());
  auto full = s.post("/v1/chat/completions", chat(false));
  ASSERT_TRUE(full);
  const json message = json::parse(full->body)["choices"][0]["message"];
  EXPECT_FALSE(message.contains("reasoning_content"));
  EXPECT_FALSE(message["content"].get<std::string>().empty());
}

}  // namespace
