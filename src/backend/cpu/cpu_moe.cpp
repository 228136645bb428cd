// Mixture-of-experts routing and expert compute, float32 reference of DeepSeek V2/V3 routing.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace dsinfer {
namespace {

// Indices of the k largest values, largest first (ties: lower index first, as torch.topk on CPU).
std::vector<int> top_k_indices(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(k);
  return idx;
}

// Zeroes the choice scores of experts outside the topk_group best groups.
void mask_groups(std::vector<float>& choice, const MoeRouting& r) {
  const int experts = static_cast<int>(choice.size()), per_group = experts / r.n_group;
  std::vector<float> group_score(r.n_group);
  for (int g = 0; g < r.n_group; ++g) {
    std::vector<float> members(choice.begin() + g * per_group, choice.begin() + (g + 1) * per_group);
    std::sort(members.begin(), members.end(), std::greater<float>());
    group_score[g] = r.group_by_top2_sum ? members[0] + (per_group > 1 ? members[1] : 0.0f) : members[0];
  }
  std::vector<int> keep = top_k_indices(group_score, r.topk_group);
  std::vector<bool> kept(r.n_group, false);
  for (int g : keep) kept[g] = true;
  for (int e = 0; e < experts; ++e)
    if (!kept[e / per_group]) choice[e] = 0.0f;
}

}  // namespace

void CpuBackend::moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) {
  const int64_t tokens = logits.dim(0), experts = logits.dim(1);
  std::vector<float> b(bias ? experts : 0);
  if (bias) weight_row_to_f32(*bias, 0, b.data());
#pragma omp parallel for if (tokens * experts > kParallelWork / 4)
  for (int64_t t = 0; t < tokens; ++t) {
    const float* l = logits.ptr<float>() + t * experts;
    std::vector<float> scores(experts);
    if (r.sigmoid) {
      for (int64_t e = 0; e < experts; ++e) scores[e] = 1.0f / (1.0f + std::exp(-l[e]));
    } else {
      float mx = *std::max_element(l, l + experts), sum = 0.0f;
      for (int64_t e = 0; e < experts; ++e) sum += (scores[e] = std::exp(l[e] - mx));
      for (float& s : scores) s /= sum;
    }
    // The correction bias steers which experts are chosen, never their weights.
    std::vector<float> choice = scores;
    for (size_t e = 0; e < b.size(); ++e) choice[e] += b[e];
    if (r.group_limited) mask_groups(choice, r);
    std::vector<int> top = top_k_indices(choice, r.top_k);
    float sum = 0.0f;
    for (int j = 0; j < r.top_k; ++j) sum += scores[top[j]];
    for (int j = 0; j < r.top_k; ++j) {
      float w = scores[top[j]];
      if (r.normalize) w /= sum + 1e-20f;
      ids.ptr<int>()[t * r.top_k + j] = top[j];
      weights.ptr<float>()[t * r.top_k + j] = w * r.scaling;
    }
  }
}

void CpuBackend::moe_local_ids(Tensor ids, int first, int count) {
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int& id = ids.ptr<int>()[i];
    id = id >= first && id < first + count ? id - first : -1;
  }
}

void CpuBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                             const std::vector<ExpertWeights>& experts, Tensor out) {
  const int64_t tokens = x.dim(0), hidden = x.dim(1), k = ids.dim(1);
  fill_zero(out);
  // Group the (token, slot) pairs by expert so each expert's weights are read once.
  std::vector<std::vector<int64_t>> assigned(experts.size());
  for (int64_t i = 0; i < tokens * k; ++i) {
    const int id = ids.ptr<int>()[i];
    if (id >= 0 && id < static_cast<int>(experts.size())) assigned[id].push_back(i);  // else held elsewhere
  }
  for (size_t e = 0; e < experts.size(); ++e) {
    const auto& rows = assigned[e];
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size()), inter = experts[e].gate.out_features();
    std::vector<float> xin(n * hidden), gate(n * inter), up(n * inter), act(n * inter), y(n * hidden);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(x.ptr<float>() + (rows[i] / k) * hidden, hidden, xin.data() + i * hidden);
    auto view = [](std::vector<float>& v, int64_t r, int64_t c) { return Tensor{DType::F32, {r, c}, v.data(), {}}; };
    linear(view(xin, n, hidden), experts[e].gate, nullptr, view(gate, n, inter));
    linear(view(xin, n, hidden), experts[e].up, nullptr, view(up, n, inter));
    silu_mul(view(gate, n, inter), view(up, n, inter), view(act, n, inter));
    linear(view(act, n, inter), experts[e].down, nullptr, view(y, n, hidden));
    for (int64_t i = 0; i < n; ++i) {
      float w = weights.ptr<float>()[rows[i]];
      float* o = out.ptr<float>() + (rows[i] / k) * hidden;
      for (int64_t d = 0; d < hidden; ++d) o[d] += w * y[i * hidden + d];
    }
  }
}

}  // namespace dsinfer
