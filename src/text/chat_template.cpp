#include "text/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/model_dir.h"
#include "text/jinja_template.h"

namespace dsinfer {
namespace {

// The special-token variables transformers passes to templates (its special_tokens_map),
// each as its string content; unset ones stay undefined.
nlohmann::ordered_json special_tokens_of(const nlohmann::json* cfg) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (!cfg || !cfg->is_object()) return out;
  auto content = [](const nlohmann::json& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!cfg->contains(key)) continue;
    if (auto s = content((*cfg)[key])) out[key] = *s;
  }
  if (cfg->contains("additional_special_tokens") && (*cfg)["additional_special_tokens"].is_array()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& t : (*cfg)["additional_special_tokens"])
      if (auto s = content(t)) list.push_back(*s);
    out["additional_special_tokens"] = list;
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& name, const nlohmann::json* cfg) {
  ChatTemplate t;
  t.source_ = source;
  t.template_ = std::make_shared<jinja::Template>(source, name);
  t.special_tokens_ = special_tokens_of(cfg);
  t.detect_think_block();
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const nlohmann::json& cfg) {
  const char* where = "tokenizer_config.json chat_template";
  if (!cfg.is_object() || !cfg.contains("chat_template") || cfg["chat_template"].is_null())
    fail("tokenizer_config.json has no chat_template");
  const auto& ct = cfg["chat_template"];
  if (ct.is_string()) return from_source(ct.get<std::string>(), where, &cfg);
  if (!ct.is_array()) fail(where, ": expected a string or a list of {\"name\", \"template\"}");
  // Named templates: "default" renders plain chats, "tool_use" (if present) chats with tools.
  std::string default_source, tool_source;
  for (size_t i = 0; i < ct.size(); ++i) {
    const auto& entry = ct[i];
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
        !entry["template"].is_string())
      fail(where, "[", i, "]: expected {\"name\": string, \"template\": string}");
    if (entry["name"] == "default") default_source = entry["template"];
    if (entry["name"] == "tool_use") tool_source = entry["template"];
  }
  if (default_source.empty()) fail(where, ": no template named \"default\"");
  ChatTemplate t = from_source(default_source, cat(where, "[default]"), &cfg);
  if (!tool_source.empty()) t.tool_template_ = std::make_shared<jinja::Template>(tool_source, cat(where, "[tool_use]"));
  return t;
}

ChatTemplate ChatTemplate::from_model_dir(const ModelDir& dir) {
  std::filesystem::path file = std::filesystem::path(dir.path) / "chat_template.jinja";
  const nlohmann::json* cfg = dir.tokenizer_config ? &*dir.tokenizer_config : nullptr;
  if (std::filesystem::exists(file)) return from_source(read_text_file(file.string()), file.string(), cfg);
  if (!cfg) fail("model directory '", dir.path, "' has neither chat_template.jinja nor tokenizer_config.json");
  try {
    return from_tokenizer_config(*cfg);
  } catch (const Error& e) {
    fail("model directory '", dir.path, "': ", e.what());
  }
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt) const {
  Options options;
  options.add_generation_prompt = add_generation_prompt;
  return render(nlohmann::ordered_json::parse(messages.dump()), options);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const Options& options) const {
  if (!messages.is_array()) fail("chat messages must be a JSON array, got ", messages.type_name());
  if (!options.extra.is_object()) fail("extra chat template variables must be a JSON object");
  std::map<std::string, jinja::Value> vars;
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it)
    vars[it.key()] = jinja::Value::from_json(it.value());
  for (auto it = options.extra.begin(); it != options.extra.end(); ++it) vars[it.key()] = jinja::Value::from_json(it.value());
  vars["messages"] = jinja::Value::from_json(messages);
  vars["add_generation_prompt"] = jinja::Value(options.add_generation_prompt);
  vars["tools"] = jinja::Value::from_json(options.tools);
  vars["documents"] = jinja::Value::none();
  bool with_tools = options.tools.is_array() && !options.tools.empty();
  const jinja::Template& t = with_tools && tool_template_ ? *tool_template_ : *template_;
  return t.render(vars);
}

void ChatTemplate::detect_think_block() {
  // Render a one-message chat with and without the generation prompt; the difference is the
  // prompt. It opens a think block when its last <think> is not closed after it.
  nlohmann::ordered_json probe = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hi"}}});
  Options with, without;
  without.add_generation_prompt = false;
  std::string full, bare;
  try {
    full = render(probe, with);
    bare = render(probe, without);
  } catch (const Error&) {
    return;  // a template that rejects the probe chat: nothing to learn from it
  }
  std::string prompt = full.compare(0, bare.size(), bare) == 0 ? full.substr(bare.size()) : full;
  size_t open = prompt.rfind("<think>");
  size_t close = prompt.rfind("</think>");
  opens_think_ = open != std::string::npos && (close == std::string::npos || close < open);
}

}  // namespace dsinfer
