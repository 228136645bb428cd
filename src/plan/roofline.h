// Roofline times of engine steps: each pipeline stage takes the longer of moving its bytes
// (weights read + KV read or written, at datasheet bandwidth) and doing its FLOPs (at the
// datasheet dense peak of the compute precision); stages run one after another and the
// communication adds on. Ideal bounds: real kernels reach a fraction of both peaks.
#pragma once
#include <cstdint>

#include "plan/hardware_catalog.h"
#include "plan/layout.h"
#include "plan/precision.h"
#include "plan/weight_totals.h"

namespace dsinfer::plan {

// The tensor-core peak a weight format computes at: W8A8 FP8 and INT8 use their 8-bit
// peaks where the GPU has them; int4 (W4A16) and FP8 without FP8 units dequantize to 16 bit.
double peak_flops(const GpuSpec& gpu, WeightDtype d);

struct StepWork {
  int64_t tokens = 1;                     // tokens per data-parallel replica in the step
  int64_t all_tokens = 1;                 // tokens of every replica (what expert-parallel experts serve)
  double attention_flops_per_layer = 0;   // per token
  int64_t kv_tokens_per_token = 0;        // cached tokens each token reads (decode) or writes (prefill: 1)
};

struct StepTime {
  double weight_bytes = 0, kv_bytes = 0, flops = 0;  // per GPU, summed over the stages
  double memory_s = 0, compute_s = 0, comm_s = 0;
  double seconds = 0;
  bool compute_bound() const { return compute_s > memory_s; }
};

StepTime step_time(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu, KvDtype kv,
                   const StepWork& work);

struct DecodeEstimate {
  StepTime step;
  double tokens_per_s = 0;           // all sequences together
  double tokens_per_s_per_gpu = 0;
  double sequence_tokens_per_s = 0;  // what one sequence sees
};
// Every one of `batch` sequences decoding with `context` tokens cached.
DecodeEstimate estimate_decode(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu,
                               KvDtype kv, int64_t batch, int64_t context);

struct PrefillEstimate {
  StepTime chunk;        // one chunk of the prompt
  int64_t chunks = 1;    // chunked prefill: the prompt in steps of the token budget
  double ttft_s = 0;     // time to first token of one prompt
  double tokens_per_s = 0;  // every replica prefilling a prompt at once
};
PrefillEstimate estimate_prefill(const ModelConfig& c, const WeightTotals& w, const Layout& l, const GpuSpec& gpu,
                                 KvDtype kv, int64_t prompt_len, int64_t step_tokens);

}  // namespace dsinfer::plan
