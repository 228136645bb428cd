#include "backend/cuda/expert_table.h"

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace dsinfer::cuda {
namespace {

ExpertPtrs pointers_of(const ExpertWeights& e) {
  auto scale = [](const Weight& w) { return w.scale.empty() ? nullptr : w.scale.ptr<float>(); };
  return {e.gate.w.data, e.up.w.data, e.down.w.data, scale(e.gate), scale(e.up), scale(e.down)};
}

bool same(const ExpertPtrs& a, const ExpertPtrs& b) {
  return a.gate == b.gate && a.up == b.up && a.down == b.down && a.gate_scale == b.gate_scale &&
         a.up_scale == b.up_scale && a.down_scale == b.down_scale;
}

bool grouped_dtype(DType d) {
  return d == DType::BF16 || d == DType::F16 || d == DType::F32 || d == DType::F8_E4M3;
}

// Same dtype and FP8 blocking as expert 0, and 16-byte aligned rows for the kernels' vector loads.
bool groupable(const std::vector<ExpertWeights>& experts, int64_t hidden, int64_t inter) {
  const Weight& ref = experts[0].gate;
  if (!grouped_dtype(ref.w.dtype) || hidden % 8 || inter % 8) return false;
  for (const ExpertWeights& e : experts)
    for (const Weight* w : {&e.gate, &e.up, &e.down}) {
      if (w->w.dtype != ref.w.dtype || !aligned16(w->w.data)) return false;
      if (ref.w.dtype == DType::F8_E4M3 &&
          (w->scale.empty() || w->block_rows != ref.block_rows || w->block_cols != ref.block_cols))
        return false;
    }
  return true;
}

}  // namespace

// Allocates and fills the device array outside the backend's stream, so that a pass being
// captured into a CUDA graph can still build a new layer's table: relaxed capture mode lets this
// thread allocate, and the copy runs and is waited for on a private stream, not captured.
void ExpertTableCache::upload(const void* host, size_t bytes, void*& dev) {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  cudaStream_t copy = nullptr;
  cudaError_t e = cudaSuccess;
  if (dev) e = cudaFree(dev);  // may be of another size
  dev = nullptr;
  if (e == cudaSuccess) e = cudaMalloc(&dev, bytes);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, copy);
  if (e == cudaSuccess) e = cudaStreamSynchronize(copy);
  if (copy) cudaStreamDestroy(copy);
  cudaThreadExchangeStreamCaptureMode(&mode);
  CUDA_CHECK(e);
}

ExpertTableCache::~ExpertTableCache() {
  for (Entry& e : entries_) {
    if (e.dev) cudaFree(e.dev);
    if (e.maps_dev) cudaFree(e.maps_dev);
  }
}

const ExpertTable& ExpertTableCache::get(const std::vector<ExpertWeights>& experts) {
  if (experts.empty()) fail("moe_experts: a layer with no experts");
  for (Entry& e : entries_) {
    if (e.key != experts.data()) continue;
    bool match = e.host.size() == experts.size();
    for (size_t i = 0; match && i < experts.size(); ++i) match = same(e.host[i], pointers_of(experts[i]));
    if (!match) build(experts, e);  // a new layer where a freed one lived
    return e.table;
  }
  entries_.emplace_back();
  build(experts, entries_.back());
  return entries_.back().table;
}

void ExpertTableCache::build(const std::vector<ExpertWeights>& experts, Entry& entry) {
  const int64_t hidden = experts[0].gate.in_features(), inter = experts[0].gate.out_features();
  for (size_t i = 0; i < experts.size(); ++i) {
    const ExpertWeights& e = experts[i];
    if (e.gate.w.shape.size() != 2 || e.gate.in_features() != hidden || e.gate.out_features() != inter ||
        e.up.w.shape != e.gate.w.shape || e.down.out_features() != hidden || e.down.in_features() != inter)
      fail("moe_experts: expert ", i, " has gate ", shape_str(e.gate.w.shape), ", up ", shape_str(e.up.w.shape),
           ", down ", shape_str(e.down.w.shape), "; expected [", inter, ", ", hidden, "] and [", hidden, ", ", inter,
           "] as expert 0");
  }
  entry.key = experts.data();
  entry.host.clear();
  for (const ExpertWeights& e : experts) entry.host.push_back(pointers_of(e));
  upload(entry.host.data(), entry.host.size() * sizeof(ExpertPtrs), entry.dev);
  ExpertTable& t = entry.table;
  t.ex = GroupedExperts{};
  t.ex.table = static_cast<const ExpertPtrs*>(entry.dev);
  t.ex.experts = static_cast<int>(experts.size());
  t.ex.hidden = hidden;
  t.ex.inter = inter;
  t.ex.dtype = experts[0].gate.w.dtype;
  t.grouped = groupable(experts, hidden, inter);
  if (t.ex.dtype == DType::F8_E4M3 && t.grouped) {
    t.ex.block_rows = experts[0].gate.block_rows;
    t.ex.block_cols = experts[0].gate.block_cols;
    t.ex.gate_up_scale_cols = experts[0].gate.scale.shape.back();
    t.ex.down_scale_cols = experts[0].down.scale.shape.back();
  }
  t.fp8_maps = nullptr;
  if (t.grouped && moe_fp8_gemm_shape_supported(t.ex)) {
    std::vector<Fp8ExpertMaps> maps;
    for (const ExpertPtrs& p : entry.host) maps.push_back(fp8_expert_maps(p, hidden, inter));
    upload(maps.data(), maps.size() * sizeof(Fp8ExpertMaps), entry.maps_dev);
    t.fp8_maps = static_cast<const Fp8ExpertMaps*>(entry.maps_dev);
  }
}

}  // namespace dsinfer::cuda
