// The built-in models (configs/*.json compiled in) and resolving --model.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/plan_model.h"

namespace dsinfer::plan {

std::vector<std::string> catalog_model_names();
// The embedded config.json of a built-in model; throws listing the catalog when unknown.
nlohmann::json catalog_config(const std::string& name);
// A built-in name, a model directory (its config.json), or a config.json path.
PlanModel load_plan_model(const std::string& spec);

}  // namespace dsinfer::plan
