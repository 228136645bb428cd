// Warp-level tensor-core building blocks (sm_80+ mma.sync, ldmatrix, cp.async) and the loader
// that fills shared-memory tiles from paged cache rows. Fragment layouts of m16n8k16, lane l:
//   A (16x16, row-major): a0 = (l/4, 2(l%4)+{0,1}), a1 = row + 8, a2 = col + 8, a3 = both + 8
//   B (16x8, "col"):      b0 = (k = 2(l%4)+{0,1}, n = l/4), b1 = k + 8
//   C (16x8, float):      c0,c1 = (l/4, 2(l%4)+{0,1}), c2,c3 = row + 8
#pragma once
#include <cstdint>

#include "backend/cuda/device_common.cuh"

namespace dsinfer::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes at a shared address (asm: ordered against the async proxy's fences and barriers).
__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}
__device__ __forceinline__ void st_shared_v4(uint32_t addr, uint4 v) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

// Four 8x8 b16 matrices; lane l gives the address of row l%8 of matrix l/8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// Four 8x8 b16 matrices, each given as the mma.sync C fragment (a thread's two adjacent values
// of row lane / 4), stored transposed: lane L addresses row L % 8 of matrix L / 8 in memory,
// which receives column L % 8 of that fragment.
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}

// Two 8x8 matrices; lanes 0-15 give the addresses.
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}

// d += a * b on bf16 operands with float accumulation.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a * b on e4m3 operands (m16n8k32, sm_89+) with float accumulation. The 8-bit fragments hold
// 4 values a register: a0 = (l/4, 4(l%4)+{0..3}), a1 = row + 8, a2 = col + 16, a3 = both;
// b0 = (k = 4(l%4)+{0..3}, n = l/4), b1 = k + 16; C as in m16n8k16.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair, the first in the low half (the lower column of a fragment).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Asynchronous 16-byte copy global -> shared; bytes past src_bytes (0 or 16 here) are zero-filled.
__device__ __forceinline__ void cp_async_16(bf16* dst, const bf16* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
// An L2 policy for data read once a step (weights, and MLA decode's latent cache): their lines are
// the first the L2 evicts, so a stream of them leaves what the latency-bound kernels around it
// read again (their code, the batch, activations) in the L2. ld.global.cs (__ldcs) is the same
// policy for plain loads.
__device__ __forceinline__ uint64_t l2_evict_first() {
  uint64_t policy;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}
// cp_async_16 under an L2 policy (l2_evict_first).
__device__ __forceinline__ void cp_async_16(bf16* dst, const bf16* src, int src_bytes, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes), "l"(policy));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
// Waits until at most N of this thread's committed groups of copies are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// A warp's m16 accumulator tiles (N of them, 8 columns each): rows lane / 4 times alpha_a, rows
// lane / 4 + 8 times alpha_b (the online softmax's rescale when a row's maximum moves).
template <int N>
__device__ __forceinline__ void scale_rows(float (&o)[N][4], float alpha_a, float alpha_b) {
#pragma unroll
  for (int t = 0; t < N; ++t) {
    o[t][0] *= alpha_a;
    o[t][1] *= alpha_a;
    o[t][2] *= alpha_b;
    o[t][3] *= alpha_b;
  }
}

// A valid global address for cp.async copies of zero bytes (which read nothing).
static __device__ __align__(16) bf16 g_zero_src[8];

// Fills `rows` rows of a shared tile (row stride `stride`, columns [col, col + 8 * chunks)) from
// global rows: row_src(r) gives the row's first element, or nullptr for a row of zeros; elements
// at or past `n` are zeros. With `vec` (n, row strides and bases all multiples of 8 elements) the
// copies are asynchronous 16-byte cp.async; otherwise plain element copies, for odd shapes.
template <typename RowSrc>
__device__ __forceinline__ void load_tile(bf16* tile, int stride, int col, int rows, int chunks, int n, bool vec,
                                          RowSrc row_src) {
  const int total = rows * chunks;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int r = i / chunks, c = i % chunks;
    const bf16* src = row_src(r);
    bf16* dst = tile + r * stride + col + c * 8;
    if (vec) {
      const bool live = src != nullptr && c * 8 < n;
      cp_async_16(dst, live ? src + c * 8 : g_zero_src, live ? 16 : 0);
    } else {
      for (int e = 0; e < 8; ++e) {
        const int d = c * 8 + e;
        dst[e] = src != nullptr && d < n ? src[d] : __float2bfloat16(0.0f);
      }
    }
  }
}

}  // namespace dsinfer::cuda
