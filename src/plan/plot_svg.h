// dsinfer plan --plot: memory per GPU (weights + workspace + KV cache at --batch) against
// context length, one line per precision, with the GPU's capacity drawn across. Hand-written
// SVG: no plotting dependency.
#pragma once
#include <string>

#include "plan/planner.h"

namespace dsinfer::plan {

// The plot for the layout the plan chose.
std::string memory_plot_svg(const PlanModel& m, const PlanOptions& o, const PlanResult& r);
// Writes it; throws naming the file when it cannot.
void write_memory_plot(const std::string& path, const PlanModel& m, const PlanOptions& o, const PlanResult& r);

}  // namespace dsinfer::plan
