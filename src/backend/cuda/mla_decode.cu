// Absorbed-MLA decode on Hopper tensor cores (wgmma), for DeepSeek's shape: latent 512 + rope 64,
// one query token per sequence. The FlashMLA idea, written for this engine:
//
// * A block owns (64 heads of one token, one split of its context): every 64-key tile of the
//   latent cache is read from global memory once into shared memory and serves all 64 heads.
// * Q [64 heads x 576] is loaded once and stays in shared memory; S = Q . K^T (K = the 576-wide
//   cache rows) runs as wgmma with both operands read by descriptor from shared memory.
// * Online softmax on the S accumulators in registers; P is packed to bf16 in registers and is
//   the A operand of O += P . V, where V is the first 512 columns of the same tile (read
//   MN-major by the tensor cores: no transpose, no second load).
// * Two warpgroups, each owning 256 of the 512 output columns (64 x 256 f32 accumulators = 128
//   registers a thread). Warpgroup 0 alone computes S (m64n64: Q and K bytes read once per k16
//   step; two m64n32 halves, one per warpgroup, read Q twice and were bound by shared-memory
//   bandwidth) and the softmax, and hands P and the new row maxima to warpgroup 1 through
//   shared memory; both then run their half of P . V at once.
// * Tiles are double-buffered with cp.async (rows come through the paged block table, so TMA's
//   dense boxes do not apply). A buffer is refilled with tile i + 2 as soon as tile i is done
//   with it, before waiting for tile i + 1: with one tile of compute C and a load latency L per
//   tile, a tile then costs about (C + L) / 2 instead of max(C, L) (loads no longer wait for
//   the previous one to land).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/wgmma.cuh"

// The device code exists for sm_90a only; the compute_90 PTX of this file is an empty kernel.
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSINFER_MLA_SM90A 1
#endif

namespace dsinfer::cuda {
namespace {

constexpr int kLora = 512, kRope = 64, kDim = kLora + kRope;
constexpr int kRows = 64;                       // heads per block, and keys per tile
constexpr int kBlockBytes = kRows * 128;        // one 64-column block of a tile (8 KiB)
constexpr int kTileBytes = kDim / 64 * kBlockBytes;  // 72 KiB: Q, or one buffer of cache rows
constexpr int kThreads = 256;                   // two warpgroups

#ifdef DSINFER_MLA_SM90A
__device__ __forceinline__ void cp_async_16_to(uint32_t dst, const void* src, bool live) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(live ? src : g_zero_src),
               "r"(live ? 16 : 0));
}

// Cache rows [k0, k0 + 64) of sequence `seq` into the swizzled tile at `tile`; rows at or past
// k_end become zeros (their V must be finite: P is 0 there, and 0 * garbage can be NaN).
// Thread i copies 16-byte column c = i % 8 of each 64-column block of rows i / 8 and i / 8 + 32:
// a warp reads four whole 128-byte lines per instruction.
__device__ __forceinline__ void load_cache_tile(uint32_t tile, const MlaParams& p, int seq, int k0, int k_end) {
  const int c = threadIdx.x % 8;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = threadIdx.x / 8 + half * 32;
    const bool live = k0 + r < k_end;
    const bf16* row = live ? p.cache + static_cast<int64_t>(cache_slot(p.batch, seq, k0 + r)) * p.cache_width : p.cache;
#pragma unroll
    for (int blk = 0; blk < kDim / 64; ++blk)
      cp_async_16_to(tile + sw128_offset(r, blk * 8 + c, kRows), row + blk * 64 + c * 8, live);
  }
}

// Q rows of heads [h0, h0 + 64) of token t: [q_lat | q_rope]; heads past the last are zeros.
__device__ __forceinline__ void load_q_tile(uint32_t tile, const MlaParams& p, int t, int h0) {
  const int c = threadIdx.x % 8;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = threadIdx.x / 8 + half * 32;
    const bool live = h0 + r < p.heads;
    const int64_t row = static_cast<int64_t>(t) * p.heads + (live ? h0 + r : 0);
#pragma unroll
    for (int blk = 0; blk < kDim / 64; ++blk) {
      const bf16* src = blk < kLora / 64 ? p.q_lat + row * kLora + blk * 64 + c * 8 : p.q_rope + row * kRope + c * 8;
      cp_async_16_to(tile + sw128_offset(r, blk * 8 + c, kRows), src, live);
    }
  }
}

#endif  // DSINFER_MLA_SM90A

// Per-thread softmax state of its two rows (lane / 4 and lane / 4 + 8 of its warp's 16 heads).
struct RowState {
  float max[2] = {kNegInf, kNegInf};
  float sum[2] = {0.0f, 0.0f};  // this thread's share; the 4 threads of a row add up at the end
};

// S accumulators of NS / 4 n8 key blocks: s[4i + e] is row lane/4 (+8 for e >= 2), key
// 8i + 2(lane%4) + (e&1). Scales them to log2 units, masks keys >= n_live and returns each
// row's maximum over these keys (-inf when none is live).
template <int NS>
__device__ __forceinline__ void scale_and_mask(float (&s)[NS], int n_live, float scale_log2, float (&row_max)[2]) {
  const int lane = threadIdx.x % 32;
  row_max[0] = row_max[1] = kNegInf;
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    const int key = (i / 4) * 8 + 2 * (lane % 4) + (i & 1);
    s[i] = key < n_live ? s[i] * scale_log2 : kNegInf;
    row_max[(i / 2) & 1] = fmaxf(row_max[(i / 2) & 1], s[i]);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 1));
    row_max[h] = fmaxf(row_max[h], __shfl_xor_sync(0xffffffffu, row_max[h], 2));
  }
}

// Online-softmax step given the tile's row maxima (finite: key 0 of every tile is live):
// updates the running max and sum, returns the factor by which O must shrink, and leaves P
// packed as A fragments, one per k16 step: a0 (row, keys lo), a1 (row + 8, keys lo), a2 (row,
// keys hi), a3 (row + 8, keys hi), i.e. n8 blocks 2kk and 2kk + 1.
template <int NS>
__device__ __forceinline__ void exponentiate(float (&s)[NS], const float (&tile_max)[2], RowState& st,
                                             float (&alpha)[2], uint32_t (&pa)[NS / 8][4]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float m_new = fmaxf(st.max[h], tile_max[h]);
    alpha[h] = exp2f(st.max[h] - m_new);  // 0 on the first tile (max was -inf)
    st.max[h] = m_new;
  }
  float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    s[i] = exp2f(s[i] - st.max[(i / 2) & 1]);
    tile_sum[(i / 2) & 1] += s[i];
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) st.sum[h] = st.sum[h] * alpha[h] + tile_sum[h];
#pragma unroll
  for (int kk = 0; kk < NS / 8; ++kk)
#pragma unroll
    for (int j = 0; j < 4; ++j) pa[kk][j] = pack_bf16(s[8 * kk + 2 * j], s[8 * kk + 2 * j + 1]);
}

// Shared scratch after the three tiles: warpgroup 0's P of the current tile and its new row
// maxima, read by warpgroup 1; the row sums, at the end.
struct Exchange {
  uint4 p[4][4][32];    // [warp][k16 step][lane]: one A fragment per thread (lane-contiguous: no bank conflicts)
  float max[kRows];     // running row maxima after the current tile
  float sum[kRows];     // the row sums, at the end
};

// Q + 2 cache buffers + alignment slack + the exchange area (227 KiB is the most a block gets).
constexpr size_t kSmemBytes = 3 * kTileBytes + 1024 + sizeof(Exchange);
static_assert(kSmemBytes <= 227 * 1024, "mla decode: shared memory");

#ifdef DSINFER_MLA_SM90A
// Waits until at most N of this thread's cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
#endif

__global__ void __launch_bounds__(kThreads, 1) mla_decode_kernel(MlaParams p, SplitKv split) {
#if defined(__CUDA_ARCH__) && defined(DSINFER_MLA_SM90A)
  constexpr int NS = 32;  // S accumulators per thread of warpgroup 0 (64 x 64 / 128)
  const DeviceBatch& b = p.batch;
  const int h0 = blockIdx.x * kRows, t = blockIdx.y;
  const int seq = b.token_seq[t];
  int k_begin, k_end;
  split_range(split, b.positions[t] + 1, blockIdx.z, k_begin, k_end);
  const int64_t part_row = (static_cast<int64_t>(blockIdx.z) * b.num_tokens + t) * p.heads;
  const int n_heads = min(kRows, p.heads - h0);

  if (k_begin >= k_end) return write_empty_split(split, part_row + h0, n_heads, kLora);

  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023) & ~1023u;  // swizzle atoms are 1024-aligned
  const uint32_t q_tile = base;
  auto kv_tile = [&](int i) { return base + (1 + (i & 1)) * kTileBytes; };  // double buffer
  Exchange& ex = *reinterpret_cast<Exchange*>(smem_raw + (base - smem_addr(smem_raw)) + 3 * kTileBytes);

  // Both buffers start loading at once; afterwards each refills as soon as the tile in it is done.
  const int n_tiles = ceil_div(k_end - k_begin, kRows);
  load_q_tile(q_tile, p, t, h0);
  load_cache_tile(kv_tile(0), p, seq, k_begin, k_end);
  cp_async_commit();
  if (n_tiles > 1) load_cache_tile(kv_tile(1), p, seq, k_begin + kRows, k_end);
  cp_async_commit();  // possibly empty: every iteration waits for "all but the newest group"

  const int wg = threadIdx.x / 128, warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  const int row_a = warp * 16 + lane / 4;  // this thread's rows: row_a and row_a + 8
  RowState st;  // warpgroup 0 keeps the sums; both keep the running maxima
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.0f;

  for (int it = 0; it < n_tiles; ++it) {
    const int k0 = k_begin + it * kRows;
    const uint32_t kv = kv_tile(it);
    cp_async_wait_group<1>();
    fence_proxy_async();
    __syncthreads();  // tile `it` is in

    // Warpgroup 0 computes S = Q . K^T over the 576 columns once (36 k16 steps of n64: each
    // step reads as many Q as K bytes from shared memory, where two n32 halves would read Q
    // twice) and the softmax; warpgroup 1 takes P and the new maxima through shared memory.
    uint32_t pv[4][4];
    float alpha[2];
    if (wg == 0) {
      float s[NS];
#pragma unroll
      for (int i = 0; i < NS; ++i) s[i] = 0.0f;
      fence_regs(s);
      wgmma_fence();
      const uint64_t qd = sw128_desc(q_tile, 16, 1024), kd = sw128_desc(kv, 16, 1024);
#pragma unroll
      for (int kk = 0; kk < kDim / 16; ++kk) {
        const uint32_t off = ((kk / 4) * kBlockBytes + (kk % 4) * 32) >> 4;
        wgmma_m64n64k16_ss(s, qd + off, kd + off);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(s);
      float tile_max[2];
      scale_and_mask(s, k_end - k0, p.scale_log2, tile_max);
      exponentiate(s, tile_max, st, alpha, pv);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) ex.p[warp][kk][lane] = make_uint4(pv[kk][0], pv[kk][1], pv[kk][2], pv[kk][3]);
      if (lane % 4 == 0) {
        ex.max[row_a] = st.max[0];
        ex.max[row_a + 8] = st.max[1];
      }
    }
    __syncthreads();  // P and the maxima are out
    if (wg == 1) {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const uint4 x = ex.p[warp][kk][lane];
        pv[kk][0] = x.x, pv[kk][1] = x.y, pv[kk][2] = x.z, pv[kk][3] = x.w;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float m_new = ex.max[row_a + 8 * h];
        alpha[h] = exp2f(st.max[h] - m_new);
        st.max[h] = m_new;
      }
    }
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] *= alpha[(i / 2) & 1];

    // O[:, my 256 columns] += P . V: V rows are keys (K of this product), 4 blocks of 64 columns.
    fence_regs(o);
    wgmma_fence();
    const uint64_t vd = sw128_desc(kv + wg * 4 * kBlockBytes, kBlockBytes, 1024);
#pragma unroll
    for (int kk = 0; kk < kRows / 16; ++kk) wgmma_m64n256k16_rs(o, pv[kk], vd + ((kk * 2 * 1024) >> 4));
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(o);

    __syncthreads();  // every warp is done with this buffer: refill it with tile it + 2 now
    if (it + 2 < n_tiles) load_cache_tile(kv, p, seq, k0 + 2 * kRows, k_end);
    cp_async_commit();
  }

  // Rows row_a (+8); columns 256 wg + 8i + 2(lane % 4). Warpgroup 0 summed P: it hands the
  // sums to warpgroup 1.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 1);
    st.sum[h] += __shfl_xor_sync(0xffffffffu, st.sum[h], 2);
  }
  if (wg == 0 && lane % 4 == 0) {
    ex.sum[row_a] = st.sum[0];
    ex.sum[row_a + 8] = st.sum[1];
  }
  __syncthreads();
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.sum[h] = ex.sum[row_a + 8 * h];
    inv[h] = 1.0f / st.sum[h];
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row_a + 8 * h;
    if (row >= n_heads) continue;
    const int64_t out_row = static_cast<int64_t>(t) * p.heads + h0 + row;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int col = wg * 256 + i * 8 + 2 * (lane % 4);
      const float v0 = o[4 * i + 2 * h] * inv[h], v1 = o[4 * i + 2 * h + 1] * inv[h];
      if (split.splits == 1)
        *reinterpret_cast<__nv_bfloat162*>(p.out + out_row * kLora + col) = __floats2bfloat162_rn(v0, v1);
      else
        *reinterpret_cast<float2*>(split.part_o + (part_row + h0 + row) * kLora + col) = make_float2(v0, v1);
    }
    if (split.splits > 1 && wg == 0 && lane % 4 == 0)
      split.part_lse[part_row + h0 + row] = st.max[h] + log2f(st.sum[h]);
  }
#else
  __trap();  // launched only on sm_90 devices (mla_decode_fits)
#endif
}

// Whether the device runs the sm_90a code of this file (cached per device).
bool device_is_sm90() {
  static int cached[64];  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return false;
  if (cached[dev] == 0) {
    int major = 0, minor = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    cached[dev] = major == 9 && minor == 0 ? 1 : 2;
  }
  return cached[dev] == 1;
}

}  // namespace

bool mla_decode_fits(const MlaParams& p) {
  return p.lora == kLora && p.rope == kRope && p.cache_width == kDim && p.vec && device_is_sm90();
}

void launch_mla_decode(const MlaParams& p, const SplitKv& split, cudaStream_t s) {
  if (!mla_decode_fits(p))
    fail("mla decode kernel: needs latent ", kLora, " + rope ", kRope, " (got ", p.lora, " + ", p.rope,
         "), 16-byte aligned rows and an sm_90 device");
  auto kernel = mla_decode_kernel;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  // Head blocks vary fastest, so the blocks sharing a token's cache tiles run together (L2 hits).
  const dim3 grid(ceil_div(p.heads, kRows), p.batch.num_tokens, split.splits);
  kernel<<<grid, kThreads, kSmemBytes, s>>>(p, split);
  CUDA_CHECK_LAUNCH("mla_decode_kernel");
}

}  // namespace dsinfer::cuda
