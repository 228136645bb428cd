// CudaBackend's mixture of experts. Routing is one kernel. Expert compute, first version: the
// (token, choice) pairs are sorted by expert on the host (one synchronization per MoE layer),
// the tokens gathered in that order, each expert's gate/up/down run as cuBLASLt products over
// its contiguous rows, and a combine kernel sums the weighted results back per token.
#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_checks.h"

namespace dsinfer::cuda {

void CudaBackend::moe_route(const Tensor& logits, const Weight* bias, const MoeRouting& r, Tensor ids, Tensor weights) {
  expect(logits, DType::F32, "moe_route", "logits");
  expect(ids, DType::I32, "moe_route", "ids");
  expect(weights, DType::F32, "moe_route", "weights");
  const int tokens = static_cast<int>(logits.dim(0)), experts = static_cast<int>(logits.dim(1));
  expect_shape(ids, {tokens, r.top_k}, "moe_route", "ids");
  expect_shape(weights, {tokens, r.top_k}, "moe_route", "weights");
  if (r.top_k < 1 || r.top_k > experts || (bias && bias->w.numel() != experts))
    fail("moe_route: top-", r.top_k, " of ", experts, " experts", bias ? cat(", bias of ", bias->w.numel()) : "");
  if (r.group_limited && (r.n_group < 1 || r.n_group > 32 || experts % r.n_group || r.topk_group < 1 ||
                          r.topk_group > r.n_group))
    fail("moe_route: ", experts, " experts in ", r.n_group, " groups (at most 32), keeping ", r.topk_group);
  const RouteParams p{r.top_k, r.n_group, r.topk_group, r.sigmoid, r.group_limited, r.group_by_top2_sum, r.normalize,
                      r.scaling};
  DeviceWeight b;
  if (bias) b = device_weight(*bias);
  launch_moe_route(logits.ptr<float>(), tokens, experts, bias ? &b : nullptr, p, ids.ptr<int>(), weights.ptr<float>(),
                   stream_);
}

void CudaBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                              const std::vector<ExpertWeights>& experts, Tensor out) {
  expect(x, DType::BF16, "moe_experts", "input");
  expect(ids, DType::I32, "moe_experts", "ids");
  expect(weights, DType::F32, "moe_experts", "weights");
  expect(out, DType::BF16, "moe_experts", "output");
  const int tokens = static_cast<int>(x.dim(0)), k = static_cast<int>(ids.dim(1));
  const int64_t hidden = x.dim(1);
  expect_shape(out, x.shape, "moe_experts", "output");
  expect_shape(weights, ids.shape, "moe_experts", "weights");
  if (ids.dim(0) != tokens) fail("moe_experts: ", tokens, " tokens but ids ", shape_str(ids.shape));
  const int n = tokens * k;
  if (n == 0) return;

  // Which expert each (token, choice) pair goes to: read back, then a counting sort.
  std::vector<int> choice(n);
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the staging buffer is free, the ids are computed
  void* staged = staging_.get(n * sizeof(int));
  CUDA_CHECK(cudaMemcpyAsync(staged, ids.data, n * sizeof(int), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(choice.data(), staged, n * sizeof(int));
  const int n_experts = static_cast<int>(experts.size());
  std::vector<int> offset(n_experts + 1, 0);
  for (int e : choice) {
    if (e < 0 || e >= n_experts) fail("moe_experts: expert id ", e, " outside ", n_experts, " experts");
    ++offset[e + 1];
  }
  for (int e = 0; e < n_experts; ++e) offset[e + 1] += offset[e];
  // order[0, n): the token of each permuted row; order[n, 2n): the permuted row of each pair.
  std::vector<int> order(2 * n), next(offset.begin(), offset.end() - 1);
  for (int i = 0; i < n; ++i) {
    const int row = next[choice[i]]++;
    order[row] = i / k;
    order[n + i] = row;
  }
  // Every chosen expert has the same shape, so the activations are one [n, inter] matrix.
  const int64_t inter = experts[choice[0]].gate.out_features();
  for (int e = 0; e < n_experts; ++e)
    if (offset[e + 1] > offset[e]) {
      const ExpertWeights& ew = experts[e];
      if (ew.gate.in_features() != hidden || ew.gate.out_features() != inter || ew.up.w.shape != ew.gate.w.shape ||
          ew.down.out_features() != hidden || ew.down.in_features() != inter)
        fail("moe_experts: expert ", e, " has gate ", shape_str(ew.gate.w.shape), ", up ", shape_str(ew.up.w.shape),
             ", down ", shape_str(ew.down.w.shape), "; expected [", inter, ", ", hidden, "] and [", hidden, ", ", inter, "]");
    }
  const int* dev_order = upload_ints(order, index_dev_);

  ScratchCarver carve;
  const size_t xp_at = carve.add(n * hidden * sizeof(bf16)), g_at = carve.add(n * inter * sizeof(bf16)),
               u_at = carve.add(n * inter * sizeof(bf16)), y_at = carve.add(n * hidden * sizeof(float));
  char* ws = static_cast<char*>(moe_ws_.get(carve.total()));
  bf16* xp = reinterpret_cast<bf16*>(ws + xp_at);
  bf16* g = reinterpret_cast<bf16*>(ws + g_at);
  bf16* u = reinterpret_cast<bf16*>(ws + u_at);
  float* y = reinterpret_cast<float*>(ws + y_at);

  launch_gather_rows(x.data, dev_order, n, hidden * static_cast<int64_t>(sizeof(bf16)), xp, stream_);
  // Gate and up of every expert, one SiLU over all rows, then every expert's down projection
  // (float32 output, kept until the weighted sum).
  for (int e = 0; e < n_experts; ++e) {
    const int rows = offset[e + 1] - offset[e];
    if (rows == 0) continue;
    const bf16* xs = xp + offset[e] * hidden;
    gemm_->matmul(xs, bf16_weight(experts[e].gate), g + offset[e] * inter, DType::BF16, rows, inter, hidden);
    gemm_->matmul(xs, bf16_weight(experts[e].up), u + offset[e] * inter, DType::BF16, rows, inter, hidden);
  }
  launch_silu_mul(g, u, g, n * inter, stream_);
  for (int e = 0; e < n_experts; ++e) {
    const int rows = offset[e + 1] - offset[e];
    if (rows == 0) continue;
    gemm_->matmul(g + offset[e] * inter, bf16_weight(experts[e].down), y + offset[e] * hidden, DType::F32, rows, hidden,
                  inter);
  }
  launch_moe_combine(y, dev_order + n, weights.ptr<float>(), tokens, k, hidden, out.ptr<bf16>(), stream_);
}

}  // namespace dsinfer::cuda
