#include "plan/communication.h"

namespace dsinfer::plan {

namespace {
constexpr double kAct = 2, kLogit = 4;
}

CommPerToken comm_per_token(const ModelConfig& c, const Layout& l) {
  CommPerToken t;
  const double h = c.hidden_size;
  if (l.tp > 1) {
    const double ring = 2.0 * (l.tp - 1) / l.tp;
    t.tp_bytes = c.num_layers * 2 * ring * h * kAct + double(l.tp - 1) / l.tp * c.vocab_size * kLogit;
  }
  t.pp_bytes = (l.pp - 1) * 2 * h * kAct;
  if (l.ep > 1) {
    int moe_layers = 0;
    for (int layer = 0; layer < c.num_layers; ++layer) moe_layers += c.is_moe_layer(layer);
    t.ep_bytes = moe_layers * c.num_experts_per_tok * h * kAct * 2 * (double(l.ep - 1) / l.ep) / l.tp;
  }
  return t;
}

double comm_seconds(const CommPerToken& comm, const Layout& l, const GpuSpec& gpu, double tokens) {
  const double link = gpu.link_gbs * 1e9;
  const double ep_bw = l.gpus_per_stage() <= gpu.gpus_per_node ? link : kNetworkBytesPerS;
  const double pp_bw = l.num_gpus() <= gpu.gpus_per_node ? link : kNetworkBytesPerS;
  double s = 0;
  if (comm.tp_bytes > 0) s += comm.tp_bytes / link;
  if (comm.ep_bytes > 0) s += comm.ep_bytes / ep_bw;
  if (comm.pp_bytes > 0) s += comm.pp_bytes / pp_bw;
  return s * tokens;
}

}  // namespace dsinfer::plan
