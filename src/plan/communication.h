// Traffic between GPUs that a layout implies, per token, and the time it takes.
//
// TP: two all-reduces of the hidden state per layer (after attention, after the MLP); a ring
//     all-reduce sends 2 (tp-1)/tp of the tensor from each GPU. The vocabulary-parallel head
//     then gathers the float32 logits: (tp-1)/tp of a vocabulary row.
// PP: each stage boundary passes the hidden state and the residual (bf16).
// EP: each MoE layer dispatches a token to its num_experts_per_tok experts and combines the
//     results back (bf16 both ways); (ep-1)/ep of the experts are remote, and the GPUs of a
//     TP group share the dispatching.
#pragma once

#include "model/model_config.h"
#include "plan/hardware_catalog.h"
#include "plan/layout.h"

namespace dsinfer::plan {

// Bandwidth between nodes, per GPU: one 400 Gb/s NIC per GPU, as in DGX/HGX H100 systems.
inline constexpr double kNetworkBytesPerS = 50e9;

struct CommPerToken {
  double tp_bytes = 0, pp_bytes = 0, ep_bytes = 0;  // sent by one GPU per token of its replica
  double total() const { return tp_bytes + pp_bytes + ep_bytes; }
};

CommPerToken comm_per_token(const ModelConfig& c, const Layout& l);
// Seconds for `tokens` tokens per replica: TP on the node's links; EP and PP on the network
// once their group spans nodes.
double comm_seconds(const CommPerToken& comm, const Layout& l, const GpuSpec& gpu, double tokens);

}  // namespace dsinfer::plan
