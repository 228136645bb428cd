#include "server/engine_request.h"

#include "core/error.h"
#include "runtime/output_grammar.h"
#include "server/api_error.h"
#include "text/reasoning_parser.h"
#include "text/tool_call_grammar.h"

namespace dsinfer {
namespace {

const Tokenizer& need_tokenizer(const ServedModel& m, const std::string& param) {
  if (!m.tokenizer())
    throw invalid_field(param, "model '" + m.name + "' has no tokenizer; send the prompt to /v1/completions as token ids");
  return *m.tokenizer();
}

std::vector<int> chat_prompt(const ApiRequest& r, const ServedModel& m) {
  const Tokenizer& tok = need_tokenizer(m, "messages");
  if (!m.chat_template) throw invalid_field("messages", "model '" + m.name + "' has no chat template; use /v1/completions");
  std::string text;
  try {
    ChatTemplate::Options options;
    options.tools = r.tools;
    options.extra = r.chat_template_kwargs;
    text = m.chat_template->render(nlohmann::ordered_json::parse(r.messages.dump()), options);
  } catch (const Error& e) {
    // Templates raise for conversations they do not accept (e.g. roles out of order).
    throw invalid_field("messages", std::string("the chat template rejected the messages: ") + e.what());
  }
  // The template already wrote BOS and other special tokens; encoding must not add them twice.
  return tok.encode(text, /*add_special_tokens=*/false);
}

// Throws a 400 naming `field` for an id outside the model's vocabulary.
void check_ids_in_vocab(const std::vector<int>& ids, const ServedModel& m, const char* field) {
  const int vocab = m.loaded.model->config().vocab_size;
  for (int id : ids)
    if (id >= vocab) throw invalid_field(field, "token id " + std::to_string(id) + " is outside the vocabulary (size " + std::to_string(vocab) + ")");
}

std::vector<int> completion_prompt(const ApiRequest& r, const ServedModel& m) {
  if (r.prompt_text) return need_tokenizer(m, "prompt").encode(*r.prompt_text, /*add_special_tokens=*/true);
  check_ids_in_vocab(r.prompt_ids, m, "prompt");
  return r.prompt_ids;
}

SamplingParams resolve_sampling(const ApiRequest& r, const SamplingParams& defaults) {
  SamplingParams p = defaults;
  if (r.temperature) p.temperature = *r.temperature;
  if (r.top_p) p.top_p = *r.top_p;
  if (r.top_k) p.top_k = *r.top_k;
  if (r.min_p) p.min_p = *r.min_p;  // a request may also turn the model's default off (0, 1)
  if (r.repetition_penalty) p.repetition_penalty = *r.repetition_penalty;
  p.presence_penalty = r.presence_penalty;
  p.frequency_penalty = r.frequency_penalty;
  p.seed = r.seed;
  p.top_logprobs = r.top_logprobs;
  p.logit_bias = r.logit_bias;
  return p;
}

}  // namespace

void check_model_name(const std::string& name, const ServedModel& m) {
  if (!name.empty() && name != m.name)
    throw ApiError(404, "invalid_request_error", "the model '" + name + "' does not exist (this server serves '" + m.name + "')",
                   "model", "model_not_found");
}

std::vector<int> prompt_tokens(const ApiRequest& r, const ServedModel& m) {
  return r.endpoint == Endpoint::Chat ? chat_prompt(r, m) : completion_prompt(r, m);
}

constexpr int kMaxLeadingWhitespace = 8;  // after a reasoning model's </think>

// A forced tool call: the calls in the form the model's chat template writes them.
std::shared_ptr<const Grammar> forced_calls(const ApiRequest& r, const ServedModel& m) {
  if (!m.tool_calls || !m.chat_template)
    throw invalid_field("tool_choice", "forcing a tool call needs the server's tool-call parser (--tool-call-parser)");
  try {
    const ToolCallFormat form = tool_call_format(m.chat_template->source());
    auto g = std::make_shared<const Grammar>(tool_call_grammar(r.tools, r.tool_name, form));
    GrammarState{*g};  // a start the recognizer cannot follow is refused here, not in the engine
    return g;
  } catch (const Error& e) {
    throw invalid_field("tool_choice", e.what());
  } catch (const nlohmann::json::exception& e) {
    throw invalid_field("tools", e.what());
  }
}

// The request's structured output or forced tool call, if any. A reasoning model's chat answer is
// held to it after its thinking, whose end is one token in the R1 tokenizers (without that token
// the grammar holds from the first one), from the blank lines R1 writes after it.
std::shared_ptr<const OutputGrammar> output_grammar(const ApiRequest& r, const ServedModel& m) {
  std::shared_ptr<const Grammar> grammar = r.tool_required ? forced_calls(r, m) : r.grammar;
  if (!grammar) return nullptr;
  std::shared_ptr<const TokenTrie> trie = m.token_trie();
  if (!trie) throw invalid_field("response_format", "structured outputs need the model's tokenizer, and it has none");
  std::optional<int> after;
  if (r.endpoint == Endpoint::Chat && m.reasoning) after = m.tokenizer()->token_to_id(ReasoningParser::kClose);
  if (after) grammar = std::make_shared<const Grammar>(grammar->with_leading_whitespace(kMaxLeadingWhitespace));
  return std::make_shared<const OutputGrammar>(std::move(grammar), std::move(trie), after);
}

GenerationRequest build_generation_request(const ApiRequest& r, const ServedModel& m) {
  GenerationRequest g;
  g.prompt = prompt_tokens(r, m);
  const std::string prompt_field = r.endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (g.prompt.empty()) throw invalid_field(prompt_field, "the prompt has no tokens");
  const int context = m.engine->max_model_len();
  const int prompt_len = static_cast<int>(g.prompt.size());
  if (prompt_len >= context)
    throw ApiError(400, "invalid_request_error",
                   "this model's maximum context length is " + std::to_string(context) + " tokens, but the prompt has " +
                       std::to_string(prompt_len) + " tokens",
                   prompt_field, "context_length_exceeded");
  // As OpenAI: completions default to 16 tokens, chat to whatever room the context leaves.
  int max_tokens = r.max_tokens.value_or(r.endpoint == Endpoint::Chat ? context - prompt_len : 16);
  if (static_cast<int64_t>(prompt_len) + max_tokens > context) {
    throw ApiError(400, "invalid_request_error",
                   "this model's maximum context length is " + std::to_string(context) + " tokens, but " +
                       std::to_string(prompt_len) + " prompt tokens + " + std::to_string(max_tokens) +
                       " max_tokens were requested",
                   "max_tokens", "context_length_exceeded");
  }
  g.max_tokens = max_tokens;
  g.sampling = resolve_sampling(r, m.defaults);
  g.eos_ids = m.eos_ids;
  check_ids_in_vocab(r.stop_token_ids, m, "stop_token_ids");
  g.eos_ids.insert(g.eos_ids.end(), r.stop_token_ids.begin(), r.stop_token_ids.end());
  g.ignore_eos = r.ignore_eos;
  if (r.min_tokens > max_tokens)
    throw ApiError(400, "invalid_request_error",
                   "min_tokens " + std::to_string(r.min_tokens) + " exceeds max_tokens " + std::to_string(max_tokens),
                   "min_tokens", "invalid_value");
  g.min_tokens = r.min_tokens;
  // Echo returns the prompt's logprobs when logprobs are asked for (max_tokens 0 asks the engine
  // to score the prompt anyway); otherwise the prompt's text is enough.
  if (r.echo && (r.top_logprobs >= 0 || max_tokens == 0)) g.prompt_logprobs = std::max(r.top_logprobs, 0);
  g.prompt_logprobs = std::max(g.prompt_logprobs, r.prompt_logprobs);
  g.sampling.grammar = output_grammar(r, m);
  return g;
}

bool deterministic(const SamplingParams& p) { return p.greedy() || p.seed.has_value(); }

}  // namespace dsinfer
