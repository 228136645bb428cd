#include "plan/layout.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dsinfer::plan {

std::string to_string(const Layout& l) {
  return cat("tp=", l.tp, " pp=", l.pp, " dp=", l.dp, " ep=", l.ep);
}

std::vector<Stage> pipeline_stages(int num_layers, int pp) {
  std::vector<Stage> stages(pp);
  const int base = num_layers / pp, extra = num_layers % pp;
  int next = 0;
  for (int s = 0; s < pp; ++s) {
    // Stages 1..extra take one more layer, so the first stage (embedding) stays light.
    const int n = base + (s >= 1 && s <= extra ? 1 : 0);
    stages[s] = Stage{next, n, s == 0, s == pp - 1};
    next += n;
  }
  return stages;
}

std::string layout_problem(const ModelConfig& c, const Layout& l, int gpus_per_node) {
  if (l.tp < 1 || l.pp < 1 || l.dp < 1 || l.ep < 1) return "tp, pp, dp and ep must be at least 1";
  if (l.tp > gpus_per_node) return cat("tp=", l.tp, " exceeds the ", gpus_per_node, " GPUs of a node");
  if (c.num_heads % l.tp) return cat("tp=", l.tp, " does not divide the ", c.num_heads, " attention heads");
  if (!c.is_deepseek() && c.num_kv_heads % l.tp && l.tp % c.num_kv_heads)
    return cat("tp=", l.tp, " neither divides nor is a multiple of the ", c.num_kv_heads, " KV heads");
  if (l.pp > c.num_layers) return cat("pp=", l.pp, " exceeds the ", c.num_layers, " layers");
  if (l.ep != 1) {
    if (c.n_routed_experts == 0) return "ep applies only to mixture-of-experts models";
    if (l.ep != l.gpus_per_stage())
      return cat("ep=", l.ep, " must be 1 or tp x dp = ", l.gpus_per_stage(), " (experts spread over a whole stage)");
    if (l.ep > c.n_routed_experts) return cat("ep=", l.ep, " exceeds the ", c.n_routed_experts, " routed experts");
  }
  return "";
}

std::vector<Layout> layouts_for(const ModelConfig& c, int n, int gpus_per_node) {
  std::vector<Layout> out;
  for (int tp = 1; tp <= std::min(n, gpus_per_node); ++tp) {
    if (n % tp) continue;
    for (int pp = 1; pp <= n / tp; ++pp) {
      if ((n / tp) % pp) continue;
      const int dp = n / tp / pp;
      for (int ep : {1, tp * dp}) {
        Layout l{tp, pp, dp, ep};
        if (layout_problem(c, l, gpus_per_node).empty() && std::find(out.begin(), out.end(), l) == out.end())
          out.push_back(l);
      }
    }
  }
  return out;
}

double shard_share(Shard s, const ModelConfig& c, const Layout& l) {
  switch (s) {
    case Shard::Replicated: return 1.0;
    case Shard::Split: return 1.0 / l.tp;
    case Shard::KvHeads: return 1.0 / std::min(l.tp, c.num_kv_heads);
    case Shard::RoutedExpert:
      if (l.ep == 1) return 1.0 / l.tp;
      return std::ceil(double(c.n_routed_experts) / l.ep) / c.n_routed_experts;
  }
  return 1.0;
}

}  // namespace dsinfer::plan
