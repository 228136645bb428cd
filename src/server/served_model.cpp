#include "server/served_model.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <type_traits>

#include "core/error.h"
#include "core/log.h"
#include "text/tool_call_parser.h"

namespace dsinfer {
namespace {

// Without --kv-cache-tokens the cache gets room for max_running sequences of a modest 2048
// tokens, within 2 GiB: no backend reports its free memory yet, so nothing tells how much the
// cache may take.
constexpr int64_t kDefaultTokensPerSequence = 2048;
constexpr size_t kDefaultCacheBytes = size_t(2) << 30;

// OpenAI's defaults (temperature 1, no truncation), replaced by what generation_config.json
// sets, as vLLM does: a model's authors know the temperature it is meant to be sampled at.
SamplingParams sampling_defaults(const ModelDir& dir, float repetition_penalty) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.repetition_penalty = repetition_penalty;
  if (!dir.generation_config || !dir.generation_config->is_object()) return p;
  const nlohmann::json& g = *dir.generation_config;
  auto number = [&](const char* key, auto& out) {
    if (g.contains(key) && g[key].is_number()) out = g[key].get<std::remove_reference_t<decltype(out)>>();
  };
  number("temperature", p.temperature);
  number("top_p", p.top_p);
  number("top_k", p.top_k);
  number("min_p", p.min_p);
  return p;
}

// generation_config / config EOS ids, plus the tokenizer's eos_token: chat templates end a turn
// with it (e.g. <|im_end|>) even where config.json names another id.
std::vector<int> eos_ids(const LoadedModel& m) {
  std::vector<int> ids = m.defaults.eos_ids;
  if (m.tokenizer)
    if (auto eos = m.tokenizer->eos_id(); eos && std::find(ids.begin(), ids.end(), *eos) == ids.end()) ids.push_back(*eos);
  return ids;
}

// A model without a (parsable) chat template still serves /v1/completions.
std::optional<ChatTemplate> chat_template(const ModelDir& dir) {
  try {
    return ChatTemplate::from_model_dir(dir);
  } catch (const Error& e) {
    log_warn("no chat template, /v1/chat/completions is off: ", e.what());
    return std::nullopt;
  }
}

bool reasoning_enabled(const std::string& parser, const std::optional<ChatTemplate>& tmpl) {
  if (parser == "deepseek-r1") return true;
  if (parser == "none") return false;
  if (parser != "auto") fail("bad --reasoning-parser '", parser, "' (expected deepseek-r1, none or auto)");
  return tmpl && tmpl->opens_think_block();
}

bool tool_calls_enabled(const std::string& parser, const std::optional<ChatTemplate>& tmpl) {
  if (parser == "deepseek") return true;
  if (parser == "none") return false;
  if (parser != "auto") fail("bad --tool-call-parser '", parser, "' (expected deepseek, none or auto)");
  return tmpl && tmpl->source().find(ToolCallParser::kCallsBegin) != std::string::npos;
}

EngineOptions engine_options(const ServerOptions& o, const LoadedModel& m) {
  EngineOptions e;
  e.max_running = o.max_running;
  e.max_waiting = o.max_waiting;
  e.max_batched_tokens = o.max_batched_tokens;
  e.block_size = o.block_size;
  apply_speculative(o.speculative, e);
  e.draft_below_batch = o.speculative_disable_by_batch_size;
  e.kv_cache_tokens = o.kv_cache_tokens;
  e.memory_utilization = o.gpu_memory_utilization;
  e.cuda_graphs = !o.enforce_eager;
  // A GPU sizes its cache from its memory (as dsinfer plan does); the CPU shares the host, so it
  // takes a modest default.
  if (e.kv_cache_tokens == 0 && m.backend->device().kind == DeviceKind::CPU) {
    int64_t by_memory = static_cast<int64_t>(kDefaultCacheBytes / std::max<size_t>(1, m.model->kv_spec().bytes_per_token()));
    e.kv_cache_tokens = std::min<int64_t>(int64_t(o.max_running) * kDefaultTokensPerSequence, by_memory);
  }
  return e;
}

}  // namespace

std::shared_ptr<const TokenTrie> ServedModel::token_trie() const {
  std::call_once(trie_once_, [this] {
    if (const Tokenizer* t = tokenizer()) trie_ = std::make_shared<const TokenTrie>(*t);
  });
  return trie_;
}

std::unique_ptr<ServedModel> load_served_model(const ServerOptions& o) {
  auto s = std::make_unique<ServedModel>();
  LoadOptions load;
  load.device = o.device;
  load.tensor_parallel = o.tensor_parallel;
  load.model = o.model_options;
  load.model.mtp = drafts_with_mtp(o.speculative);
  s->loaded = load_for_generation(o.model_dir, load);
  s->name = !o.served_model_name.empty() ? o.served_model_name
                                         : std::filesystem::path(o.model_dir).lexically_normal().filename().string();
  if (s->name.empty()) s->name = std::filesystem::path(o.model_dir).lexically_normal().parent_path().filename().string();
  s->created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  s->chat_template = chat_template(s->loaded.dir);
  s->eos_ids = eos_ids(s->loaded);
  s->defaults = sampling_defaults(s->loaded.dir, s->loaded.defaults.sampling.repetition_penalty);
  s->reasoning = reasoning_enabled(o.reasoning_parser, s->chat_template);
  s->tool_calls = tool_calls_enabled(o.tool_call_parser, s->chat_template);
  EngineOptions eo = engine_options(o, s->loaded);
  s->engine = std::make_unique<Engine>(*s->loaded.model, *s->loaded.backend, eo);
  log_info("serving '", s->name, "': KV cache ", s->engine->kv_cache_tokens(), " tokens, max sequence length ",
           s->engine->max_model_len(), ", reasoning parser ", s->reasoning ? "deepseek-r1" : "none",
           ", tool-call parser ", s->tool_calls ? "deepseek" : "none");
  return s;
}

}  // namespace dsinfer
