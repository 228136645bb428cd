// gpu_busy: a one-thread kernel that keeps a stream busy for a while, so that work queued behind
// it starts the moment it ends rather than when the host has finished queueing it (benchmarks:
// a kernel's time, not the host's cost of launching it; the copy rate they compare against
// queues its copies back to back).
#pragma once
#include <cuda_runtime.h>

namespace dsinfer::cuda {

void gpu_busy(cudaStream_t s, double seconds);

}  // namespace dsinfer::cuda
