#include "plan/roofline.h"

#include <algorithm>
#include <cmath>

#include "plan/communication.h"
#include "plan/flops.h"
#include "plan/kv_cache.h"

namespace dsinfer::plan {

namespace {

struct StageWork {
  double weight_bytes = 0, kv_bytes = 0, flops = 0;
};

// Probability that a routed expert gets at least one of `tokens` tokens, each picking k of
// E experts (routing taken as uniform): the chance its weights are read this step.
double expert_touched(const ModelConfig& c, double tokens) {
  const double p_skip = 1.0 - double(c.num_experts_per_tok) / c.n_routed_experts;
  return 1.0 - std::pow(p_skip, tokens);
}

StageWork stage_work(const ModelConfig& c, const WeightSums& sums, const Layout& l, const Stage& s, KvDtype kv,
                     const StepWork& w) {
  StageWork out;
  const double tokens = double(w.tokens);
  // Experts spread over the stage (ep > 1) serve the tokens of every replica.
  const double expert_tokens = l.ep > 1 ? double(w.all_tokens) : tokens;
  ShardSums read = sums.read_bytes, params = sums.matmul_params;
  if (c.n_routed_experts > 0) {
    read[Shard::RoutedExpert] *= expert_touched(c, expert_tokens);
    // Expected token-expert pairs per expert, relative to one pass of every token.
    params[Shard::RoutedExpert] *= expert_tokens / tokens * c.num_experts_per_tok / c.n_routed_experts;
  }
  out.weight_bytes = read.per_gpu(c, l);
  out.flops = 2 * tokens * params.per_gpu(c, l) + tokens * s.num_layers * w.attention_flops_per_layer / l.tp;
  out.kv_bytes = tokens * double(w.kv_tokens_per_token) * s.num_layers * kv_bytes_per_token_per_layer(c, kv, l.tp);
  return out;
}

}  // namespace

double peak_flops(const GpuSpec& gpu, WeightDtype d) {
  double tflops = gpu.bf16_tflops;
  if (d == WeightDtype::FP8Block && gpu.fp8_tflops > 0) tflops = gpu.fp8_tflops;
  if (d == WeightDtype::Int8Channel && gpu.int8_tops > 0) tflops = gpu.int8_tops;
  if (d == WeightDtype::F32) tflops = gpu.bf16_tflops / 2;  // TF32 tensor cores: half the 16-bit rate
  return tflops * 1e12;
}

StepTime step_time(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu, KvDtype kv,
                   const StepWork& work) {
  StepTime t;
  const double bw = gpu.bandwidth_gbs * 1e9, peak = peak_flops(gpu, w.format.dtype);
  for (const Stage& s : pipeline_stages(c.num_layers, l.pp)) {
    const StageWork sw = stage_work(c, w.stage(s), l, s, kv, work);
    const double mem_s = (sw.weight_bytes + sw.kv_bytes) / bw, comp_s = sw.flops / peak;
    t.weight_bytes += sw.weight_bytes;
    t.kv_bytes += sw.kv_bytes;
    t.flops += sw.flops;
    t.memory_s += mem_s;
    t.compute_s += comp_s;
    t.seconds += std::max(mem_s, comp_s);
  }
  t.comm_s = comm_seconds(comm_per_token(c, l), l, gpu, double(work.tokens));
  t.seconds += t.comm_s;
  return t;
}

DecodeEstimate estimate_decode(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu,
                               KvDtype kv, int64_t batch, int64_t context) {
  DecodeEstimate d;
  const int64_t per_replica = (batch + l.dp - 1) / l.dp;
  d.step = step_time(c, w, l, gpu, kv, StepWork{per_replica, batch, decode_attention_flops_per_layer(c, context), context});
  d.tokens_per_s = double(batch) / d.step.seconds;
  d.tokens_per_s_per_gpu = d.tokens_per_s / l.num_gpus();
  d.sequence_tokens_per_s = 1.0 / d.step.seconds;
  return d;
}

PrefillEstimate estimate_prefill(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu,
                                 KvDtype kv, int64_t prompt_len, int64_t step_tokens) {
  PrefillEstimate p;
  const int64_t chunk = std::max<int64_t>(1, std::min(prompt_len, step_tokens));
  p.chunks = (prompt_len + chunk - 1) / chunk;
  // Each chunk attends to what precedes it: over the prompt that sums to the causal average.
  p.chunk = step_time(c, w, l, gpu, kv, StepWork{chunk, chunk * l.dp, prefill_attention_flops_per_layer(c, prompt_len), 1});
  p.ttft_s = p.chunks * p.chunk.seconds;
  p.tokens_per_s = double(l.dp) * prompt_len / p.ttft_s;
  return p;
}

}  // namespace dsinfer::plan
