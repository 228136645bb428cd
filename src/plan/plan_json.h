// The plan as JSON for machines (dsinfer plan --json); dotted names in the docs are nesting.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "plan/planner.h"

namespace dsinfer::plan {

// "memory", "compute" or "communication": the largest part of the step time.
std::string bound_name(const StepTime& t);

nlohmann::json to_json(const PlanResult& r);

}  // namespace dsinfer::plan
