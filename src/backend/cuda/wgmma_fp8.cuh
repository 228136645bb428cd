// Hopper (sm_90a) building blocks of the FP8 grouped GEMM: the e4m3 warpgroup MMA of every N
// up to 128 (wgmma_fp8_shapes.cuh), the shared-memory barriers (mbarrier) that pace a producer
// against its consumers, the bulk tensor copy (TMA) that fills a 128B-swizzled tile and signals
// such a barrier, and their cluster forms (a barrier of another block of the cluster, a copy
// into every block of it, the cluster-wide barrier). The descriptors and wgmma fences are the
// bf16 kernels' own (wgmma.cuh).
//
// FP8 tiles are K-major on both sides with 128 e4m3 values (128 bytes) per row: a 128B-swizzled
// row holds a whole 128-deep K block, and a k32 step of wgmma reads 32 bytes of it, so the
// descriptor of step kk is the tile's descriptor plus kk * 32 bytes (2 in the >> 4 encoding).
// Only for sm_90a device code.
#pragma once
#include <cuda.h>

#include <cstdint>

#include "backend/cuda/wgmma.cuh"
#include "backend/cuda/wgmma_fp8_shapes.cuh"

namespace dsinfer::cuda {

// ---- mbarrier: a shared-memory barrier that completes a phase once `count` threads arrived
// and every byte announced with expect_tx has landed.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialized barriers visible to the copy engine before any copy uses them.
__device__ __forceinline__ void mbarrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives and announces `bytes` that copies will deliver to this phase.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Waits until the phase of parity `parity` has completed. A fresh barrier is in phase 0, so a
// wait for parity 1 returns at once (the "phase before" counts as complete).
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "LAB_WAIT:\n"  // labels are local to the braces, so every inlined copy has its own
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra LAB_WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// ---- TMA: the box at {c0 (innermost: bytes of K), c1 (rows)} of the 2D tensor `map` into
// shared memory at `dst`; the copy counts its bytes (the whole box, zero-filled parts too) on
// barrier `bar`. `map` is a generic address
// of a CUtensorMap in kernel parameter, constant or global memory.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// ---- Clusters: this block's rank in its cluster, and a barrier of every thread of the cluster
// (all of them must reach it; it orders shared-memory writes before it against reads after it).
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}
// Arrives on the barrier at shared address `bar` of block `rank` of this cluster (the same
// offset in every block).
__device__ __forceinline__ void mbarrier_arrive_cluster(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n.reg .b32 remote;\n"
      "mapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}
// tma_load_2d into the same shared address of every block in `cta_mask` (bit r: block r of the
// cluster); each block's barrier at `bar`'s offset counts the box's bytes.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0,
                                                      int c1, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
      "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
      : "memory");
}

// ---- Register budgets of warp-specialized kernels (need a register cap at entry: launch
// bounds with one block per SM): the copy warpgroup gives registers back, the MMA ones take them.
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

}  // namespace dsinfer::cuda
