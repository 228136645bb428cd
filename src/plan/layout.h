// How a model is spread over GPUs, and which share of each tensor one GPU holds.
//
// tp: tensor parallelism inside a node (attention heads, MLP columns, vocabulary split).
// pp: pipeline stages, each a contiguous run of layers (embedding on the first, head on the last).
// dp: data-parallel replicas of everything except the routed experts; each serves its own sequences.
// ep: 1 = routed experts split like the dense MLP (across the TP group, copied per replica);
//     tp * dp = whole experts spread over all GPUs of a stage (DeepSeek's own deployment:
//     data-parallel attention, expert-parallel MoE).
#pragma once
#include <string>
#include <vector>

#include "model/model_config.h"
#include "plan/tensor_inventory.h"

namespace dsinfer::plan {

struct Layout {
  int tp = 1, pp = 1, dp = 1, ep = 1;
  int num_gpus() const { return tp * pp * dp; }
  int gpus_per_stage() const { return tp * dp; }
  bool operator==(const Layout&) const = default;
};

std::string to_string(const Layout& l);

struct Stage {
  int first_layer = 0, num_layers = 0;
  bool first = false, last = false;  // holds the embedding / the final norm and lm_head
};

// Even split; the layers left over go to the stages after the first, which carries the embedding.
std::vector<Stage> pipeline_stages(int num_layers, int pp);

// Why the layout cannot serve the model, or "" when it can.
std::string layout_problem(const ModelConfig& c, const Layout& l, int gpus_per_node);

// Every valid layout on exactly n GPUs.
std::vector<Layout> layouts_for(const ModelConfig& c, int n, int gpus_per_node);

// Fraction of a tensor of this kind one GPU holds (the busiest GPU when experts do not
// divide evenly).
double shard_share(Shard s, const ModelConfig& c, const Layout& l);

}  // namespace dsinfer::plan
