// The chat template of a model (tokenizer_config.json `chat_template`, or a
// chat_template.jinja file beside it), rendered byte-for-byte as transformers'
// apply_chat_template(messages, tokenize=False, ...) renders it.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace dsinfer {

struct ModelDir;
namespace jinja {
class Template;
}

class ChatTemplate {
 public:
  struct Options {
    bool add_generation_prompt = true;
    nlohmann::ordered_json tools = nullptr;           // a list of tool schemas, or null
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more variables, e.g. enable_thinking
  };

  // Reads `chat_template` (a string, or a list of {name, template} where "default" is used)
  // and the special tokens the template may print. Throws when there is no template or it does
  // not parse (the error names the line and column).
  static ChatTemplate from_tokenizer_config(const nlohmann::json& cfg);
  // Prefers the directory's chat_template.jinja (newer transformers save it there).
  static ChatTemplate from_model_dir(const ModelDir& dir);
  // A template from source text with the special tokens of `cfg` (may be null).
  static ChatTemplate from_source(const std::string& source, const std::string& name, const nlohmann::json* cfg);

  std::string render(const nlohmann::json& messages, bool add_generation_prompt) const;
  // Keeps the key order of `messages` and tools, which tojson prints.
  std::string render(const nlohmann::ordered_json& messages, const Options& options) const;

  // True when the generation prompt leaves an open <think> block (R1-style templates end it
  // with "<think>\n"), so generated text starts inside the reasoning part.
  bool opens_think_block() const { return opens_think_; }
  const std::string& source() const { return source_; }

 private:
  void detect_think_block();

  std::shared_ptr<const jinja::Template> template_;
  std::shared_ptr<const jinja::Template> tool_template_;  // a named "tool_use" template, if any
  std::string source_;
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
  bool opens_think_ = false;
};

}  // namespace dsinfer
