// dsinfer bench-mla: the absorbed-MLA decode kernel alone at DeepSeek-V3 shapes, against the
// device copy bandwidth (the kernel reads the latent cache once) and bf16 tensor-core peak
// measured in the same run; the larger of the two floors is the roofline.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "backend/cuda/mla_bench.h"  // plain declarations; defined in CUDA builds only
#include "cli/command.h"
#include "core/error.h"

namespace dsinfer {
namespace {

void run_bench_mla(const cuda::MlaBenchOptions& o) {
#ifdef DSINFER_WITH_CUDA
  const cuda::MlaBenchResult r = cuda::bench_mla_decode(o);
  const double bw = r.bytes / r.median_s;
  std::printf("mla decode: batch %d x context %d, %d heads, latent %d + rope %d, block %d, %s cache\n", o.batch,
              o.context, o.heads, o.lora, o.rope, o.block_size, o.fp8 ? "fp8" : "bf16");
  std::printf("  time       %.1f us median, %.1f us min (%d repeats; queued while the GPU is busy)\n", r.median_s * 1e6,
              r.min_s * 1e6, o.repeats);
  std::printf("  idle start %.1f us median (each call from an idle GPU: the host's launch cost included)\n",
              r.median_idle_s * 1e6);
  std::printf("  bytes      %.1f MB (latent cache + q + out)\n", r.bytes / 1e6);
  std::printf("  bandwidth  %.0f GB/s\n", bw / 1e9);
  std::printf("  copy       %.0f GB/s (device-to-device, read + written)\n", r.copy_bandwidth / 1e9);
  std::printf("  ratio      %.0f %% of the copy bandwidth\n", 100.0 * bw / r.copy_bandwidth);
  const double memory_s = r.bytes / r.copy_bandwidth, compute_s = r.flops / r.bf16_peak;
  std::printf("  flops      %.1f GFLOP, %.0f TFLOP/s; bf16 peak %.0f TFLOP/s (cuBLASLt 8192^3)\n", r.flops / 1e9,
              r.flops / r.median_s / 1e12, r.bf16_peak / 1e12);
  std::printf("  roofline   %.1f us (%s-bound: memory %.1f us, compute %.1f us): %.0f %%\n",
              std::max(memory_s, compute_s) * 1e6, memory_s >= compute_s ? "memory" : "compute", memory_s * 1e6,
              compute_s * 1e6, 100.0 * std::max(memory_s, compute_s) / r.median_s);
#else
  (void)o;
  fail("bench-mla: this dsinfer was built without the CUDA backend");
#endif
}

CommandRegistration reg({"bench-mla", "Time the MLA decode kernel (V3 shapes) against the measured copy bandwidth",
                         [](CLI::App& app) {
                           auto o = std::make_shared<cuda::MlaBenchOptions>();
                           app.add_option("--device-index", o->device, "CUDA device index")->capture_default_str();
                           app.add_option("--batch", o->batch, "Sequences, one decode token each")->capture_default_str();
                           app.add_option("--context", o->context, "Tokens in each sequence's cache")->capture_default_str();
                           app.add_option("--heads", o->heads, "Query heads")->capture_default_str();
                           app.add_option("--kv-lora", o->lora, "Latent width")->capture_default_str();
                           app.add_option("--rope", o->rope, "Rope width")->capture_default_str();
                           app.add_option("--block-size", o->block_size, "Cache block size")->capture_default_str();
                           app.add_option_function<std::string>(
                                  "--kv-dtype", [o](const std::string& s) { o->fp8 = s == "fp8"; },
                                  "auto (bf16 rows) or fp8 (FP8 latent rows, as --kv-dtype fp8 serves)")
                               ->check(CLI::IsMember({"auto", "fp8"}));
                           app.add_option("--repeats", o->repeats, "Timed calls (the median is reported)")
                               ->capture_default_str();
                           app.callback([o] { run_bench_mla(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
