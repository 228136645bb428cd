// Hopper (sm_90a) warpgroup MMA building blocks: shared-memory matrix descriptors for
// 128-byte-swizzled tiles, the wgmma fences, and the two shapes the MLA decode kernel uses.
//
// A 128B-swizzled tile stores rows of 64 bf16 (128 bytes); inside each 1024-byte atom of 8 rows
// the 16-byte chunk c of row r sits at chunk c ^ (r % 8), so atoms must be 1024-byte aligned.
// Descriptors (PTX "matrix descriptor"): start address >> 4 in bits 0-13, leading byte offset
// >> 4 in 16-29, stride byte offset >> 4 in 32-45, layout 1 (128B swizzle) in bits 62-63.
//   K-major operand:  rows = M or N, 8-row groups SBO apart; LBO unused.
//   MN-major operand: rows = K; 64-column groups of M or N LBO apart, 8-row groups of K SBO apart.
// Only for sm_90a device code (wgmma does not exist in plain compute_90).
#pragma once
#include <cstdint>

namespace dsinfer::cuda {

__device__ __forceinline__ uint64_t sw128_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (uint64_t{1} << 62);
}

// Byte offset of 16-byte chunk `c16` of row `row` in a tile of 64-column blocks (each block is
// `rows` rows of 128 bytes, 128B-swizzled).
__device__ __forceinline__ uint32_t sw128_offset(int row, int c16, int rows) {
  return static_cast<uint32_t>((c16 / 8) * rows * 128 + row * 128 + (((c16 % 8) ^ (row % 8)) * 16));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads or writes of accumulator registers across the wgmma
// fences and waits (it cannot see that the asynchronous MMA owns them meanwhile).
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// Orders this thread's generic-proxy shared-memory writes (cp.async, st.shared) before later
// reads by the async proxy (wgmma operands).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// d[64 x 32] += A[64 x 16] . B[32 x 16]^T, both operands K-major in shared memory.
__device__ __forceinline__ void wgmma_m64n32k16_ss(float (&d)[16], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

// The operand type of the two products below: bf16, or f16 (kF16).
#define DSINFER_WGMMA_TYPE(kF16, STATEMENT) \
  if constexpr (kF16) {                      \
    STATEMENT("f16");                        \
  } else {                                   \
    STATEMENT("bf16");                       \
  }

// d[64 x 64] += A[64 x 16] . B[64 x 16]^T, both operands K-major in shared memory, by two
// descriptors that share their upper word (same strides and layout) given as their lower words
// and that upper word: a caller stepping through a tile adds its offsets to the lower words
// alone, one 32-bit add an operand where a 64-bit add took two instructions (the start address
// field, bits 0-13, cannot carry while address + offset stays under 256 KB of shared memory).
#define DSINFER_WGMMA_M64N64K16_SS(TYPE) \
  asm volatile(                          \
      "{\n.reg .pred p;\n.reg .b64 da, db;\nmov.b64 da, {%32, %34};\nmov.b64 db, {%33, %34};\nsetp.ne.b32 p, %35, 0;\n"\
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, da, db, p, 1, 1, 0, 0;\n}\n"\
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])\
      : "r"(lo_a), "r"(lo_b), "r"(hi), "r"(1))
template <bool kF16 = false>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint32_t lo_a, uint32_t lo_b, uint32_t hi) {
  DSINFER_WGMMA_TYPE(kF16, DSINFER_WGMMA_M64N64K16_SS)
}

// d[64 x 256] += A[64 x 16] . B[16 x 256]: A in registers (the m16n8k16 A fragment per warp),
// B MN-major in shared memory (imm-trans-b = 1).
#define DSINFER_WGMMA_M64N256K16_RS(TYPE) \
  asm volatile(                           \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"\
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n"\
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])\
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1))
template <bool kF16 = false>
__device__ __forceinline__ void wgmma_m64n256k16_rs(float (&d)[128], const uint32_t (&a)[4], uint64_t desc_b) {
  DSINFER_WGMMA_TYPE(kF16, DSINFER_WGMMA_M64N256K16_RS)
}

// d[64 x 16] += A[64 x 16] . B[16 x 16]^T, both operands in shared memory, B K-major; A K-major,
// or MN-major (kTransA: imm-trans-a = 1).
#define DSINFER_WGMMA_M64N16K16_SS(TYPE, TRANS_A) \
  asm volatile(                                   \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"\
      "wgmma.mma_async.sync.aligned.m64n16k16.f32." TYPE "." TYPE " {%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, " TRANS_A ", 0;\n}\n"\
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])\
      : "l"(desc_a), "l"(desc_b), "r"(1))
#define DSINFER_WGMMA_M64N16K16_SS_K(TYPE) DSINFER_WGMMA_M64N16K16_SS(TYPE, "0")
#define DSINFER_WGMMA_M64N16K16_SS_T(TYPE) DSINFER_WGMMA_M64N16K16_SS(TYPE, "1")
template <bool kF16 = false, bool kTransA = false>
__device__ __forceinline__ void wgmma_m64n16k16_ss(float* d, uint64_t desc_a, uint64_t desc_b) {
  if constexpr (kTransA) {
    DSINFER_WGMMA_TYPE(kF16, DSINFER_WGMMA_M64N16K16_SS_T)
  } else {
    DSINFER_WGMMA_TYPE(kF16, DSINFER_WGMMA_M64N16K16_SS_K)
  }
}

#undef DSINFER_WGMMA_M64N16K16_SS_K
#undef DSINFER_WGMMA_M64N16K16_SS_T
#undef DSINFER_WGMMA_M64N16K16_SS
#undef DSINFER_WGMMA_M64N64K16_SS
#undef DSINFER_WGMMA_M64N256K16_RS
#undef DSINFER_WGMMA_TYPE

}  // namespace dsinfer::cuda
