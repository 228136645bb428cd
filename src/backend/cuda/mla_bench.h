// The MLA decode kernel alone, timed against the device's copy bandwidth and bf16 tensor-core
// peak measured in the same run (`dsinfer bench-mla`): with many heads the kernel's arithmetic,
// not its bytes, sets the floor on a card as fast at memory as an H200. Declared without CUDA types so the CLI can call it; defined only
// in builds with the CUDA backend (DSINFER_WITH_CUDA).
#pragma once
#include <cstdint>

namespace dsinfer::cuda {

struct MlaBenchOptions {
  int device = 0;
  int batch = 64, context = 4096;        // sequences, each decoding one token after `context - 1`
  int heads = 128, lora = 512, rope = 64;  // DeepSeek-V3
  int block_size = 64;                   // cache block (blocks are shuffled across sequences)
  bool fp8 = false;                      // FP8 latent rows (--kv-dtype fp8, core/latent_fp8.h)
  int warmup = 5, repeats = 50;
};

struct MlaBenchResult {
  double median_s = 0, min_s = 0;  // per mla_attention call, CUDA events, queued while the GPU is busy
  double median_idle_s = 0;        // the same with the GPU idle before each call: the host's launch cost counts
  double bytes = 0;                // latent cache read + q + out
  double flops = 0;                // S = q . cache (lora + rope wide) and P . V (lora wide), per head and key
  double copy_bandwidth = 0;       // measure_copy_bandwidth: (read + written) bytes / s
  double bf16_peak = 0;            // FLOP/s of a cuBLASLt bf16 8192^3 product
};

MlaBenchResult bench_mla_decode(const MlaBenchOptions& o);

}  // namespace dsinfer::cuda
