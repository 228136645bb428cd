// EventTimer: GPU time of work queued on a stream, from a pair of CUDA events (benchmarks, and
// the cuBLASLt plan's choice among candidate algorithms).
#pragma once
#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {

class EventTimer {
 public:
  EventTimer() {
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  // Seconds the device spent on what `work` queues on `s` (waits for it).
  template <typename F>
  double seconds(cudaStream_t s, F&& work) {
    CUDA_CHECK(cudaEventRecord(start_, s));
    work();
    CUDA_CHECK(cudaEventRecord(stop_, s));
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms * 1e-3;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace dsinfer::cuda
