// What to change when a plan does not fit: a lower precision, more GPUs, a shorter context
// or fewer sequences, each checked by planning again.
#pragma once
#include <string>
#include <vector>

#include "plan/planner.h"

namespace dsinfer::plan {

std::vector<std::string> fit_advice(const PlanModel& m, const PlanOptions& o, const PlanResult& r);

}  // namespace dsinfer::plan
