// dsinfer detokenize: the text of token ids, byte-exact, special tokens included.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "io/model_dir.h"
#include "text/tokenizer.h"

namespace dsinfer {
namespace {

struct DetokenizeOptions {
  std::string model, ids;
};

void run_detokenize(const DetokenizeOptions& o) {
  std::vector<int> ids = o.ids.empty() ? std::vector<int>{} : parse_id_list(o.ids);
  Tokenizer tokenizer = Tokenizer::from_model_dir(ModelDir::open(o.model));
  // decode() skips unknown ids as HF does; asked for them by name, the command says so.
  for (int id : ids)
    if (id < 0 || id >= tokenizer.vocab_size())
      fail("token id ", id, " is outside the tokenizer's vocabulary of ", tokenizer.vocab_size());
  std::string text = tokenizer.decode(ids, /*skip_special_tokens=*/false);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

CommandRegistration reg({"detokenize", "Print the text of comma-separated token ids (no newline added)",
                         [](CLI::App& app) {
                           auto o = std::make_shared<DetokenizeOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           app.add_option("--ids", o->ids, "Comma-separated token ids")->required();
                           app.callback([o] { run_detokenize(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
