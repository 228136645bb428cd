#include "plan/planner.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "plan/advice.h"
#include "plan/kv_cache.h"
#include "plan/units.h"
#include "plan/weight_totals.h"

namespace dsinfer::plan {

namespace {

// What every layout of one search shares: computed once.
struct PlanInputs {
  const PlanModel& model;
  PlanOptions options;
  WeightTotals totals;
  ParamCounts params;
  int64_t weight_bytes;
};

PlanInputs make_inputs(const PlanModel& m, const PlanOptions& o) {
  if (o.context < 1) fail("--context must be at least 1 (got ", o.context, ")");
  if (o.batch < 1) fail("--batch must be at least 1 (got ", o.batch, ")");
  if (o.prompt_len < 0) fail("--prompt-len must not be negative (got ", o.prompt_len, ")");
  if (o.step_tokens < 1) fail("--max-batched-tokens must be at least 1 (got ", o.step_tokens, ")");
  if (!(o.mem_util > 0 && o.mem_util <= 1)) fail("--mem-util must be in (0, 1] (got ", o.mem_util, ")");
  if (!(o.gpu.memory_gib > 0 && o.gpu.bandwidth_gbs > 0 && o.gpu.bf16_tflops > 0))
    fail("GPU '", o.gpu.name, "' needs a positive memory, bandwidth and TFLOPS");
  if (o.price_per_gpu_hour && *o.price_per_gpu_hour < 0) fail("--price must not be negative");
  if (o.mtp && m.config.num_nextn_predict_layers < 1)
    fail("--mtp: ", m.config.architecture, " declares no multi-token-prediction layer (num_nextn_predict_layers)");
  PlanOptions resolved = o;
  if (resolved.prompt_len == 0) resolved.prompt_len = o.context;
  const WeightFormat f = resolve_weights(m, o);
  return PlanInputs{m, resolved, WeightTotals::build(m, f), count_params(m), weight_bytes(m, f)};
}

// One GPU of each stage: the stage whose cache holds the fewest tokens sets the capacity.
GpuMemory gpu_memory(const PlanInputs& in, const Layout& l, const ActivationEstimate& act) {
  const ModelConfig& c = in.model.config;
  const PlanOptions& o = in.options;
  GpuMemory tightest;
  bool first = true;
  for (const Stage& s : pipeline_stages(c.num_layers, l.pp)) {
    const bool mtp = o.mtp && s.last;
    GpuMemory g;
    g.capacity_bytes = o.gpu.memory_bytes();
    g.usable_bytes = g.capacity_bytes * o.mem_util;
    ShardSums stored = in.totals.stage(s).stored_bytes;
    if (mtp) stored += in.totals.mtp.stored_bytes;
    g.weight_bytes = int64_t(std::ceil(stored.per_gpu(c, l)));
    g.activations = mtp ? with_mtp_scratch(act) : act;
    g.kv_bytes_available =
        kv_cache_bytes_available(g.capacity_bytes, o.mem_util, g.weight_bytes, g.activations.total());
    g.kv_bytes_per_token = (s.num_layers + (mtp ? 1 : 0)) * kv_bytes_per_token_per_layer(c, o.kv, l.tp);
    g.kv_max_tokens = kv_cache_max_tokens(g.kv_bytes_available, g.kv_bytes_per_token, kv_block_tokens(c));
    const bool tighter = g.kv_max_tokens < tightest.kv_max_tokens ||
                         (g.kv_max_tokens == tightest.kv_max_tokens && g.kv_bytes_available < tightest.kv_bytes_available);
    if (first || tighter) tightest = g;
    first = false;
  }
  return tightest;
}

void explain_fit(PlanResult& r, int64_t per_replica) {
  const GpuMemory& g = r.memory;
  const int64_t seqs_per_replica = r.kv_max_sequences / r.layout.dp;
  r.fits = g.kv_bytes_available > 0 && seqs_per_replica >= per_replica;
  if (g.kv_bytes_available <= 0) {
    r.problems.push_back(cat("weights (", gib_text(double(g.weight_bytes)), " per GPU) and workspace (",
                             gib_text(double(g.activations.total())), ") exceed the ", gib_text(g.usable_bytes),
                             " usable per GPU (", r.options.gpu.name, " x mem-util ", r.options.mem_util, ")"));
  } else if (seqs_per_replica < per_replica) {
    r.problems.push_back(cat("the KV cache holds ", r.kv_max_tokens, " tokens: ", r.kv_max_sequences,
                             " sequence(s) of ", r.options.context, " tokens, fewer than --batch ", r.options.batch));
  }
}

void add_warnings(PlanResult& r) {
  const ModelConfig& c = r.config;
  if (c.max_position_embeddings > 0 && r.options.context > c.max_position_embeddings)
    r.warnings.push_back(cat("--context ", r.options.context, " exceeds the model's max_position_embeddings (",
                             c.max_position_embeddings, ")"));
  if (r.options.prompt_len > r.options.context)
    r.warnings.push_back(cat("--prompt-len ", r.options.prompt_len, " exceeds --context ", r.options.context));
}

PlanResult evaluate(const PlanInputs& in, const Layout& l) {
  const ModelConfig& c = in.model.config;
  const PlanOptions& o = in.options;
  PlanResult r;
  r.model_name = in.model.name;
  r.config = c;
  r.options = o;
  r.weights = in.totals.format;
  r.params = in.params;
  r.weight_bytes = in.weight_bytes;
  r.kv_bytes_per_token = kv_bytes_per_token(c, o.kv);
  r.layout = l;

  const int64_t per_replica = (o.batch + l.dp - 1) / l.dp;
  const ActivationEstimate act = estimate_activations(c, l, std::max(o.step_tokens, per_replica), per_replica);
  r.memory = gpu_memory(in, l, act);
  r.kv_max_tokens = r.memory.kv_max_tokens * l.dp;
  r.kv_max_sequences = kv_cache_max_sequences(r.memory.kv_max_tokens, o.context, kv_block_tokens(c)) * l.dp;

  r.decode_flops = decode_flops_per_token(in.model, o.context);
  r.prefill_flops = prefill_flops_per_token(in.model, o.prompt_len);
  r.decode = estimate_decode(c, in.totals, l, o.gpu, o.kv, o.batch, o.context);
  r.prefill = estimate_prefill(c, in.totals, l, o.gpu, o.kv, o.prompt_len, o.step_tokens);
  r.comm = comm_per_token(c, l);
  if (o.price_per_gpu_hour)
    r.usd_per_million_output_tokens = *o.price_per_gpu_hour * l.num_gpus() / 3600.0 / r.decode.tokens_per_s * 1e6;
  explain_fit(r, per_replica);
  add_warnings(r);
  return r;
}

bool matches_pins(const Layout& l, const PlanOptions& o) {
  return (o.tp == 0 || l.tp == o.tp) && (o.pp == 0 || l.pp == o.pp) && (o.ep == 0 || l.ep == o.ep);
}

// GPU counts to try, fewest first: powers of two up to a node (how machines are rented),
// then whole nodes.
std::vector<int> gpu_counts(const PlanOptions& o) {
  if (o.num_gpus > 0) return {o.num_gpus};
  std::vector<int> ns;
  const int node = o.gpu.gpus_per_node;
  for (int n = 1; n < node; n *= 2) ns.push_back(n);
  ns.push_back(node);
  for (int n = 2 * node; n <= kMaxSearchGpus; n += node) ns.push_back(n);
  return ns;
}

// Among fitting layouts the fastest decode; among the rest the one that holds the most.
bool better(const PlanResult& a, const PlanResult& b) {
  if (a.fits != b.fits) return a.fits;
  if (a.fits) return a.decode.tokens_per_s > b.decode.tokens_per_s;
  if (a.kv_max_sequences != b.kv_max_sequences) return a.kv_max_sequences > b.kv_max_sequences;
  return a.memory.kv_bytes_available > b.memory.kv_bytes_available;
}

std::string pins_text(const PlanOptions& o) {
  std::string s;
  if (o.num_gpus) s += cat(" --num-gpus ", o.num_gpus);
  if (o.tp) s += cat(" --tp ", o.tp);
  if (o.pp) s += cat(" --pp ", o.pp);
  if (o.ep) s += cat(" --ep ", o.ep);
  return s;
}

// The pinned layout's own problem, when the pins name exactly one.
void check_pinned_layout(const ModelConfig& c, const PlanOptions& o) {
  if (!o.tp || !o.pp) return;
  const int ep = o.ep ? o.ep : 1;
  const int dp = o.num_gpus ? o.num_gpus / (o.tp * o.pp) : (ep > 1 ? std::max(1, ep / o.tp) : 1);
  const Layout l{o.tp, o.pp, dp, ep};
  if (o.num_gpus && o.num_gpus != l.num_gpus())
    fail("--num-gpus ", o.num_gpus, " is not tp x pp x dp for", pins_text(o));
  const std::string why = layout_problem(c, l, o.gpu.gpus_per_node);
  if (!why.empty()) fail("layout ", to_string(l), " cannot serve ", c.architecture, ": ", why);
}

PlanResult choose_layout(const PlanInputs& in) {
  const ModelConfig& c = in.model.config;
  const PlanOptions& o = in.options;
  check_pinned_layout(c, o);
  std::optional<PlanResult> fallback;
  for (int n : gpu_counts(o)) {
    // The search skips counts whose memory cannot even hold one copy of the weights.
    if (o.num_gpus == 0 && double(in.weight_bytes) > n * o.gpu.memory_bytes() * o.mem_util) continue;
    std::optional<PlanResult> best;
    for (const Layout& l : layouts_for(c, n, o.gpu.gpus_per_node)) {
      if (!matches_pins(l, o)) continue;
      PlanResult r = evaluate(in, l);
      if (!best || better(r, *best)) best = std::move(r);
    }
    if (best && best->fits) return *best;
    if (best && !fallback) fallback = std::move(best);
  }
  if (!fallback) {
    // No valid layout at all (or every count was skipped): report the smallest valid one.
    for (int n : gpu_counts(o))
      for (const Layout& l : layouts_for(c, n, o.gpu.gpus_per_node))
        if (matches_pins(l, o)) return evaluate(in, l);
    fail("no layout of ", c.architecture, " on ", o.gpu.name, " matches", pins_text(o),
         " (tp must divide the attention heads and stay within a node of ", o.gpu.gpus_per_node, ")");
  }
  return *fallback;
}

}  // namespace

WeightFormat resolve_weights(const PlanModel& m, const PlanOptions& o) {
  if (!o.weights) return m.stored;
  WeightFormat f{*o.weights};
  if (f.dtype == WeightDtype::FP8Block && m.config.fp8_checkpoint) f = m.stored;  // the checkpoint's block shape
  return f;
}

PlanResult plan_for_layout(const PlanModel& m, const PlanOptions& o, const Layout& l) {
  const std::string why = layout_problem(m.config, l, o.gpu.gpus_per_node);
  if (!why.empty()) fail("layout ", to_string(l), " cannot serve ", m.config.architecture, ": ", why);
  return evaluate(make_inputs(m, o), l);
}

PlanResult best_plan(const PlanModel& m, const PlanOptions& o) { return choose_layout(make_inputs(m, o)); }

PlanResult make_plan(const PlanModel& m, const PlanOptions& o) {
  PlanResult r = best_plan(m, o);
  if (!r.fits) r.advice = fit_advice(m, o, r);
  return r;
}

}  // namespace dsinfer::plan
