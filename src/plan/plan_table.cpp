#include "plan/plan_table.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "plan/kv_cache.h"
#include "plan/plan_json.h"
#include "plan/units.h"

namespace dsinfer::plan {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 671026419200 -> "671,026,419,200"
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string billions(double v) { return fixed(v / 1e9, 2) + "B"; }
std::string gflop(double v) { return fixed(v / 1e9, 2) + " GFLOP"; }
std::string ms(double s) { return fixed(s * 1e3, 3) + " ms"; }
std::string mb(double bytes) { return fixed(bytes / 1e6, 2) + " MB"; }

std::string row(const std::string& label, const std::string& text) {
  std::string padded = label;
  padded.resize(18, ' ');
  return "  " + padded + text + "\n";
}

std::string describe_model(const ModelConfig& c) {
  return cat(c.architecture, ", ", c.num_layers, " layers, ", c.is_deepseek() ? "MLA" : "GQA",
             c.n_routed_experts > 0 ? cat(" + MoE ", c.n_routed_experts, " experts top-", c.num_experts_per_tok) : "");
}

std::string memory_rows(const PlanResult& r) {
  const GpuMemory& g = r.memory;
  const ActivationEstimate& a = g.activations;
  std::string s = row("memory per GPU", cat(gib_text(g.capacity_bytes), " x ", r.options.mem_util, " = ", gib_text(g.usable_bytes),
                                             " usable: weights ", gib_text(double(g.weight_bytes)), " + workspace ",
                                             gib_text(double(a.total())), " + KV cache ",
                                             gib_text(double(std::max<int64_t>(0, g.kv_bytes_available)))));
  s += row("  workspace", cat(a.step_tokens, " tokens/step: residual ", gib_text(double(a.residual_bytes)), " + max(attention ",
                              gib_text(double(a.attention_bytes)), ", MLP ", gib_text(double(a.mlp_bytes)), ") + logits ",
                              gib_text(double(a.logits_bytes)), " + runtime ", gib_text(double(a.runtime_bytes)),
                              a.mtp_bytes > 0 ? cat(" + MTP passes ", gib_text(double(a.mtp_bytes))) : std::string()));
  return s;
}

std::string speed_rows(const PlanResult& r) {
  const PlanOptions& o = r.options;
  const StepTime& d = r.decode.step;
  std::string s = row("FLOPs per token", cat("decode ", gflop(r.decode_flops.total()), " (attention ",
                                             gflop(r.decode_flops.attention), ") at context ", grouped(o.context),
                                             "; prefill ", gflop(r.prefill_flops.total()), " at prompt ",
                                             grouped(o.prompt_len)));
  s += row("decode", cat("batch ", o.batch, ": step ", ms(d.seconds), ", ", bound_name(d), "-bound (memory ", ms(d.memory_s),
                         ", compute ", ms(d.compute_s), ", comm ", ms(d.comm_s), ")"));
  s += row("", cat(fixed(r.decode.tokens_per_s, 1), " tokens/s in all, ", fixed(r.decode.tokens_per_s_per_gpu, 1),
                   " per GPU, ", fixed(r.decode.sequence_tokens_per_s, 1), " per sequence"));
  s += row("prefill", cat(grouped(o.prompt_len), "-token prompt: TTFT ", fixed(r.prefill.ttft_s, 3), " s, ",
                          fixed(r.prefill.tokens_per_s, 0), " tokens/s, ", bound_name(r.prefill.chunk), "-bound"));
  return s;
}

std::string verdict_rows(const PlanResult& r) {
  std::string s = row("fits", r.fits ? "yes" : "NO");
  for (const std::string& p : r.problems) s += row("  why", p);
  for (const std::string& a : r.advice) s += row("  try", a);
  for (const std::string& w : r.warnings) s += row("warning", w);
  return s;
}

}  // namespace

std::string format_plan(const PlanResult& r) {
  const PlanOptions& o = r.options;
  std::string s = cat("dsinfer plan: ", r.model_name, " on ", r.layout.num_gpus(), " x ", o.gpu.name, " (",
                      to_string(r.layout), ")\n");
  s += row("model", describe_model(r.config));
  s += row("parameters", cat("total ", grouped(r.params.total), " (", billions(double(r.params.total)),
                             "), active per token ", grouped(r.params.active), " (",
                             billions(double(r.params.active)), ")"));
  s += row("weights", cat(to_string(r.weights.dtype), ": ", gib_text(double(r.weight_bytes)), " in all, ",
                          gib_text(double(r.memory.weight_bytes)), " per GPU"));
  s += row("KV cache", cat(to_string(o.kv), ": ", grouped(r.kv_bytes_per_token), " bytes per token (",
                           grouped(r.memory.kv_bytes_per_token), " on each GPU); holds ", grouped(r.kv_max_tokens),
                           " tokens in blocks of ", kv_block_tokens(r.config), " = ", grouped(r.kv_max_sequences),
                           " sequences of ", grouped(o.context)));
  s += memory_rows(r);
  s += speed_rows(r);
  s += row("communication", r.layout.num_gpus() == 1
                                ? "none (one GPU)"
                                : cat(mb(r.comm.total()), " per token per GPU (TP ", mb(r.comm.tp_bytes), ", PP ",
                                      mb(r.comm.pp_bytes), ", EP ", mb(r.comm.ep_bytes), ")"));
  s += row("cost", r.usd_per_million_output_tokens
                       ? cat("$", fixed(*o.price_per_gpu_hour, 2), " per GPU-hour -> $",
                             fixed(*r.usd_per_million_output_tokens, 3), " per million output tokens")
                       : "pass --price (per GPU-hour) for $ per million output tokens");
  s += verdict_rows(r);
  return s;
}

}  // namespace dsinfer::plan
