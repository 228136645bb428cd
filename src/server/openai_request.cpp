#include "server/openai_request.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"
#include "server/api_error.h"
#include "text/json_schema_grammar.h"

namespace dsinfer {
namespace {

using nlohmann::json;

// A field that is absent or null counts as not given (clients send null for "default").
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number_in(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) throw invalid_field(name, "must be a number");
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw invalid_field(name, "must be between " + json(lo).dump() + " and " + json(hi).dump());
  return x;
}

int64_t integer_in(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) throw invalid_field(name, "must be an integer");
  // Unsigned values above int64's range fail the bound check below instead of wrapping.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw invalid_field(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw invalid_field(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

bool boolean(const json& v, const std::string& name) {
  if (!v.is_boolean()) throw invalid_field(name, "must be a boolean");
  return v.get<bool>();
}

// OpenAI content: a string, or an array of parts of which only text parts are understood here,
// joined by newlines as vLLM joins them.
std::string message_content(const json& content, const std::string& name) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw invalid_field(name, "must be a string or an array of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    std::string pname = name + "[" + std::to_string(i) + "]";
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") || !part["text"].is_string())
      throw invalid_field(pname, "only {\"type\": \"text\", \"text\": string} parts are supported");
    if (i) text += '\n';
    text += part["text"].get<std::string>();
  }
  return text;
}

json parse_messages(const json& body) {
  const json* msgs = field(body, "messages");
  if (!msgs) throw invalid_field("messages", "is required");
  if (!msgs->is_array() || msgs->empty()) throw invalid_field("messages", "must be a non-empty array");
  json out = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    std::string name = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_field(name, "must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) throw invalid_field(name + ".role", "must be a string");
    static const char* roles[] = {"system", "developer", "user", "assistant", "tool"};
    std::string r = role->get<std::string>();
    if (std::find(std::begin(roles), std::end(roles), r) == std::end(roles))
      throw invalid_field(name + ".role", "must be one of system, developer, user, assistant, tool");
    json msg = m;  // keep fields templates may read (tool_calls, name, reasoning_content)
    // Templates know "system"; "developer" is OpenAI's newer name for it.
    if (r == "developer") msg["role"] = "system";
    const json* content = field(m, "content");
    if (content) {
      msg["content"] = message_content(*content, name + ".content");
    } else if (r == "assistant") {
      msg["content"] = "";  // an assistant turn of tool calls only: templates expect a string
    } else {
      throw invalid_field(name + ".content", "is required");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<int> token_ids(const json& v, const std::string& name) {
  std::vector<int> ids;
  for (size_t i = 0; i < v.size(); ++i)
    ids.push_back(static_cast<int>(integer_in(v[i], name + "[" + std::to_string(i) + "]", 0, std::numeric_limits<int>::max())));
  return ids;
}

// prompt: a string or token ids, or a one-element array of either (batches of prompts are n > 1
// in disguise and are refused like it).
void parse_prompt(const json& body, ApiRequest& r) {
  const json* p = field(body, "prompt");
  if (!p) throw invalid_field("prompt", "is required");
  const json* one = p;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) one = &(*p)[0];
  if (one->is_string()) {
    r.prompt_text = one->get<std::string>();
    if (r.prompt_text->empty()) throw invalid_field("prompt", "must not be empty");
    return;
  }
  if (one->is_array() && !one->empty() && (*one)[0].is_number()) {
    r.prompt_ids = token_ids(*one, "prompt");
    return;
  }
  if (one->is_array() && one->size() > 1) throw invalid_field("prompt", "only one prompt per request is supported");
  throw invalid_field("prompt", "must be a non-empty string or a non-empty array of token ids");
}

void parse_stop(const json& body, ApiRequest& r) {
  const json* s = field(body, "stop");
  if (!s) return;
  if (s->is_string()) {
    r.stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    if (s->size() > 16) throw invalid_field("stop", "at most 16 stop strings");
    for (const json& x : *s) {
      if (!x.is_string()) throw invalid_field("stop", "must be a string or an array of strings");
      r.stop.push_back(x.get<std::string>());
    }
  } else {
    throw invalid_field("stop", "must be a string or an array of strings");
  }
  for (const auto& x : r.stop)
    if (x.empty()) throw invalid_field("stop", "stop strings must not be empty");
}

// Chat: logprobs (bool) + top_logprobs (0..20). Completions: logprobs is the count (0..20).
void parse_logprobs(const json& body, ApiRequest& r) {
  const json* lp = field(body, "logprobs");
  if (r.endpoint == Endpoint::Completion) {
    if (lp) r.top_logprobs = static_cast<int>(integer_in(*lp, "logprobs", 0, 20));
    return;
  }
  bool on = lp && boolean(*lp, "logprobs");
  const json* top = field(body, "top_logprobs");
  if (top) {
    if (!on) throw invalid_field("top_logprobs", "requires logprobs to be true");
    r.top_logprobs = static_cast<int>(integer_in(*top, "top_logprobs", 0, 20));
  } else if (on) {
    r.top_logprobs = 0;
  }
}

void parse_sampling(const json& body, ApiRequest& r) {
  if (const json* v = field(body, "temperature")) r.temperature = static_cast<float>(number_in(*v, "temperature", 0, 2));
  if (const json* v = field(body, "top_p")) {
    r.top_p = static_cast<float>(number_in(*v, "top_p", 0, 1));
    if (*r.top_p <= 0.0f) throw invalid_field("top_p", "must be greater than 0");
  }
  if (const json* v = field(body, "top_k")) {
    // vLLM writes -1 for "off"; 0 means the same here.
    int k = static_cast<int>(integer_in(*v, "top_k", -1, std::numeric_limits<int>::max()));
    r.top_k = k < 0 ? 0 : k;
  }
  if (const json* v = field(body, "min_p")) r.min_p = static_cast<float>(number_in(*v, "min_p", 0, 1));
  if (const json* v = field(body, "presence_penalty"))
    r.presence_penalty = static_cast<float>(number_in(*v, "presence_penalty", -2, 2));
  if (const json* v = field(body, "frequency_penalty"))
    r.frequency_penalty = static_cast<float>(number_in(*v, "frequency_penalty", -2, 2));
  if (const json* v = field(body, "repetition_penalty")) {
    r.repetition_penalty = static_cast<float>(number_in(*v, "repetition_penalty", 0, 100));
    if (*r.repetition_penalty <= 0.0f) throw invalid_field("repetition_penalty", "must be greater than 0");
  }
  if (const json* v = field(body, "logit_bias")) {
    if (!v->is_object()) throw invalid_field("logit_bias", "must be an object of token id -> bias");
    for (auto it = v->begin(); it != v->end(); ++it) {
      const std::string name = "logit_bias[" + it.key() + "]";
      const std::string& key = it.key();
      // Plain decimal ids only: " 1", "+1" and "01" would all be id 1, their biases added.
      const bool digits = !key.empty() && key.size() <= 10 && std::all_of(key.begin(), key.end(), ::isdigit) &&
                          (key == "0" || key[0] != '0');
      const long long id = digits ? std::stoll(key) : -1;
      if (id < 0 || id > std::numeric_limits<int>::max()) throw invalid_field(name, "keys must be token ids");
      r.logit_bias.emplace_back(static_cast<int>(id), static_cast<float>(number_in(*it, name, -100, 100)));
    }
  }
  if (const json* v = field(body, "seed")) {
    // Seeds are any 64-bit integer; negative ones are used as their two's complement bits.
    if (!v->is_number_integer()) throw invalid_field("seed", "must be an integer");
    r.seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
}

void parse_lengths(const json& body, ApiRequest& r) {
  const int max = std::numeric_limits<int>::max();
  const json* mct = r.endpoint == Endpoint::Chat ? field(body, "max_completion_tokens") : nullptr;
  if (mct) {
    r.max_tokens = static_cast<int>(integer_in(*mct, "max_completion_tokens", 1, max));
  } else if (const json* v = field(body, "max_tokens")) {
    // 0 scores a prompt without generating: completions with echo only (checked once echo is read).
    r.max_tokens = static_cast<int>(integer_in(*v, "max_tokens", r.endpoint == Endpoint::Completion ? 0 : 1, max));
  }
  if (const json* v = field(body, "n")) r.n = static_cast<int>(integer_in(*v, "n", 1, kMaxChoices));
  // best_of = n returns every candidate, which is n; ranking more candidates than returned is not done.
  if (const json* v = field(body, "best_of"); v && integer_in(*v, "best_of", 1, max) != r.n)
    throw invalid_field("best_of", "only best_of = n is supported (every candidate is returned)");
}

void parse_flags(const json& body, ApiRequest& r) {
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) throw invalid_field("stream_options", "must be an object");
    if (!r.stream) throw invalid_field("stream_options", "is only allowed when stream is true");
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (const json* v = field(body, "ignore_eos")) r.ignore_eos = boolean(*v, "ignore_eos");
  if (const json* v = field(body, "min_tokens"))
    r.min_tokens = static_cast<int>(integer_in(*v, "min_tokens", 0, std::numeric_limits<int>::max()));
  if (const json* v = field(body, "stop_token_ids")) {
    if (!v->is_array()) throw invalid_field("stop_token_ids", "must be an array of token ids");
    r.stop_token_ids = token_ids(*v, "stop_token_ids");
  }
  if (const json* v = field(body, "return_token_ids")) r.return_token_ids = boolean(*v, "return_token_ids");
  if (const json* v = field(body, "prompt_logprobs")) {
    r.prompt_logprobs = static_cast<int>(integer_in(*v, "prompt_logprobs", 0, kMaxPromptLogprobs));
    if (r.stream) throw invalid_field("prompt_logprobs", "prompt_logprobs is not supported with stream");
  }
  if (const json* v = field(body, "skip_special_tokens")) r.skip_special_tokens = boolean(*v, "skip_special_tokens");
  if (r.endpoint == Endpoint::Completion) {
    if (const json* v = field(body, "echo")) r.echo = boolean(*v, "echo");
    if (field(body, "suffix"))
      throw invalid_field("suffix", "suffix is not supported");
  }
}

// "auto" parses the answer's tool calls, "none" leaves them text; "required" and a named function
// ({"type": "function", "function": {"name": ...}}) force calls (held to a grammar when the
// request is built, which knows the model's call format).
void parse_tool_choice(const json& v, ApiRequest& r) {
  if (v.is_string() && (v == "auto" || v == "none" || v == "required")) {
    r.parse_tool_calls = v != "none";
    r.tool_required = v == "required";
  } else if (v.is_object() && v.contains("type") && v["type"] == "function" && v.contains("function") &&
             v["function"].is_object() && v["function"].contains("name") && v["function"]["name"].is_string()) {
    r.tool_required = true;
    r.tool_name = v["function"]["name"].get<std::string>();
  } else {
    throw invalid_field("tool_choice", "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
                                       "\"function\": {\"name\": ...}}");
  }
  if (r.tool_required && r.tools.is_null()) throw invalid_field("tool_choice", "forcing a tool call needs tools");
}

// One field's compiled grammar; a schema the compiler refuses, or whose start the recognizer
// cannot follow, is a 400 naming the field.
std::shared_ptr<const Grammar> compiled(const char* name, const std::function<Grammar()>& compile) {
  try {
    auto g = std::make_shared<const Grammar>(compile());
    GrammarState{*g};
    return g;
  } catch (const Error& e) {
    throw invalid_field(name, e.what());
  } catch (const nlohmann::json::exception& e) {  // a value of the wrong JSON type somewhere in it
    throw invalid_field(name, e.what());
  }
}

// response_format, guided_json or guided_choice (at most one), from the body in its own key order.
void parse_structured_output(const std::string& body_text, ApiRequest& r) {
  const auto body = nlohmann::ordered_json::parse(body_text);
  std::vector<const char*> given;
  for (const char* name : {"response_format", "guided_json", "guided_choice"})
    if (auto it = body.find(name); it != body.end() && !it->is_null()) given.push_back(name);
  if (given.size() > 1)
    throw invalid_field(given[1], std::string("give one of response_format, guided_json and guided_choice, not ") +
                                      given[0] + " too");
  if (given.empty()) return;
  const std::string name = given[0];
  const nlohmann::ordered_json& v = body[name];
  if (name == "guided_choice") {
    if (!v.is_array() || v.empty()) throw invalid_field("guided_choice", "must be a non-empty array of strings");
    for (const auto& c : v)
      if (!c.is_string() || c.get<std::string>().empty())
        throw invalid_field("guided_choice", "must list non-empty strings");
    r.grammar = compiled("guided_choice", [&] {
      Grammar g;
      const int root = g.add_rule();
      for (const auto& c : v) g.add_alternative(root, {GrammarElement::ref(g.literal(c.get<std::string>()))});
      g.set_root(root);
      return g;
    });
  } else if (name == "guided_json") {
    const nlohmann::ordered_json schema =
        v.is_string() ? nlohmann::ordered_json::parse(v.get<std::string>(), nullptr, false) : v;
    if (schema.is_discarded()) throw invalid_field("guided_json", "is a string that is not JSON");
    r.grammar = compiled("guided_json", [&] { return json_schema_grammar(schema); });
  } else {
    const auto type = v.is_object() ? v.find("type") : v.end();
    if (type == v.end() || !type->is_string()) throw invalid_field("response_format", "must be an object with a type");
    if (*type == "text") return;
    if (*type == "json_object") {
      r.grammar = compiled("response_format", [] { return json_object_grammar(); });
    } else if (*type == "json_schema") {
      const auto spec = v.find("json_schema");
      if (spec == v.end() || !spec->is_object() || !spec->contains("schema"))
        throw invalid_field("response_format",
                            "json_schema needs {\"json_schema\": {\"name\": ..., \"schema\": {...}}}");
      r.grammar = compiled("response_format", [&] { return json_schema_grammar((*spec)["schema"]); });
    } else {
      throw invalid_field("response_format", "type must be text, json_object or json_schema");
    }
  }
  r.structured_output = {{name, v}};
}

// tools and chat_template_kwargs, read from the body in its own key order.
void parse_template_inputs(const std::string& body_text, ApiRequest& r) {
  const auto body = nlohmann::ordered_json::parse(body_text);
  if (auto t = body.find("tools"); t != body.end() && !t->is_null()) {
    if (!t->is_array()) throw invalid_field("tools", "must be an array of tool objects");
    for (size_t i = 0; i < t->size(); ++i)
      if (!(*t)[i].is_object()) throw invalid_field("tools[" + std::to_string(i) + "]", "must be an object");
    if (!t->empty()) r.tools = *t;
  }
  if (auto k = body.find("chat_template_kwargs"); k != body.end() && !k->is_null()) {
    if (!k->is_object()) throw invalid_field("chat_template_kwargs", "must be an object");
    r.chat_template_kwargs = *k;
  }
}

}  // namespace

ApiRequest parse_api_request(Endpoint endpoint, const std::string& body_text) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded())
    throw ApiError(400, "invalid_request_error", "request body is not valid JSON", "", "invalid_json");
  if (!body.is_object())
    throw ApiError(400, "invalid_request_error", "request body must be a JSON object", "", "invalid_json");
  ApiRequest r;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) throw invalid_field("model", "must be a string");
    r.model = m->get<std::string>();
  }
  if (endpoint == Endpoint::Chat) {
    r.messages = parse_messages(body);
    if (body.contains("tools") || body.contains("chat_template_kwargs")) parse_template_inputs(body_text, r);
    if (const json* c = field(body, "tool_choice")) parse_tool_choice(*c, r);
  } else {
    parse_prompt(body, r);
  }
  parse_lengths(body, r);
  parse_sampling(body, r);
  if (body.contains("response_format") || body.contains("guided_json") || body.contains("guided_choice"))
    parse_structured_output(body_text, r);
  if (r.grammar && r.tool_required)
    throw invalid_field("tool_choice", "a forced tool call is an answer of its own form: not with a structured output");
  parse_stop(body, r);
  parse_logprobs(body, r);
  parse_flags(body, r);
  if (r.max_tokens == 0 && !r.echo) throw invalid_field("max_tokens", "must be at least 1 (0 only with echo)");
  return r;
}

nlohmann::json output_defining_fields(const ApiRequest& r) {
  json j = {{"endpoint", r.endpoint == Endpoint::Chat ? "chat" : "completion"},
            {"presence_penalty", r.presence_penalty},
            {"frequency_penalty", r.frequency_penalty},
            {"stop", r.stop},
            {"top_logprobs", r.top_logprobs},
            {"ignore_eos", r.ignore_eos},
            {"min_tokens", r.min_tokens},
            {"stop_token_ids", r.stop_token_ids},
            {"return_token_ids", r.return_token_ids},
            {"skip_special_tokens", r.skip_special_tokens},
            {"n", r.n},
            {"parse_tool_calls", r.parse_tool_calls},
            {"tool_required", r.tool_required},
            {"tool_name", r.tool_name},
            {"structured_output", r.structured_output.dump()}};  // ordered: a schema's key order counts
  if (r.endpoint == Endpoint::Chat) {
    j["messages"] = r.messages;
    // As text: their key order is the client's, and the prompt (and a forced call's grammar) follow it.
    j["tools"] = r.tools.dump();
    j["chat_template_kwargs"] = r.chat_template_kwargs.dump();
  }
  if (r.prompt_text) j["prompt"] = *r.prompt_text;
  if (r.echo) j["echo"] = true;  // only when set: keys of earlier entries stay valid
  if (r.prompt_logprobs >= 0) j["prompt_logprobs"] = r.prompt_logprobs;
  if (!r.prompt_ids.empty()) j["prompt_ids"] = r.prompt_ids;
  auto opt = [&](const char* name, const auto& v) { j[name] = v ? json(*v) : json(nullptr); };
  opt("max_tokens", r.max_tokens);
  opt("temperature", r.temperature);
  opt("top_p", r.top_p);
  opt("top_k", r.top_k);
  opt("min_p", r.min_p);
  opt("repetition_penalty", r.repetition_penalty);
  j["logit_bias"] = r.logit_bias;
  opt("seed", r.seed);
  return j;
}

}  // namespace dsinfer
