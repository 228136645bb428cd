#include "plan/weight_totals.h"

namespace dsinfer::plan {

namespace {

WeightSums sum_tensors(const std::vector<TensorGroup>& tensors, const WeightFormat& f) {
  WeightSums s;
  for (const TensorGroup& t : tensors) {
    const double bytes = double(tensor_bytes(t, f));
    if (t.stored) s.stored_bytes[t.shard] += bytes;
    if (t.role != TensorRole::Embedding) s.read_bytes[t.shard] += bytes;
    if (is_product(t.role)) s.matmul_params[t.shard] += double(t.elements());
  }
  return s;
}

}  // namespace

ShardSums& ShardSums::operator+=(const ShardSums& o) {
  for (size_t i = 0; i < v.size(); ++i) v[i] += o.v[i];
  return *this;
}

double ShardSums::per_gpu(const ModelConfig& c, const Layout& l) const {
  double total = 0;
  for (Shard s : {Shard::Replicated, Shard::Split, Shard::KvHeads, Shard::RoutedExpert})
    total += (*this)[s] * shard_share(s, c, l);
  return total;
}

WeightSums& WeightSums::operator+=(const WeightSums& o) {
  stored_bytes += o.stored_bytes;
  read_bytes += o.read_bytes;
  matmul_params += o.matmul_params;
  return *this;
}

WeightTotals WeightTotals::build(const PlanModel& m, const WeightFormat& f) {
  WeightTotals t;
  t.format = f;
  for (int l = 0; l < m.config.num_layers; ++l) t.layers.push_back(sum_tensors(layer_tensors(m, l), f));
  t.embedding = sum_tensors(embedding_tensors(m), f);
  std::vector<TensorGroup> head = head_tensors(m);
  t.head = sum_tensors(head, f);
  t.mtp = sum_tensors(mtp_tensors(m), f);
  for (const TensorGroup& g : head)
    if (!g.stored) t.tied_head_copy[g.shard] += double(tensor_bytes(g, f));
  return t;
}

WeightSums WeightTotals::stage(const Stage& s) const {
  WeightSums sum;
  if (s.first) sum += embedding;
  for (int l = s.first_layer; l < s.first_layer + s.num_layers; ++l) sum += layers[l];
  if (s.last) {
    sum += head;
    if (!s.first) sum.stored_bytes += tied_head_copy;
  }
  return sum;
}

}  // namespace dsinfer::plan
