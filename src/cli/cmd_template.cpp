// dsinfer template: the prompt the model's chat template renders for a chat, byte-exact.
#include <cstdio>

#include "cli/command.h"
#include "io/model_dir.h"
#include "text/chat_messages.h"
#include "text/chat_template.h"

namespace dsinfer {
namespace {

struct TemplateOptions {
  std::string model, messages;
  bool no_generation_prompt = false;
};

void run_template(const TemplateOptions& o) {
  ChatRequest chat = read_chat_file(o.messages);
  ChatTemplate::Options options;
  options.add_generation_prompt = !o.no_generation_prompt;
  options.tools = chat.tools;
  std::string prompt = ChatTemplate::from_model_dir(ModelDir::open(o.model)).render(chat.messages, options);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
}

CommandRegistration reg({"template", "Print the chat prompt the model's chat template renders (no newline added)",
                         [](CLI::App& app) {
                           auto o = std::make_shared<TemplateOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           app.add_option("--messages", o->messages,
                                          "JSON file: a list of messages, or {\"messages\": [...], \"tools\": [...]}")
                               ->required();
                           app.add_flag("--no-generation-prompt", o->no_generation_prompt,
                                        "Render without the assistant generation prompt");
                           app.callback([o] { run_template(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
