// The MLA decode kernel alone, timed against the device's copy bandwidth measured in the same
// run (`dsinfer bench-mla`). Declared without CUDA types so the CLI can call it; defined only
// in builds with the CUDA backend (DSINFER_WITH_CUDA).
#pragma once
#include <cstdint>

namespace dsinfer::cuda {

struct MlaBenchOptions {
  int device = 0;
  int batch = 64, context = 4096;        // sequences, each decoding one token after `context - 1`
  int heads = 128, lora = 512, rope = 64;  // DeepSeek-V3
  int block_size = 64;                   // cache block (blocks are shuffled across sequences)
  int warmup = 5, repeats = 50;
};

struct MlaBenchResult {
  double median_s = 0, min_s = 0;  // per mla_attention call, CUDA events
  double bytes = 0;                // latent cache read + q + out
  double copy_bandwidth = 0;       // device-to-device cudaMemcpy, (read + written) bytes / s
};

MlaBenchResult bench_mla_decode(const MlaBenchOptions& o);

}  // namespace dsinfer::cuda
