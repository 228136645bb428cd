#include "plan/model_catalog.h"

#include <filesystem>

#include "core/error.h"
#include "io/json_file.h"
#include "plan/embedded_configs.h"

namespace dsinfer::plan {

namespace {

std::string catalog_list() {
  std::string out;
  for (const std::string& n : catalog_model_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> catalog_model_names() {
  std::vector<std::string> names;
  for (const EmbeddedConfig& c : embedded_configs()) names.emplace_back(c.name);
  return names;
}

nlohmann::json catalog_config(const std::string& name) {
  for (const EmbeddedConfig& c : embedded_configs())
    if (name == c.name) return nlohmann::json::parse(c.bytes, c.bytes + c.size);
  fail("unknown model '", name, "' (built-in: ", catalog_list(), "; or pass a model directory or a config.json)");
}

PlanModel load_plan_model(const std::string& spec) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    const fs::path config = fs::path(spec) / "config.json";
    if (!fs::exists(config, ec)) fail("model directory '", spec, "' has no config.json");
    return PlanModel::from_json(read_json_file(config.string()), spec);
  }
  if (fs::is_regular_file(spec, ec)) return PlanModel::from_json(read_json_file(spec), spec);
  return PlanModel::from_json(catalog_config(spec), spec);
}

}  // namespace dsinfer::plan
