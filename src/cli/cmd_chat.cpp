// dsinfer chat: an interactive terminal chat. Tokens stream as they are generated; an R1
// model's <think> part is shown dimmed and apart from the answer.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/load_flags.h"
#include "cli/sampling_options.h"
#include "cli/speculative_flags.h"
#include "core/error.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"
#include "runtime/text_stream.h"
#include "text/chat_template.h"
#include "text/reasoning_parser.h"

namespace dsinfer {
namespace {

struct ChatOptions {
  std::string model, system;
  LoadOptions load;
  int max_tokens = 1024;
  int context = 8192;
  SamplingFlags sampling;
  SpeculativeOptions speculative;
};

// Prints reasoning dimmed (on a terminal) under a "thinking" header, the answer plainly.
class ReplyPrinter {
 public:
  explicit ReplyPrinter(bool tty) : tty_(tty) {}
  void show(const ReasoningParser::Delta& d) {
    if (!d.reasoning.empty()) {
      if (!in_thinking_) std::fputs(tty_ ? "\x1b[2m[thinking]\n" : "[thinking]\n", stdout);
      in_thinking_ = true;
      std::fputs(d.reasoning.c_str(), stdout);
    }
    if (!d.content.empty()) {
      if (in_thinking_) std::fputs(tty_ ? "\n[/thinking]\x1b[0m\n" : "\n[/thinking]\n", stdout);
      in_thinking_ = false;
      std::fputs(d.content.c_str(), stdout);
    }
    std::fflush(stdout);
  }
  void end() {
    if (in_thinking_ && tty_) std::fputs("\x1b[0m", stdout);
    std::fputs("\n", stdout);
  }

 private:
  bool tty_;
  bool in_thinking_ = false;
};

// One assistant turn: streams the reply and returns its answer part (without the reasoning).
std::string reply(Engine& engine, LoadedModel& m, const ChatTemplate& tmpl, const nlohmann::json& messages,
                  const ChatOptions& o) {
  GenerationRequest req;
  req.prompt = m.require_tokenizer().encode(tmpl.render(messages, true), false);
  req.max_tokens = std::min(o.max_tokens, engine.max_model_len() - static_cast<int>(req.prompt.size()));
  if (req.max_tokens < 1) fail("the conversation no longer fits the context of ", engine.max_model_len(), " tokens");
  req.sampling = o.sampling.apply(m.defaults.sampling);
  req.eos_ids = m.defaults.eos_ids;
  TextStream stream(m.require_tokenizer(), {}, req.eos_ids);
  ReasoningParser parser(tmpl.opens_think_block());
  ReplyPrinter printer(isatty(STDOUT_FILENO));
  std::string answer;
  auto show = [&](const ReasoningParser::Delta& d) {
    answer += d.content;
    printer.show(d);
  };
  engine.submit(req, [&](const TokenEvent& ev) {
    if (ev.token >= 0) show(parser.push(stream.push(ev.token)));
    return true;
  });
  engine.wait_idle();
  show(parser.push(stream.finish()));
  show(parser.flush());
  printer.end();
  return answer;
}

void run_chat(const ChatOptions& o) {
  check_speculative(o.speculative);
  LoadOptions load = o.load;
  load.model.mtp = drafts_with_mtp(o.speculative);
  LoadedModel m = load_for_generation(o.model, load);
  m.require_tokenizer();
  if (!m.dir.tokenizer_config) fail("'", o.model, "' has no tokenizer_config.json with a chat template");
  ChatTemplate tmpl = ChatTemplate::from_model_dir(m.dir);
  EngineOptions eo;
  eo.cuda_graphs = !o.load.enforce_eager;
  eo.kv_cache_tokens = o.context;
  apply_speculative(o.speculative, eo);
  Engine engine(*m.model, *m.backend, eo);
  nlohmann::json messages = nlohmann::json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  std::fprintf(stderr, "chatting with %s; an empty line or Ctrl-D ends\n", o.model.c_str());
  std::string line;
  while (true) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({{"role", "user"}, {"content", line}});
    messages.push_back({{"role", "assistant"}, {"content", reply(engine, m, tmpl, messages, o)}});
  }
}

CommandRegistration reg({"chat", "Chat with a model in the terminal (streams; shows <think> apart)", [](CLI::App& app) {
                           auto o = std::make_shared<ChatOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           app.add_option("--system", o->system, "System prompt");
                           app.add_option("--max-tokens", o->max_tokens, "Tokens per reply at most")
                               ->check(CLI::Range(1, INT_MAX));
                           app.add_option("--context", o->context, "KV cache size in tokens")
                               ->check(CLI::Range(1, INT_MAX));
                           add_load_flags(app, o->load, false);
                           o->sampling.add_to(app);
                           add_speculative_flags(app, o->speculative);
                           app.callback([o] { run_chat(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
