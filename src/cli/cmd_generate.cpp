// dsinfer generate: complete a prompt (text or token ids), streaming the text to stdout.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/load_flags.h"
#include "cli/sampling_options.h"
#include "cli/speculative_flags.h"
#include "core/error.h"
#include "core/log.h"
#include "io/text_file.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"
#include "runtime/output_grammar.h"
#include "text/json_schema_grammar.h"
#include "runtime/text_stream.h"

namespace dsinfer {
namespace {

struct GenerateOptions {
  std::string model, ids;
  std::optional<std::string> prompt;
  LoadOptions load;
  int max_tokens = 16;
  bool ignore_eos = false, json = false;
  std::vector<std::string> stop;
  SamplingFlags sampling;
  SpeculativeOptions speculative;
  std::string json_schema, json_schema_file;  // hold the output to a JSON schema (llama.cpp's flags)
};

// The output's grammar from --json-schema / --json-schema-file, if given.
std::shared_ptr<const OutputGrammar> schema_grammar(const GenerateOptions& o, const LoadedModel& m) {
  if (o.json_schema.empty() && o.json_schema_file.empty()) return nullptr;
  if (!o.json_schema.empty() && !o.json_schema_file.empty()) fail("give one of --json-schema and --json-schema-file");
  const std::string text = o.json_schema.empty() ? read_text_file(o.json_schema_file) : o.json_schema;
  const auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
  if (schema.is_discarded())
    fail(o.json_schema.empty() ? "--json-schema-file " + o.json_schema_file : std::string("--json-schema"),
         " is not JSON");
  auto grammar = std::make_shared<const Grammar>(json_schema_grammar(schema));
  auto trie = std::make_shared<const TokenTrie>(m.require_tokenizer());
  return std::make_shared<const OutputGrammar>(std::move(grammar), std::move(trie));
}

// As llama.cpp reports it: the prompt's time to the first token, then the rate of the rest.
void log_timing(std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point first_token,
                std::chrono::steady_clock::time_point end, size_t tokens) {
  if (tokens == 0) return;
  using Seconds = std::chrono::duration<double>;
  const double ttft = Seconds(first_token - start).count();
  const double rest = Seconds(end - first_token).count();
  log_info("first token after ", ttft, " s; ", tokens - 1, " more in ", rest, " s",
           tokens > 1 && rest > 0 ? cat(" (", (tokens - 1) / rest, " tokens/s)") : std::string());
}

void run_generate(const GenerateOptions& o) {
  if (o.prompt.has_value() == !o.ids.empty()) fail("give exactly one of --prompt and --ids");
  check_speculative(o.speculative);
  LoadOptions load = o.load;
  load.model.mtp = drafts_with_mtp(o.speculative);
  LoadedModel m = load_for_generation(o.model, load);
  const Tokenizer* tok = m.tokenizer ? &*m.tokenizer : nullptr;
  GenerationRequest req;
  req.prompt = o.prompt ? m.require_tokenizer().encode(*o.prompt, true) : parse_id_list(o.ids);
  req.max_tokens = o.max_tokens;
  req.sampling = o.sampling.apply(m.defaults.sampling);
  req.eos_ids = m.defaults.eos_ids;
  req.ignore_eos = o.ignore_eos;
  req.sampling.grammar = schema_grammar(o, m);
  if (!o.stop.empty() && !tok) fail("--stop needs a tokenizer, and '", o.model, "' has none");

  EngineOptions eo;
  eo.cuda_graphs = !o.load.enforce_eager;
  // Room for the whole request; one that cannot fit the model's context is refused by the engine
  // with that reason, not by a cache too large to allocate.
  eo.kv_cache_tokens = std::min<int64_t>(static_cast<int64_t>(req.prompt.size()) + o.max_tokens,
                                         m.model->config().max_position_embeddings) +
                      cache_block_size(eo.block_size, *m.model);
  apply_speculative(o.speculative, eo);
  Engine engine(*m.model, *m.backend, eo);
  std::optional<TextStream> stream;
  if (tok) stream.emplace(*tok, o.stop, req.eos_ids);
  std::vector<int> out_ids;
  FinishReason reason = FinishReason::None;
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first_token;
  engine.submit(req, [&](const TokenEvent& ev) {
    if (ev.token >= 0 && out_ids.empty()) first_token = std::chrono::steady_clock::now();
    if (ev.token >= 0) out_ids.push_back(ev.token);
    if (stream && ev.token >= 0) {
      std::string piece = stream->push(ev.token);
      if (!o.json) std::fputs(piece.c_str(), stdout), std::fflush(stdout);
    }
    if (ev.finished) {
      reason = ev.reason;
      error = ev.error;
    }
    return !(stream && stream->stopped());
  });
  engine.wait_idle();
  const auto end = std::chrono::steady_clock::now();
  if (reason == FinishReason::Error) fail("generation failed: ", error);
  std::string text;
  if (stream) {
    std::string rest = stream->finish();
    if (!o.json) std::fputs(rest.c_str(), stdout);
    text = stream->text();
  }
  if (o.json) {
    nlohmann::json j{{"ids", out_ids},
                     {"text", text},
                     {"finish_reason", reason == FinishReason::Length ? "length" : "stop"}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);  // the text first, then the figures on stderr
  log_timing(start, first_token, end, out_ids.size());
  if (eo.drafter || eo.mtp_drafts > 0) log_info(speculation_summary(engine.stats()));
}

CommandRegistration reg({"generate", "Generate a completion of a prompt (text or token ids)", [](CLI::App& app) {
                           auto o = std::make_shared<GenerateOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           app.add_option("--prompt", o->prompt, "Prompt text (encoded with the model's BOS)");
                           app.add_option("--ids", o->ids, "Prompt as comma-separated token ids");
                           app.add_option("--max-tokens", o->max_tokens, "Tokens to generate at most")
                               ->check(CLI::Range(1, INT_MAX));
                           app.add_flag("--ignore-eos", o->ignore_eos, "Never stop at (or sample) the EOS ids");
                           app.add_option("--stop", o->stop, "Stop at this string (repeatable)");
                           app.add_flag("--json", o->json, "Print one JSON line {ids, text, finish_reason}");
                           app.add_option("--json-schema", o->json_schema,
                                          "Hold the output to this JSON schema (structured output, docs/api.md)");
                           app.add_option("--json-schema-file", o->json_schema_file, "The same, read from a file");
                           add_load_flags(app, o->load, true);
                           o->sampling.add_to(app);
                           add_speculative_flags(app, o->speculative);
                           app.callback([o] { run_generate(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
