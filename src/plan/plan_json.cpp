#include "plan/plan_json.h"

#include "plan/kv_cache.h"

namespace dsinfer::plan {

using nlohmann::json;

namespace {

json flops_json(const TokenFlops& f) {
  return {{"linear", f.linear}, {"attention", f.attention}, {"total", f.total()}};
}

json step_json(const StepTime& t) {
  return {{"bound", bound_name(t)},
          {"memory_time_s", t.memory_s},
          {"compute_time_s", t.compute_s},
          {"comm_time_s", t.comm_s},
          {"weight_bytes_read_per_gpu", t.weight_bytes},
          {"kv_bytes_per_gpu", t.kv_bytes},
          {"flops_per_gpu", t.flops}};
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json memory_json(const GpuMemory& g) {
  const ActivationEstimate& a = g.activations;
  return {{"gpu_capacity_bytes", g.capacity_bytes},
          {"usable_bytes", g.usable_bytes},
          {"weights_bytes", g.weight_bytes},
          {"activation_bytes", a.total()},
          {"activations",
           {{"step_tokens", a.step_tokens},
            {"residual_bytes", a.residual_bytes},
            {"attention_bytes", a.attention_bytes},
            {"mlp_bytes", a.mlp_bytes},
            {"logits_bytes", a.logits_bytes},
            {"runtime_bytes", a.runtime_bytes},
            {"mtp_bytes", a.mtp_bytes},
            {"derivation",
             "residual + max(attention, mlp) + logits + runtime, for one step of step_tokens tokens per GPU "
             "(see docs/planning.md)"}}},
          {"kv_cache_bytes", std::max<int64_t>(0, g.kv_bytes_available)}};
}

}  // namespace

std::string bound_name(const StepTime& t) {
  if (t.comm_s > t.memory_s && t.comm_s > t.compute_s) return "communication";
  return t.compute_bound() ? "compute" : "memory";
}

json to_json(const PlanResult& r) {
  const ModelConfig& c = r.config;
  const PlanOptions& o = r.options;
  json j;
  j["model"] = {{"name", r.model_name},
                {"architecture", c.architecture},
                {"layers", c.num_layers},
                {"attention", c.is_deepseek() ? "MLA" : "GQA"},
                {"moe", c.n_routed_experts > 0}};
  j["gpu"] = {{"name", o.gpu.name},
              {"memory_bytes", o.gpu.memory_bytes()},
              {"bandwidth_gbs", o.gpu.bandwidth_gbs},
              {"bf16_tflops", o.gpu.bf16_tflops},
              {"fp8_tflops", o.gpu.fp8_tflops},
              {"int8_tops", o.gpu.int8_tops},
              {"mem_util", o.mem_util}};
  j["layout"] = {{"num_gpus", r.layout.num_gpus()}, {"tp", r.layout.tp}, {"pp", r.layout.pp}, {"dp", r.layout.dp},
                 {"ep", r.layout.ep}};
  j["params"] = {{"total", r.params.total},
                 {"active", r.params.active},
                 {"embedding", r.params.embedding},
                 {"routed_experts", r.params.routed_experts}};
  j["weights"] = {{"dtype", to_string(r.weights.dtype)},
                  {"bytes", r.weight_bytes},
                  {"bytes_per_gpu", r.memory.weight_bytes}};
  j["kv_cache"] = {{"dtype", to_string(o.kv)},
                   {"bytes_per_token", r.kv_bytes_per_token},
                   {"bytes_per_token_per_gpu", r.memory.kv_bytes_per_token},
                   {"max_tokens", r.kv_max_tokens},
                   {"max_sequences", r.kv_max_sequences},
                   {"context", o.context},
                   {"block_tokens", kv_block_tokens(r.config)}};
  j["memory"] = memory_json(r.memory);
  j["flops"] = {{"decode_per_token", flops_json(r.decode_flops)},
                {"prefill_per_token", flops_json(r.prefill_flops)}};
  j["decode"] = step_json(r.decode.step);
  j["decode"].update({{"context", o.context},
                      {"batch", o.batch},
                      {"step_time_s", r.decode.step.seconds},
                      {"tokens_per_s", r.decode.tokens_per_s},
                      {"tokens_per_s_per_gpu", r.decode.tokens_per_s_per_gpu},
                      {"sequence_tokens_per_s", r.decode.sequence_tokens_per_s}});
  j["prefill"] = step_json(r.prefill.chunk);
  j["prefill"].update({{"prompt_len", o.prompt_len},
                       {"chunks", r.prefill.chunks},
                       {"tokens_per_s", r.prefill.tokens_per_s},
                       {"ttft_s", r.prefill.ttft_s}});
  j["communication"] = {{"bytes_per_token", r.comm.total()},
                        {"tp_bytes", r.comm.tp_bytes},
                        {"pp_bytes", r.comm.pp_bytes},
                        {"ep_bytes", r.comm.ep_bytes}};
  j["cost"] = {{"price_per_gpu_hour", optional_number(o.price_per_gpu_hour)},
               {"usd_per_million_output_tokens", optional_number(r.usd_per_million_output_tokens)}};
  j["fits"] = r.fits;
  j["problems"] = r.problems;
  j["advice"] = r.advice;
  j["warnings"] = r.warnings;
  return j;
}

}  // namespace dsinfer::plan
