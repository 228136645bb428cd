// What a launcher that sizes its grid by the blocks an SM holds needs to know of a kernel: its
// shared memory a block (static arrays and the launch's dynamic bytes) and the blocks resident
// an SM on the current device, asked of the runtime once per (device, kernel, threads, dynamic
// bytes); dynamic bytes past the default a block take the opt-in
// (cudaFuncAttributeMaxDynamicSharedMemorySize), which only ever grows, so a size asked before
// stays launchable after a larger one. And, for a kernel of clusters, whether one fits at all.
#pragma once
#include <cstddef>

namespace dsinfer::cuda {

struct Residency {
  size_t bytes = 0;  // shared memory a block: static + dynamic
  int per_sm = 1;    // blocks resident an SM (at least 1)
};

Residency kernel_residency(const void* kernel, int threads, size_t dynamic);

// Whether one cluster of `kernel` (its __cluster_dims__ of `blocks` blocks, `threads` and `dynamic`
// bytes each) fits the current device at all: asked of the runtime once per (device, kernel).
bool cluster_fits(const void* kernel, int blocks, int threads, size_t dynamic);

}  // namespace dsinfer::cuda
