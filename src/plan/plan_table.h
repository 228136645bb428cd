// The plan as a readable table (dsinfer plan without --json).
#pragma once
#include <string>

#include "plan/planner.h"

namespace dsinfer::plan {

std::string format_plan(const PlanResult& r);

}  // namespace dsinfer::plan
