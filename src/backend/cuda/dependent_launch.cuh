// Programmatic dependent launch (Hopper): a kernel launched with launch_dependent may be
// scheduled while the kernel before it in the stream is still running, instead of after it has
// drained and the launch latency has been paid. Decode at small batches is a chain of short
// kernels (norm, rope, attention, skinny products), and the gaps between them idle the memory
// bus; with this the next kernel's blocks are resident before the previous one ends, and a
// product can start streaming its weights (which no earlier kernel writes) during that time.
//
// The contract, for every kernel launched this way:
//  * nothing it reads from an earlier kernel and nothing it writes is touched before
//    wait_for_previous_kernels() (that wait returns once the previous kernel has finished and its
//    writes are visible; kernels before that one had finished before it passed its own wait);
//    The previous kernel may still be running, even before it has written anything: a kernel
//    that reads rows an earlier kernel wrote before its wait (cache tiles) must leave out those
//    the previous one writes (mla_decode_kernel and the newest cache row), and one that writes
//    before its wait may write only what the previous one neither reads nor writes
//    (moe_few_fused_kernel and moe_few_mma_kernel's shared-chunk blocks: the shared experts' rows
//    of act, which the router never touches; the kernels before the router had finished before it
//    passed its wait);
//  * it calls allow_next_kernel() after that wait, so that as a rule one kernel waits ahead of
//    the one running (the next kernel's blocks only occupy the slots that this one leaves free).
//    The split merge (combine_splits_kernel: MLA's, and GQA's when its counters do not cover the
//    rows) and the W_UV product (head_rows_kernel) allow it first, so up to three kernels wait
//    behind MLA's decode kernel (merge, W_UV, o_proj). That is safe too: a kernel launches only
//    once every block of the one before has started, so its blocks only take slots left free.
//    o_proj's staged weights then start streaming two kernels earlier, if its blocks can land
//    beside them at all (kDecodeChainCarveout).
// Other launches in the stream (cuBLASLt, copies) keep the ordinary full ordering.
#pragma once
#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace dsinfer::cuda {

__device__ __forceinline__ void wait_for_previous_kernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The start of every kernel launched with launch_dependent that has nothing to do before its
// inputs are ready.
__device__ __forceinline__ void dependent_kernel_start() {
  wait_for_previous_kernels();
  allow_next_kernel();
}

// False when DSINFER_DEPENDENT_LAUNCH=0 (every launch then waits for the previous kernel, as
// plain <<<>>> launches do: for measuring what the overlap buys, and for bisecting).
bool dependent_launch_enabled();

// For measuring which kernels' split of L1 and shared memory matters (docs/cuda.md): with
// DSINFER_CARVEOUT=P every dependent launch asks for P percent of the SM as shared memory,
// P:a,b only the kernels named a and b (launch_dependent's names), P:!a,b all but those. The
// percent for `kernel`, or -1 (unset or not covered: the kernel keeps its own choice).
int carveout_override(const char* kernel);

// An SM changes its split of L1 and shared memory only when idle, so a dependent launch's blocks
// land beside the running kernel's only if both run under one split. By default each kernel
// gets the split its own shared memory needs, and o_proj's staged blocks (64 KB an SM at
// V2-Lite's shape) did not land beside the W_UV product (which has none). MLA's decode chain
// around its decode kernel (the absorb before it, the split merge and the W_UV product after),
// and staged products and FP8 skinny products whose blocks fit it (decode_chain_carveout:
// V2-Lite's o_proj; V3's FP8 products at 1-4 tokens, whose o_proj at 2 tokens took 63.4 us a
// layer under its own split and 53.7 under this one, H100 session 55), ask for 33 % of the most
// shared memory, which the driver rounds up to a split of 100 KB; the decode
// kernel itself needs 218 KB, a split of its own whatever it asks. H200, V2-Lite batch 1: the
// chain, session 23, 452.4 / 450.9 -> 457.7 / 460.3 tok/s; o_proj too, session 24, 457.3 /
// 461.8 / 461.5 -> 465.2 / 469.5 / 472.4 (o's cost after W_UV 4.7 -> 1.9 us a layer); the 7B
// unchanged both times. The MoE chain with the shared experts fused asks for it too (the router at
// one token, the expert launches, their combine): session 28, V2-Lite batch 1 496.0 -> 500.7
// tok/s (three rounds each); not the layer's norm before the router, which is the 7B's norm too
// (the 7B lost 1.5-2 % with it under the split, V2-Lite gained nothing more). Not every launch:
// 33 % on every launch, or at least 33 % and more where a launch's blocks need it, cost the 7B
// 4-5 %; probably because a skinny product streaming 9 blocks an SM keeps up to 147 KB of loads
// in flight, which land in L1 (156 KB at that split).
constexpr int kDecodeChainCarveout = 33;  // percent of the most shared memory an SM has

// The split a launch of the decode chain asks for: kDecodeChainCarveout where `blocks` resident
// an SM of `bytes` shared memory each (with what the device reserves a block) fit that share of
// the current device's most shared memory an SM, else -1 (its own).
int decode_chain_carveout(int blocks, size_t bytes);

// A launch's dynamic shared memory, and the split of L1 and shared memory it asks for (percent of
// the most shared memory an SM has; -1: the driver's choice for the kernel).
struct SharedMemory {
  SharedMemory(size_t bytes, int carveout = -1) : bytes(bytes), carveout(carveout) {}
  size_t bytes;
  int carveout;
};

template <typename... Params, typename... Args>
void launch_dependent(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, SharedMemory smem,
                      cudaStream_t s, Args&&... args) {
  cudaLaunchAttribute attributes[2];
  unsigned count = 0;
  if (dependent_launch_enabled()) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count++].val.programmaticStreamSerializationAllowed = 1;
  }
  const int override_percent = carveout_override(name);
  if (const int percent = override_percent >= 0 ? override_percent : smem.carveout; percent >= 0) {
    attributes[count].id = cudaLaunchAttributePreferredSharedMemoryCarveout;
    attributes[count++].val.sharedMemCarveout = static_cast<unsigned>(percent);
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem.bytes;
  config.stream = s;
  config.attrs = attributes;
  config.numAttrs = count;
  check(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...), name, __FILE__, __LINE__);
}

}  // namespace dsinfer::cuda
