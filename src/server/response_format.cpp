#include "server/response_format.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

#include "text/utf8.h"

namespace dsinfer {
namespace {

using nlohmann::json;

std::string random_hex(int digits) {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex);
  std::string out;
  while (static_cast<int>(out.size()) < digits) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    out += buf;
  }
  return out.substr(0, digits);
}

std::string token_string(const ResponseMeta& m, int id) {
  return m.tokenizer ? m.tokenizer->decode({id}, false) : "token_id:" + std::to_string(id);
}

json token_bytes(const ResponseMeta& m, int id) {
  json bytes = json::array();
  if (m.tokenizer)
    for (unsigned char c : m.tokenizer->token_text(id)) bytes.push_back(c);
  return bytes;
}

// Chat form: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}
json chat_logprobs(const ResponseMeta& m, const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& lp : lps) {
    json top = json::array();
    for (const auto& [id, p] : lp.top)
      top.push_back({{"token", token_string(m, id)}, {"logprob", p}, {"bytes", token_bytes(m, id)}});
    content.push_back({{"token", token_string(m, lp.token)},
                       {"logprob", lp.logprob},
                       {"bytes", token_bytes(m, lp.token)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

// Legacy completions form: parallel arrays, top_logprobs as {token: logprob} maps.
json completion_logprobs(const ResponseMeta& m, const std::vector<TokenLogprob>& lps, size_t offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& lp : lps) {
    std::string t = token_string(m, lp.token);
    tokens.push_back(t);
    token_lps.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, p] : lp.top) top[token_string(m, id)] = p;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += utf8_decode(t).size();  // in characters, as Python's str (vLLM, OpenAI) counts them
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

// Echo's logprobs: the prompt's tokens, the first with none (nothing comes before it), then the
// completion's, offsets counted from the start of the prompt's text.
json echoed_logprobs(const ResponseMeta& m, const std::vector<int>& prompt_ids,
                     const std::vector<TokenLogprob>& prompt_lps, const std::vector<TokenLogprob>& lps) {
  std::vector<TokenLogprob> all;
  if (!prompt_ids.empty()) all.push_back({prompt_ids[0], 0.0f, {}});
  all.insert(all.end(), prompt_lps.begin(), prompt_lps.end());
  all.insert(all.end(), lps.begin(), lps.end());
  json out = completion_logprobs(m, all, 0);
  if (!prompt_ids.empty()) {
    out["token_logprobs"][0] = nullptr;
    out["top_logprobs"][0] = nullptr;
  }
  return out;
}

// vLLM's prompt_logprobs: null for the first prompt token (nothing precedes it), then for each
// a map of token id -> {logprob, rank, decoded_token} holding the prompt's token and the
// alternatives.
json vllm_prompt_logprobs(const ResponseMeta& m, const CompletionResult& r) {
  json out = json::array();
  if (r.prompt_ids.empty()) return out;
  out.push_back(nullptr);
  auto entry = [&](int id, float logprob, int rank) {
    return json{{"logprob", logprob}, {"rank", rank}, {"decoded_token", token_string(m, id)}};
  };
  for (const TokenLogprob& lp : r.prompt_logprobs) {
    json position = {{std::to_string(lp.token), entry(lp.token, lp.logprob, lp.rank)}};
    for (size_t i = 0; i < lp.top.size(); ++i) {
      const std::string id = std::to_string(lp.top[i].first);
      if (!position.contains(id)) position[id] = entry(lp.top[i].first, lp.top[i].second, static_cast<int>(i) + 1);
    }
    out.push_back(std::move(position));
  }
  return out;
}

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::Chat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

// OpenAI's tool_calls: a call id each (unique in the response), type function; streamed, each
// call also names its index.
json tool_calls_json(const std::vector<ToolCall>& calls, bool streamed) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", "call_" + random_hex(24)},
              {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (streamed) c["index"] = i;
    out.push_back(std::move(c));
  }
  return out;
}

json envelope(const ResponseMeta& m, bool chunk) {
  return {{"id", m.id}, {"object", object_name(m.endpoint, chunk)}, {"created", m.created}, {"model", m.model}};
}

}  // namespace

ResponseMeta make_response_meta(Endpoint endpoint, std::string model, bool reasoning, bool return_token_ids,
                                const Tokenizer* tokenizer) {
  ResponseMeta m;
  m.endpoint = endpoint;
  m.id = std::string(endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + random_hex(24);
  m.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.model = std::move(model);
  m.reasoning = reasoning && endpoint == Endpoint::Chat;
  m.return_token_ids = return_token_ids;
  m.tokenizer = tokenizer;
  return m;
}

json usage_json(int prompt_tokens, int completion_tokens, int cached_prompt_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", cached_prompt_tokens}}}};
}

json usage_json(const std::vector<CompletionResult>& choices) {
  int completion = 0;
  for (const CompletionResult& r : choices) completion += r.completion_tokens;
  const CompletionResult& first = choices.front();
  return usage_json(first.prompt_tokens, completion, first.cached_prompt_tokens);
}

namespace {

json choice_json(const ResponseMeta& m, const CompletionResult& r, int index) {
  json choice = {{"index", index}, {"finish_reason", r.finish_reason}};
  bool want_logprobs = !r.logprobs.empty();
  if (m.endpoint == Endpoint::Chat) {
    json message = {{"role", "assistant"}, {"content", r.content}};
    if (m.reasoning) message["reasoning_content"] = r.reasoning.empty() ? json(nullptr) : json(r.reasoning);
    if (!r.tool_calls.empty()) {
      message["tool_calls"] = tool_calls_json(r.tool_calls, false);
      if (r.content.empty()) message["content"] = nullptr;  // OpenAI's form of a call-only answer
    }
    choice["message"] = message;
    choice["logprobs"] = want_logprobs ? chat_logprobs(m, r.logprobs) : json(nullptr);
  } else if (m.echo) {
    choice["text"] = m.echo_text + r.content;
    choice["logprobs"] =
        m.echo_logprobs ? echoed_logprobs(m, r.prompt_ids, r.prompt_logprobs, r.logprobs) : json(nullptr);
  } else {
    choice["text"] = r.content;
    choice["logprobs"] = want_logprobs ? completion_logprobs(m, r.logprobs, 0) : json(nullptr);
  }
  if (m.return_token_ids) {
    choice["prompt_token_ids"] = r.prompt_ids;
    choice["token_ids"] = r.output_ids;
  }
  if (m.prompt_logprobs && m.endpoint == Endpoint::Completion) choice["prompt_logprobs"] = vllm_prompt_logprobs(m, r);
  return choice;
}

}  // namespace

json response_json(const ResponseMeta& m, const std::vector<CompletionResult>& choices) {
  json out = envelope(m, false);
  out["choices"] = json::array();
  for (size_t i = 0; i < choices.size(); ++i) out["choices"].push_back(choice_json(m, choices[i], static_cast<int>(i)));
  // A chat response's prompt is every choice's: its logprobs come once (as vLLM gives them).
  if (m.prompt_logprobs && m.endpoint == Endpoint::Chat) out["prompt_logprobs"] = vllm_prompt_logprobs(m, choices.front());
  out["usage"] = usage_json(choices);
  return out;
}

json chunk_json(const ResponseMeta& m, const StreamDelta& d, bool usage_field) {
  json choice = {{"index", d.index}};
  choice["finish_reason"] = d.finish_reason ? json(*d.finish_reason) : json(nullptr);
  if (m.endpoint == Endpoint::Chat) {
    json delta = json::object();
    if (d.first) delta["role"] = "assistant";
    if (d.first || !d.content.empty()) delta["content"] = d.content;
    if (m.reasoning && !d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (!d.tool_calls.empty()) delta["tool_calls"] = tool_calls_json(d.tool_calls, true);
    choice["delta"] = delta;
    choice["logprobs"] = d.want_logprobs && !d.logprobs.empty() ? chat_logprobs(m, d.logprobs) : json(nullptr);
  } else if (d.echo) {
    choice["text"] = m.echo_text + d.content;
    choice["logprobs"] =
        m.echo_logprobs ? echoed_logprobs(m, d.prompt_ids, d.prompt_logprobs, d.logprobs) : json(nullptr);
  } else {
    choice["text"] = d.content;
    const size_t offset = d.text_offset + (m.echo ? m.echo_chars : 0);
    choice["logprobs"] =
        d.want_logprobs && !d.logprobs.empty() ? completion_logprobs(m, d.logprobs, offset) : json(nullptr);
  }
  if (m.return_token_ids) choice["token_ids"] = d.tokens;
  json out = envelope(m, true);
  out["choices"] = json::array({choice});
  if (usage_field) out["usage"] = nullptr;
  return out;
}

json usage_chunk_json(const ResponseMeta& m, const std::vector<CompletionResult>& choices) {
  json out = envelope(m, true);
  out["choices"] = json::array();
  out["usage"] = usage_json(choices);
  return out;
}

std::string to_wire(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + to_wire(j) + "\n\n"; }

}  // namespace dsinfer
