// NcclComm: one GPU's member of a tensor-parallel group, summing tensors with the others through
// NCCL on the backend's stream. NCCL is loaded at run time (libnccl.so.2): a build needs only its
// header, and a machine without it runs everything but multi-GPU groups, which then fail naming
// the library.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace dsinfer::cuda {

class NcclComm {
 public:
  // One member for each device, all of one group (ncclCommInitAll).
  static std::vector<std::unique_ptr<NcclComm>> init_all(const std::vector<int>& devices);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // x (BF16, F16 or F32 on this member's device) becomes its sum over the group, queued on `s`.
  void all_reduce_sum(Tensor x, cudaStream_t s);
  // gathered [members, part's shape] = every member's part in rank order, queued on `s`.
  void all_gather(const Tensor& part, Tensor gathered, cudaStream_t s);
  // Stops this member's collectives, waiting ones included; later calls fail.
  void abort();

 private:
  explicit NcclComm(void* comm) : comm_(comm) {}
  void* comm_;  // ncclComm_t
  std::atomic<bool> aborted_{false};  // abort may come from another rank's thread
};

}  // namespace dsinfer::cuda
