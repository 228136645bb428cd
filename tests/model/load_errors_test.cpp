// Loading a model reports what is wrong and where: architecture, missing tensor, wrong shape.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../fixture_util.h"
#include "backend/backend.h"
#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/model.h"

using namespace dsinfer;
using namespace dsinfer::testing;
namespace fs = std::filesystem;

namespace {

// A copy of a fixture with its config edited and tensors dropped or reshaped.
std::string broken_copy(const std::string& fixture, const std::string& tag, const nlohmann::json& config_patch,
                        const std::string& drop = "", const std::string& reshape = "") {
  fs::path dir = fs::temp_directory_path() / ("dsinfer_broken_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TensorStore store = TensorStore::open_dir(fixture_dir(fixture));
  std::map<std::string, OwnedTensor> out;
  for (const std::string& name : store.names()) {
    if (name == drop) continue;
    const Tensor& t = store.get(name).view;
    OwnedTensor o{t.dtype, t.shape, {}};
    o.bytes.assign(static_cast<const unsigned char*>(t.data), static_cast<const unsigned char*>(t.data) + t.nbytes());
    if (name == reshape) o.shape = {t.shape[1], t.shape[0]};
    out[name] = std::move(o);
  }
  write_safetensors((dir / "model.safetensors").string(), out);
  nlohmann::json config = read_json_file(fixture_dir(fixture) + "/config.json");
  config.merge_patch(config_patch);
  std::ofstream(dir / "config.json") << config.dump();
  return dir.string();
}

std::string load_error(const std::string& dir) {
  auto backend = make_cpu_backend();
  try {
    load_model(ModelDir::open(dir), *backend);
  } catch (const Error& e) {
    fs::remove_all(dir);
    return e.what();
  }
  fs::remove_all(dir);
  return "";
}

}  // namespace

TEST(ModelLoad, UnsupportedArchitectureListsTheSupportedOnes) {
  std::string e = load_error(broken_copy("qwen2-tiny", "arch", {{"architectures", {"MistralForCausalLM"}}}));
  EXPECT_NE(e.find("MistralForCausalLM"), std::string::npos) << e;
  EXPECT_NE(e.find("DeepseekV3ForCausalLM"), std::string::npos) << e;
}

TEST(ModelLoad, MissingTensorIsNamed) {
  std::string e = load_error(broken_copy("ds3-tiny", "missing", nlohmann::json::object(), "model.layers.1.self_attn.kv_b_proj.weight"));
  EXPECT_NE(e.find("missing tensor 'model.layers.1.self_attn.kv_b_proj.weight'"), std::string::npos) << e;
}

TEST(ModelLoad, WrongShapeNamesTheTensorTheExpectedAndTheActualShape) {
  std::string e = load_error(broken_copy("llama-tiny", "shape", nlohmann::json::object(), "", "model.layers.0.mlp.up_proj.weight"));
  EXPECT_NE(e.find("'model.layers.0.mlp.up_proj.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("[32, 64]"), std::string::npos) << e;
  EXPECT_NE(e.find("expected [64, 32]"), std::string::npos) << e;
}

TEST(ModelLoad, MalformedConfigFieldsAreNamed) {
  std::string e = load_error(broken_copy("ds2-lite-tiny", "cfg", {{"kv_lora_rank", "big"}}));
  EXPECT_NE(e.find("kv_lora_rank"), std::string::npos) << e;
}

TEST(ModelLoad, RefusesWhatTheEngineDoesNotImplement) {
  std::string e = load_error(broken_copy("llama-tiny", "act", {{"hidden_act", "gelu"}}));
  EXPECT_NE(e.find("hidden_act 'gelu'"), std::string::npos) << e;
}
