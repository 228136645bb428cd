#include "io/model_dir.h"

#include <filesystem>

#include "core/error.h"
#include "io/json_file.h"

namespace dsinfer {
namespace fs = std::filesystem;

ModelDir ModelDir::open(const std::string& path) {
  if (!fs::is_directory(path)) fail("model directory '", path, "' does not exist");
  ModelDir d;
  d.path = path;
  fs::path cfg = fs::path(path) / "config.json";
  if (!fs::exists(cfg)) fail("missing '", cfg.string(), "': not a Hugging Face model directory");
  d.config = read_json_file(cfg.string());
  if (!d.config.is_object()) fail("'", cfg.string(), "' is not a JSON object");
  fs::path tok = fs::path(path) / "tokenizer.json";
  if (fs::exists(tok)) d.tokenizer_json = tok.string();
  fs::path tok_cfg = fs::path(path) / "tokenizer_config.json";
  if (fs::exists(tok_cfg)) d.tokenizer_config = read_json_file(tok_cfg.string());
  fs::path gen = fs::path(path) / "generation_config.json";
  if (fs::exists(gen)) d.generation_config = read_json_file(gen.string());
  return d;
}

}  // namespace dsinfer
