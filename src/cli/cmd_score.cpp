// dsinfer score: logits of every position of a token sequence, as raw little-endian float32.
#include <cstdio>
#include <fstream>

#include "backend/backend.h"
#include "cli/command.h"
#include "cli/load_flags.h"
#include "core/error.h"
#include "model/model.h"
#include "model/score.h"

namespace dsinfer {
namespace {

struct ScoreOptions {
  std::string model, ids, output, device = "cpu";
  ModelOptions load;
};

void run_score(const ScoreOptions& o) {
  std::vector<int> ids = parse_id_list(o.ids);
  ModelDir dir = ModelDir::open(o.model);
  auto backend = make_backend(parse_device(o.device));
  auto model = load_model(dir, *backend, o.load);
  std::vector<float> logits = score_tokens(*model, *backend, ids);
  std::ofstream out(o.output, std::ios::binary);
  if (!out) fail("cannot write '", o.output, "'");
  out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) fail("failed writing '", o.output, "'");
}

CommandRegistration reg({"score", "Write the logits of every input position (float32 rows of vocab_size) to a file",
                         [](CLI::App& app) {
                           auto o = std::make_shared<ScoreOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           app.add_option("--ids", o->ids, "Comma-separated token ids")->required();
                           app.add_option("--output", o->output, "Output file")->required();
                           app.add_option("--device", o->device, "cpu, cuda or cuda:N");
                           add_model_flags(app, o->load);
                           app.callback([o] { run_score(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
