// dsinfer plan: does a model fit, on which GPUs, how fast, at what cost (src/plan/).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/error.h"
#include "plan/hardware_catalog.h"
#include "plan/model_catalog.h"
#include "plan/params.h"
#include "plan/plan_json.h"
#include "plan/plan_table.h"
#include "plan/planner.h"
#include "plan/plot_svg.h"

namespace dsinfer {
namespace {

using namespace plan;

struct PlanArgs {
  std::string model, weights = "as-stored", kv = "bf16", gpu, plot;
  bool list = false, json = false, mtp = false;
  int64_t context = 4096, batch = 1, prompt_len = 0, step_tokens = 8192;
  double gpu_mem = 0, gpu_bw = 0, gpu_tflops = 0, mem_util = 0.9, price = -1;
  int num_gpus = 0, tp = 0, pp = 0, ep = 0;
};

// A custom GPU has no known interconnect: PCIe Gen4 x16 is the conservative guess.
constexpr double kCustomLinkGbs = 32;

GpuSpec resolve_gpu(const PlanArgs& a) {
  const bool custom = a.gpu_mem > 0 || a.gpu_bw > 0 || a.gpu_tflops > 0;
  if (!a.gpu.empty() || !custom) {
    GpuSpec g = find_gpu(a.gpu.empty() ? "H100-SXM" : a.gpu);
    if (a.gpu_mem > 0) g.memory_gib = a.gpu_mem;
    if (a.gpu_bw > 0) g.bandwidth_gbs = a.gpu_bw;
    if (a.gpu_tflops > 0) g.bf16_tflops = g.fp8_tflops = g.int8_tops = a.gpu_tflops;
    return g;
  }
  if (a.gpu_mem <= 0 || a.gpu_bw <= 0 || a.gpu_tflops <= 0)
    fail("a custom GPU needs all of --gpu-mem (GiB), --gpu-bw (GB/s) and --gpu-tflops (dense BF16), or --gpu NAME (",
         gpu_catalog_names(), ")");
  return GpuSpec{"custom", a.gpu_mem, a.gpu_bw, a.gpu_tflops, 0, 0, kCustomLinkGbs, 8};
}

PlanOptions options_from(const PlanArgs& a) {
  PlanOptions o;
  if (a.weights != "as-stored") o.weights = parse_weight_dtype(a.weights);
  o.kv = parse_kv_dtype(a.kv);
  o.context = a.context;
  o.batch = a.batch;
  o.prompt_len = a.prompt_len;
  o.step_tokens = a.step_tokens;
  o.gpu = resolve_gpu(a);
  o.num_gpus = a.num_gpus;
  o.tp = a.tp;
  o.pp = a.pp;
  o.ep = a.ep;
  o.mem_util = a.mem_util;
  if (a.price >= 0) o.price_per_gpu_hour = a.price;
  o.mtp = a.mtp;
  return o;
}

void print_catalog() {
  std::printf("Built-in models (--model NAME):\n");
  for (const std::string& name : catalog_model_names()) {
    const PlanModel m = PlanModel::from_json(catalog_config(name), name);
    const ParamCounts p = count_params(m);
    std::printf("  %-32s %-24s %8.2fB params, %7.2fB active, stored %s\n", name.c_str(), m.config.architecture.c_str(),
                p.total / 1e9, p.active / 1e9, to_string(m.stored.dtype).c_str());
  }
  std::printf("\nGPUs (--gpu NAME): memory, bandwidth, dense BF16 / FP8 / INT8 tensor peak:\n");
  for (const GpuSpec& g : gpu_catalog())
    std::printf("  %-10s %4.0f GiB %7.0f GB/s %8.1f / %7.1f / %7.1f TFLOPS\n", g.name.c_str(), g.memory_gib,
                g.bandwidth_gbs, g.bf16_tflops, g.fp8_tflops, g.int8_tops);
}

void run(const PlanArgs& a) {
  if (a.list) {
    print_catalog();
    return;
  }
  if (a.model.empty()) fail("dsinfer plan needs --model (a built-in name, a model directory or a config.json; see --list)");
  const PlanModel m = load_plan_model(a.model);
  const PlanOptions o = options_from(a);
  const PlanResult r = make_plan(m, o);
  if (!a.plot.empty()) write_memory_plot(a.plot, m, o, r);
  const std::string out = a.json ? to_json(r).dump(2) + "\n" : format_plan(r);
  std::fputs(out.c_str(), stdout);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<PlanArgs>();
  app.add_option("--model", a->model, "built-in name (see --list), model directory, or config.json");
  app.add_flag("--list", a->list, "list the built-in models and GPUs");
  app.add_option("--weights-dtype", a->weights, "bf16 | fp16 | fp8 | int8 | int4 | as-stored")->capture_default_str();
  app.add_option("--kv-dtype", a->kv, "bf16 | fp8 | int8 | int4")->capture_default_str();
  app.add_option("--context", a->context, "tokens per sequence (prompt + output)")->capture_default_str();
  app.add_option("--batch", a->batch, "concurrent sequences")->capture_default_str();
  app.add_option("--prompt-len", a->prompt_len, "prompt length for prefill and time to first token (default: --context)");
  app.add_option("--max-batched-tokens", a->step_tokens, "engine token budget per step")->capture_default_str();
  app.add_option("--gpu", a->gpu, "GPU kind (default H100-SXM; see --list)");
  app.add_option("--gpu-mem", a->gpu_mem, "custom GPU memory, GiB");
  app.add_option("--gpu-bw", a->gpu_bw, "custom GPU memory bandwidth, GB/s");
  app.add_option("--gpu-tflops", a->gpu_tflops, "custom GPU dense tensor TFLOPS");
  app.add_option("--num-gpus", a->num_gpus, "GPUs to use (default: the fewest that fit)");
  app.add_option("--tp", a->tp, "tensor-parallel size (default: chosen)");
  app.add_option("--pp", a->pp, "pipeline-parallel size (default: chosen)");
  app.add_option("--ep", a->ep, "expert-parallel size: 1 or tp x dp (default: chosen)");
  app.add_option("--mem-util", a->mem_util, "fraction of GPU memory to use")->capture_default_str();
  app.add_option("--price", a->price, "price per GPU-hour, $");
  app.add_flag("--mtp", a->mtp, "with the model's multi-token-prediction layer loaded for speculative decoding "
                                 "(its weights, KV cache and scratch)");
  app.add_flag("--json", a->json, "print JSON");
  app.add_option("--plot", a->plot, "write memory against context as SVG to FILE");
  app.callback([a] { run(*a); });
}

const CommandRegistration registration{
    {"plan", "capacity plan: does a model fit, on which GPUs, how fast, at what cost", setup}};

}  // namespace
}  // namespace dsinfer
