#include "cli/sampling_options.h"

namespace dsinfer {

void SamplingFlags::add_to(CLI::App& app) {
  app.add_option("--temperature", temperature, "Sampling temperature (0 = greedy; default: the model's, else 0)");
  app.add_option("--top-k", top_k, "Keep the k most likely tokens (0 = off)");
  app.add_option("--top-p", top_p, "Nucleus sampling mass (1 = off)");
  app.add_option("--min-p", min_p, "Drop tokens below min-p times the top probability (0 = off)");
  app.add_option("--repetition-penalty", repetition_penalty, "HF-style repetition penalty (1 = off)");
  app.add_option("--seed", seed, "Random seed, for reproducible sampling");
}

SamplingParams SamplingFlags::apply(SamplingParams p) const {
  if (temperature) p.temperature = *temperature;
  if (top_k) p.top_k = *top_k;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  if (repetition_penalty) p.repetition_penalty = *repetition_penalty;
  if (seed) p.seed = *seed;
  return p;
}

}  // namespace dsinfer
