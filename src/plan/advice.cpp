#include "plan/advice.h"

#include "core/error.h"
#include "plan/kv_cache.h"
#include "plan/units.h"

namespace dsinfer::plan {

namespace {

std::string where(const PlanResult& p) {
  return cat(p.layout.num_gpus(), " x ", p.options.gpu.name, " (", to_string(p.layout), ")");
}

// The least lossy weight format, smaller than the current one, that fits.
void advise_weights(const PlanModel& m, const PlanOptions& o, const PlanResult& r, std::vector<std::string>& out) {
  for (WeightDtype d : {WeightDtype::FP8Block, WeightDtype::Int8Channel, WeightDtype::Int4Group}) {
    PlanOptions v = o;
    v.weights = d;
    if (weight_bytes(m, resolve_weights(m, v)) >= r.weight_bytes) continue;
    const PlanResult p = best_plan(m, v);
    if (!p.fits) continue;
    out.push_back(cat("--weights-dtype ", to_string(d), ": fits on ", where(p), ", weights ",
                      gib_text(double(p.memory.weight_bytes), 1), " per GPU"));
    return;
  }
}

void advise_kv(const PlanModel& m, const PlanOptions& o, const PlanResult& r, std::vector<std::string>& out) {
  for (KvDtype d : {KvDtype::FP8, KvDtype::Int8, KvDtype::Int4}) {
    if (kv_bytes_per_token(m.config, d) >= r.kv_bytes_per_token) continue;
    PlanOptions v = o;
    v.kv = d;
    const PlanResult p = best_plan(m, v);
    if (!p.fits) continue;
    out.push_back(cat("--kv-dtype ", to_string(d), ": fits on ", where(p), ", ", p.kv_max_sequences, " sequences of ",
                      o.context, " tokens"));
    return;
  }
}

void advise_gpus(const PlanModel& m, const PlanOptions& o, const PlanResult& r, std::vector<std::string>& out) {
  PlanOptions v = o;
  v.num_gpus = v.tp = v.pp = v.ep = 0;
  const PlanResult p = best_plan(m, v);
  if (!p.fits || p.layout == r.layout) return;
  out.push_back(cat("--num-gpus ", p.layout.num_gpus(), " --tp ", p.layout.tp, " --pp ", p.layout.pp, " --ep ",
                    p.layout.ep, ": fits on ", where(p)));
}

// Shorter sequences or fewer of them, on the same GPUs.
void advise_shape(const PlanOptions& o, const PlanResult& r, std::vector<std::string>& out) {
  if (r.memory.kv_bytes_available <= 0) return;
  const int64_t per_replica = (o.batch + r.layout.dp - 1) / r.layout.dp;
  const int block = kv_block_tokens(r.config);
  const int64_t context = r.memory.kv_max_tokens / block / per_replica * block;
  if (context >= block)
    out.push_back(cat("--context ", context, ": fits --batch ", o.batch, " on ", where(r)));
  if (r.kv_max_sequences >= 1)
    out.push_back(cat("--batch ", r.kv_max_sequences, ": fits --context ", o.context, " on ", where(r)));
}

}  // namespace

std::vector<std::string> fit_advice(const PlanModel& m, const PlanOptions& o, const PlanResult& r) {
  std::vector<std::string> out;
  advise_weights(m, o, r, out);
  advise_kv(m, o, r, out);
  advise_gpus(m, o, r, out);
  advise_shape(o, r, out);
  if (out.empty())
    out.push_back(cat("nothing fits: no lower precision, no layout up to ", kMaxSearchGpus, " x ", o.gpu.name,
                      ", and no shorter context makes room; try a GPU with more memory"));
  return out;
}

}  // namespace dsinfer::plan
