// The sampling flags shared by generate and chat; unset flags keep the model's defaults.
#pragma once
#include <CLI/CLI.hpp>
#include <optional>

#include "runtime/sampling_params.h"

namespace dsinfer {

struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;

  void add_to(CLI::App& app);
  SamplingParams apply(SamplingParams defaults) const;
};

}  // namespace dsinfer
