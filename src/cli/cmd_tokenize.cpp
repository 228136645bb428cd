// dsinfer tokenize: token ids of a text, a text file or a rendered chat, as a JSON array.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "io/model_dir.h"
#include "io/text_file.h"
#include "text/chat_messages.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace dsinfer {
namespace {

struct TokenizeOptions {
  std::string model, text, text_file, chat;
  bool add_special = false;
  CLI::Option *text_opt = nullptr, *file_opt = nullptr, *chat_opt = nullptr;
};

void run_tokenize(const TokenizeOptions& o) {
  int given = static_cast<int>(o.text_opt->count() + o.file_opt->count() + o.chat_opt->count());
  if (given != 1) fail("tokenize needs exactly one of --text, --text-file and --chat");
  ModelDir dir = ModelDir::open(o.model);
  Tokenizer tokenizer = Tokenizer::from_model_dir(dir);
  std::vector<int> ids;
  if (o.chat_opt->count()) {
    // As apply_chat_template(tokenize=True): the template writes any BOS itself.
    ChatRequest chat = parse_chat_argument(o.chat, "--chat");
    ChatTemplate::Options options;
    options.tools = chat.tools;
    ids = tokenizer.encode(ChatTemplate::from_model_dir(dir).render(chat.messages, options), false);
  } else {
    ids = tokenizer.encode(o.text_opt->count() ? o.text : read_text_file(o.text_file), o.add_special);
  }
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  out += "]";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

CommandRegistration reg({"tokenize", "Print the token ids of a text or a chat as a JSON array", [](CLI::App& app) {
                           auto o = std::make_shared<TokenizeOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           o->text_opt = app.add_option("--text", o->text, "Text to tokenize");
                           o->file_opt = app.add_option("--text-file", o->text_file, "File whose bytes to tokenize");
                           o->chat_opt = app.add_option("--chat", o->chat,
                                                        "Chat messages as JSON (or a JSON file): rendered with the "
                                                        "model's chat template and its generation prompt");
                           app.add_flag("--add-special", o->add_special,
                                        "Add the special tokens of the post-processor (e.g. BOS) to --text/--text-file");
                           app.callback([o] { run_tokenize(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
