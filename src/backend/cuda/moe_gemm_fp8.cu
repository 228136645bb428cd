// The grouped FP8 GEMM of the MoE prefill path (see moe_gemm_fp8.h), warp-specialized:
//
// * Work item = one 192-row M tile of one expert (from the device tile list) x one N tile of 128
//   weight rows; its K is walked in 128-deep blocks through a ring of shared-memory stages.
//   Stage = A tile [192 rows x 128 B] + B tile [128 rows x 128 B], both 128B-swizzled by the
//   copy engine (TMA) as the wgmma descriptors read them.
// * Why 192 rows: the kernel is bound by the bytes its stages bring into the SMs (L2 ran 82 %
//   busy, the tensor cores half; ncu, session 31). At ~128 +- 11 rows an expert (V3 prefill),
//   128-row tiles gave half the experts a second, nearly empty tile that loads its own A and B
//   (B shared with the first by multicast still lands in both SMs); one 192-row tile loads one B
//   and only A's live 64-row boxes. Session 31, V3 shapes on an H200: gate+up 2.87-3.00 ->
//   2.74-2.79 ms, down 1.60 -> 1.43 ms against 128-row tiles in clusters of two.
// * Persistent blocks, one an SM: block b takes items b, + blocks, ... The ring runs on across
//   items, so the next item's loads stream in while this one's epilogue fills the outbox.
// * Warpgroup 3 is the producer: one thread waits for a free stage, announces its bytes on the
//   stage's "full" barrier and issues the TMA copies: A's live boxes of 64 rows, and B as two
//   boxes of 64 rows (so gate and up rows can share a tile).
// * Its second warp stages each K block's scales beside the stage (the rows' 192 and the weight
//   tile's two) by cp.async on the same "full" barrier, so the MMA warps read them from shared
//   memory: loaded from global memory a K block ahead, they stalled the MMA issue on L2 latency
//   (ncu, session 31).
// * Its last two warps store: an item's output waits in a shared-memory outbox (bf16), written
//   there by the MMA warps, and leaves in 16-byte pieces, whole rows a store instruction, while
//   the MMA warps start the next item.
// * Warpgroups 0-2 each multiply 64 of the rows by all 128 columns: a K block is four k32 wgmma
//   into a temporary, waited for, its stage released (its "empty" barrier) and its partial added
//   into the accumulators times row scale x weight block scale. While one warpgroup promotes, the
//   other two keep the tensor cores busy; one temporary each leaves three warpgroups room.
// * Items are numbered expert by expert, N tile by N tile, and the M tiles of one expert and N
//   tile next to each other, so that the blocks in flight share the expert's weights and rows in
//   L2.
#include <array>
#include <atomic>
#include <cub/block/block_scan.cuh>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_gemm_fp8.h"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/wgmma_fp8.cuh"

// The GEMM exists for sm_90a only; the compute_90 PTX of this file has a trapping stub.
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSINFER_MOE_FP8_SM90A 1
#endif

namespace dsinfer::cuda {
namespace {

constexpr int kTileM = kMoeFp8TileRows, kTileN = 128, kTileK = 128;  // kTileK: the scale block depth
constexpr int kBox = 64;                                               // rows of one A or B box
constexpr int kMmaGroups = kTileM / kBox;                              // an MMA warpgroup per A box
constexpr int kBoxBytes = kBox * kTileK, kATileBytes = kMmaGroups * kBoxBytes, kBTileBytes = kTileN * kTileK;
constexpr int kStageBytes = kATileBytes + kBTileBytes;
constexpr int kConsumerThreads = 128 * kMmaGroups;
constexpr int kScaleWarp = 1;                          // of the producer warpgroup: stages the scales
constexpr int kStoreThreads = 64;                      // the producer warpgroup's last two warps
constexpr int kScaleSlotBytes = (kTileM + 2) * 4 + 8;  // a stage's row scales, then its two weight scales
constexpr int kThreads = kConsumerThreads + 128;
static_assert(kTileM % kBox == 0 && kTileN == 2 * kBox, "tiles are whole 64-row boxes");
static_assert(kScaleWarp >= 1, "warp 0 of the producer warpgroup holds the producer thread");
static_assert(kStoreThreads == 128 - 32 * (kScaleWarp + 1), "the store warps are the producer warpgroup's last");
static_assert(kScaleSlotBytes % 16 == 0, "scale slots keep 16-byte alignment");
// Registers a thread after setmaxnreg: the MMA warpgroups take what the copy warpgroup gives
// back. They must fit the launch's pool (65536 / kThreads, rounded down to 8, a thread): an
// increase the pool cannot grant waits forever (session 21's kernel hung when its budgets
// exceeded it). These fill the pool exactly; the copy warps need 56 to run without spills.
constexpr int kMmaRegs = 152, kCopyRegs = 56;
static_assert(kConsumerThreads * kMmaRegs + (kThreads - kConsumerThreads) * kCopyRegs <=
                  65536 / kThreads / 8 * 8 * kThreads,
              "moe fp8 gemm: the register budgets exceed the block's pool");

enum class Proj { GateUp, Down };

// Per projection: the outbox (an item's output in bf16: GateUp 64 act columns, silu(gate) * up
// of the tile's 64 gate and 64 up rows; Down 128 columns of y) and the shared memory: stages
// (4 fit beside Down's outbox; GateUp's 5th would not fit either), the outbox, the stages'
// scales, two barriers per stage and two for the outbox, and slack to align the stages to the
// 1024-byte swizzle atoms.
template <Proj P>
struct Layout {
  static constexpr int kOutCols = P == Proj::GateUp ? kTileN / 2 : kTileN;
  static constexpr int kOutboxBytes = kTileM * kOutCols * 2;
  static constexpr int kStages = 4;
  static constexpr size_t kSmemBytes =
      kStages * (kStageBytes + kScaleSlotBytes) + kOutboxBytes + (2 * kStages + 2) * sizeof(uint64_t) + 1024;
  static_assert(kSmemBytes <= 227 * 1024, "moe fp8 gemm: shared memory");
};

struct GemmArgs {
  const Fp8ExpertMaps* maps;
  const ExpertPtrs* table;
  const int4* tiles;
  int items, n_tiles;     // items = tile slots x n_tiles
  const float* a_scales;  // [k_blocks, rows]
  int rows, k_blocks;
  int64_t scale_cols;  // floats per row of the weights' block scales
  bf16* out;           // GateUp: act [rows, out_cols]; Down: y [rows, out_cols]
  int64_t out_cols;
};

// The two 64-row boxes of a B tile: first weight row of each in its matrix.
template <Proj P>
__device__ __forceinline__ int b_row(int n_tile, int half) {
  return P == Proj::GateUp ? n_tile * kBox : n_tile * kTileN + half * kBox;
}

#ifdef DSINFER_MOE_FP8_SM90A

template <Proj P>
struct Smem {
  static constexpr int kStages = Layout<P>::kStages;
  // Stage s: A at base + s * kStageBytes, B right after; then the outbox, the stages' scale
  // slots and the barriers: full[s], empty[s], the outbox's two. Every region is placed after the
  // one before it here, so none can overlap another.
  uint32_t base;
  __device__ uint32_t a(int s) const { return base + s * kStageBytes; }
  __device__ uint32_t b(int s) const { return base + s * kStageBytes + kATileBytes; }
  __device__ uint32_t outbox() const { return base + kStages * kStageBytes; }
  __device__ uint32_t scales(int s) const { return outbox() + Layout<P>::kOutboxBytes + s * kScaleSlotBytes; }
  __device__ uint32_t bars() const { return scales(kStages); }
  __device__ uint32_t full(int s) const { return bars() + 8 * s; }
  __device__ uint32_t empty(int s) const { return bars() + 8 * (kStages + s); }
  __device__ uint32_t outbox_full() const { return bars() + 16 * kStages; }
  __device__ uint32_t outbox_empty() const { return bars() + 16 * kStages + 8; }
};

// Position in the ring: the stage and the parity of its current round.
template <int kStages>
struct Ring {
  int stage = 0;
  uint32_t phase = 0;
  __device__ void next() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  }
};

// A work item: its M tile (expert, first row, end of the expert's rows, the expert's first slot)
// and N tile; expert < 0 once the slots run past the last M tile (they are the list's tail, so
// all later items too). Expert e's c M tiles from slot f own items [f, f + c) x n_tiles, taken
// as (N tile, M tile) with the M tile fastest.
struct Item {
  int4 tile;
  int n_tile;
};
__device__ __forceinline__ Item item_at(const GemmArgs& g, int w) {
  const int slot = w / g.n_tiles;
  const int4 t = g.tiles[slot];
  if (t.x < 0) return {t, 0};
  const int first = t.w, expert_begin = t.y - (slot - first) * kTileM;
  const int count = (t.z - expert_begin + kTileM - 1) / kTileM;
  const int local = w - first * g.n_tiles, m = local % count;
  return {first + m == slot ? t : g.tiles[first + m], local / count};
}

// Calls f(item) for this block's items in order (b, b + blocks, ...) up to the list's end. Every
// role walks them through this one loop, so the barriers' phases stay in step across roles.
template <typename F>
__device__ __forceinline__ void for_each_item(const GemmArgs& g, F&& f) {
  for (int w = blockIdx.x; w < g.items; w += gridDim.x) {
    const Item it = item_at(g, w);
    if (it.tile.x < 0) return;
    f(it);
  }
}

// A boxes of an item that hold rows of its expert (the rest are neither loaded nor multiplied).
__device__ __forceinline__ int live_boxes(const int4& tile) {
  return min(kMmaGroups, (tile.z - tile.y + kBox - 1) / kBox);
}

template <Proj P>
__device__ void produce(const CUtensorMap* a_map, const GemmArgs& g, const Smem<P>& sm) {
  Ring<Layout<P>::kStages> ring;
  for_each_item(g, [&](const Item& it) {
    const Fp8ExpertMaps* m = g.maps + it.tile.x;
    const CUtensorMap* b_maps[2] = {P == Proj::GateUp ? &m->gate : &m->down, P == Proj::GateUp ? &m->up : &m->down};
    const int a_boxes = live_boxes(it.tile);
    for (int kb = 0; kb < g.k_blocks; ++kb, ring.next()) {
      const int s = ring.stage;
      mbarrier_wait(sm.empty(s), ring.phase ^ 1);  // the first round passes: nothing to drain yet
      mbarrier_arrive_expect_tx(sm.full(s), a_boxes * kBoxBytes + kBTileBytes);
      const int k0 = kb * kTileK;
      for (int i = 0; i < a_boxes; ++i) tma_load_2d(sm.a(s) + i * kBoxBytes, a_map, sm.full(s), k0, it.tile.y + i * kBox);
#pragma unroll
      for (int h = 0; h < 2; ++h) tma_load_2d(sm.b(s) + h * kBoxBytes, b_maps[h], sm.full(s), k0, b_row<P>(it.n_tile, h));
    }
  });
}

// The scale warp: every stage's scales into its slot, counted on its "full" barrier (each lane
// one arrival, once its copies land): the M tile's row scales of the K block (rows past the last
// get 0), then the block scales of the B tile's two halves. It walks the items as the producer
// does.
template <Proj P>
__device__ void stage_scales(const GemmArgs& g, const Smem<P>& sm) {
  const int lane = threadIdx.x % 32;
  Ring<Layout<P>::kStages> ring;
  for_each_item(g, [&](const Item& it) {
    const ExpertPtrs& e = g.table[it.tile.x];
    const int half = lane % 2;  // lanes 0 and 1 copy B's block scale of this half
    const float* sb = (P == Proj::GateUp ? (half ? e.up_scale : e.gate_scale) : e.down_scale) +
                      (b_row<P>(it.n_tile, half) / kTileN) * g.scale_cols;
    for (int kb = 0; kb < g.k_blocks; ++kb, ring.next()) {
      const int s = ring.stage;
      mbarrier_wait(sm.empty(s), ring.phase ^ 1);
      const float* sa = g.a_scales + static_cast<int64_t>(kb) * g.rows;
#pragma unroll
      for (int i = 0; i < kTileM / 32; ++i) {
        const int j = lane + 32 * i, r = it.tile.y + j;
        cp_async_4(sm.scales(s) + 4 * j, sa + (r < g.rows ? r : 0), r < g.rows ? 4 : 0);
      }
      if (lane < 2) cp_async_4(sm.scales(s) + 4 * (kTileM + lane), sb + kb, 4);
      cp_async_mbarrier_arrive(sm.full(s));
    }
  });
}

// acc += tmp x (scale of its row) x (scale of its half of the columns). tmp[4i + j] is row
// (j / 2) of this thread's two, column block i (i < 8: the first 64 columns).
__device__ __forceinline__ void promote(float (&acc)[64], const float (&tmp)[64], const float (&sa)[2],
                                        const float (&sb)[2]) {
#pragma unroll
  for (int i = 0; i < 16; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[4 * i + j] += tmp[4 * i + j] * (sa[j / 2] * sb[i / 8]);
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// The outbox holds one item's output in bf16, row j (of the tile's 192) at j * kRowBytes, its
// 16-byte pieces c at (c ^ (j % 8)): the MMA warps' pairs and the store warps' pieces both land
// free of bank conflicts. GateUp: 64 act columns, silu(gate) * up (tile columns 0-63 are gate,
// 64-127 the matching up rows); Down: 128 columns of y.
template <Proj P>
struct Outbox {
  static constexpr int kRowBytes = Layout<P>::kOutCols * 2, kPieces = kRowBytes / 16;
};

__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ float ld_shared_f32(uint32_t addr) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];\n" : "=f"(v) : "r"(addr) : "memory");
  return v;
}
__device__ __forceinline__ uint32_t bf16x2_bits(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// This thread's accumulators (rows j, j + 8 of the tile, columns 8i + 2 (lane % 4) + {0, 1})
// into the outbox.
template <Proj P>
__device__ void to_outbox(const float (&acc)[64], uint32_t outbox) {
  using O = Outbox<P>;
  const int wg = threadIdx.x / 128, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
  const uint32_t swz = (lane / 4) * 16;  // j % 8 = lane / 4
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t row = outbox + (wg * kBox + warp * 16 + lane / 4 + 8 * h) * O::kRowBytes + 4 * (lane % 4);
#pragma unroll
    for (int i = 0; i < O::kPieces; ++i) {
      const uint32_t at = row + ((i * 16) ^ swz);
      if constexpr (P == Proj::GateUp) {
        const float* gate = acc + 4 * i + 2 * h;
        const float* up = acc + 4 * (i + 8) + 2 * h;
        st_shared_b32(at, bf16x2_bits(silu(gate[0]) * up[0], silu(gate[1]) * up[1]));
      } else {
        st_shared_b32(at, bf16x2_bits(acc[4 * i + 2 * h], acc[4 * i + 2 * h + 1]));
      }
    }
  }
}

// The store warps: every item's outbox to memory in 16-byte pieces, so a store instruction
// writes whole rows, off the MMA warps' path (their own float stores took 16 % of the down product's
// time, by session 19's A/B at V3 shapes; gate+up's bf16 stores, no measurable share). Rows past the expert's end are not written. They
// walk the items as the producer does and take every item's outbox.
template <Proj P>
__device__ void store_out(const GemmArgs& g, const Smem<P>& sm) {
  using O = Outbox<P>;
  constexpr int kRowStep = kStoreThreads / O::kPieces;  // rows a pass of the store warps covers
  static_assert(kStoreThreads % O::kPieces == 0, "a store thread keeps its piece column");
  const int t = threadIdx.x - (kThreads - kStoreThreads), c = t % O::kPieces;
  uint32_t phase = 0;
  for_each_item(g, [&](const Item& it) {
    const int rows = min(kTileM, it.tile.z - it.tile.y);
    bf16* out_row = g.out + static_cast<int64_t>(it.tile.y) * g.out_cols + it.n_tile * Layout<P>::kOutCols + c * 8;
    mbarrier_wait(sm.outbox_full(), phase);
    for (int j = t / O::kPieces; j < rows; j += kRowStep) {
      const uint4 v = ld_shared_v4(sm.outbox() + j * O::kRowBytes + ((c ^ (j % 8)) * 16));
      *reinterpret_cast<uint4*>(out_row + static_cast<int64_t>(j) * g.out_cols) = v;
    }
    mbarrier_arrive(sm.outbox_empty());
    phase ^= 1;
  });
}

// Every MMA thread takes the outbox once an item (the first passes; an idle warpgroup's too, so
// the store warps stay in step), writes it, and hands it to the store warps.
template <Proj P>
__device__ __forceinline__ void outbox_take(const Smem<P>& sm, uint32_t phase) {
  mbarrier_wait(sm.outbox_empty(), phase ^ 1);
}
template <Proj P>
__device__ __forceinline__ void outbox_hand(const Smem<P>& sm, uint32_t& phase) {
  mbarrier_arrive(sm.outbox_full());
  phase ^= 1;
}

// One work item's K loop and epilogue for this thread's warpgroup: per K block, the stage's
// scales read, four MMAs into the temporary, waited for, the stage released and the partial
// promoted.
template <Proj P>
__device__ void consume_item(const GemmArgs& g, const Item& it, const Smem<P>& sm, Ring<Layout<P>::kStages>& ring,
                             uint32_t& out_phase) {
  const int wg = threadIdx.x / 128, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
  const int row0 = it.tile.y, row_end = it.tile.z;
  const int row_in_tile = wg * kBox + warp * 16 + lane / 4;  // this thread's rows: this one and + 8
  // The stage's MMAs are done (the wait before): one arrival per warp frees it, after every lane's
  // reads of its scales (the warp barrier orders them before lane 0's release).
  auto release = [&]() {
    __syncwarp();
    if (lane == 0) mbarrier_arrive(sm.empty(ring.stage));
    ring.next();
  };
  // A warpgroup whose 64 rows all lie past the expert's end only keeps the ring turning. No
  // wgmma under a branch that also holds one: ptxas would serialize them all.
  if (row0 + wg * kBox >= row_end) {
    for (int kb = 0; kb < g.k_blocks; ++kb) {
      mbarrier_wait(sm.full(ring.stage), ring.phase);
      release();
    }
    outbox_take(sm, out_phase);
    outbox_hand(sm, out_phase);
    return;
  }
  float acc[64], t[64], sa[2], sb[2];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  for (int kb = 0; kb < g.k_blocks; ++kb) {
    mbarrier_wait(sm.full(ring.stage), ring.phase);
    // This thread's two rows' scales and the tile's two column halves', read before the release.
    const uint32_t slot = sm.scales(ring.stage);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sa[h] = ld_shared_f32(slot + 4 * (row_in_tile + 8 * h));
      sb[h] = ld_shared_f32(slot + 4 * (kTileM + h));
    }
    const uint64_t da = sw128_desc(sm.a(ring.stage) + wg * kBoxBytes, 16, 1024), db = sw128_desc(sm.b(ring.stage), 16, 1024);
    fence_regs(t);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kTileK / 32; ++kk) wgmma_m64n128k32_e4m3(t, da + 2 * kk, db + 2 * kk, kk > 0);
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(t);
    release();
    promote(acc, t, sa, sb);
  }
  outbox_take(sm, out_phase);
  to_outbox<P>(acc, sm.outbox());
  outbox_hand(sm, out_phase);
}

template <Proj P>
__device__ void consume(const GemmArgs& g, const Smem<P>& sm) {
  Ring<Layout<P>::kStages> ring;
  uint32_t out_phase = 0;
  for_each_item(g, [&](const Item& it) { consume_item<P>(g, it, sm, ring, out_phase); });
}

#endif  // DSINFER_MOE_FP8_SM90A

template <Proj P>
__global__ void __launch_bounds__(kThreads, 1) moe_fp8_gemm_kernel(const __grid_constant__ CUtensorMap a_map, GemmArgs g) {
#if defined(__CUDA_ARCH__) && defined(DSINFER_MOE_FP8_SM90A)
  constexpr int kStages = Layout<P>::kStages;
  extern __shared__ unsigned char smem_raw[];
  Smem<P> sm;
  sm.base = (smem_addr(smem_raw) + 1023) & ~1023u;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(sm.full(s), 1 + 32);  // the producer's arrive + the copies' bytes, the scale warp's lanes
      mbarrier_init(sm.empty(s), kConsumerThreads / 32);  // every MMA warp
    }
    mbarrier_init(sm.outbox_full(), kConsumerThreads);
    mbarrier_init(sm.outbox_empty(), kStoreThreads);
    mbarrier_init_fence();
  }
  __syncthreads();
  if (threadIdx.x >= kConsumerThreads) {
    setmaxnreg_dec<kCopyRegs>();
    if (threadIdx.x == kConsumerThreads) produce<P>(&a_map, g, sm);
    if ((threadIdx.x - kConsumerThreads) / 32 == kScaleWarp) stage_scales<P>(g, sm);
    if (threadIdx.x >= kThreads - kStoreThreads) store_out<P>(g, sm);
  } else {
    setmaxnreg_inc<kMmaRegs>();
    consume<P>(g, sm);
  }
#else
  __trap();  // launched only on sm_90 devices (moe_fp8_gemm_device)
#endif
}

__global__ void __launch_bounds__(kMoeMaxExperts) moe_fp8_tiles_kernel(const int* offsets, int experts, int4* tiles,
                                                                        int slots) {
  using Scan = cub::BlockScan<int, kMoeMaxExperts>;
  __shared__ typename Scan::TempStorage scan;
  const int e = threadIdx.x;
  const int begin = e < experts ? offsets[e] : 0, end = e < experts ? offsets[e + 1] : 0;
  const int count = (end - begin + kTileM - 1) / kTileM;
  int first = 0, total = 0;
  Scan(scan).ExclusiveSum(count, first, total);
  for (int m = 0; m < count && first + m < slots; ++m) tiles[first + m] = make_int4(e, begin + m * kTileM, end, first);
  for (int i = total + threadIdx.x; i < slots; i += blockDim.x) tiles[i] = make_int4(-1, 0, 0, 0);
}

// Blocks of the kernel that fit on the current device at once (one an SM). Asked once per
// device: the query is not free and the launch runs twice a layer.
template <Proj P>
int resident_blocks() {
  static std::array<std::atomic<int>, 64> known{};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  if (device < 0 || static_cast<size_t>(device) >= known.size())
    fail("grouped FP8 GEMM: device ", device, " (this build counts blocks for devices 0 to ", known.size() - 1, ")");
  std::atomic<int>& slot = known[static_cast<size_t>(device)];
  if (const int c = slot.load(std::memory_order_relaxed); c > 0) return c;
  int per_sm = 0, sms = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, moe_fp8_gemm_kernel<P>, kThreads,
                                                           Layout<P>::kSmemBytes));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (per_sm < 1) fail("grouped FP8 GEMM: no block of ", Layout<P>::kSmemBytes, " B fits an SM");
  slot.store(per_sm * sms, std::memory_order_relaxed);
  return per_sm * sms;
}

template <Proj P>
void launch_gemm(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& a, bf16* out,
                 cudaStream_t s) {
  const int64_t k = P == Proj::GateUp ? ex.hidden : ex.inter, n = P == Proj::GateUp ? ex.inter : ex.hidden;
  if (!moe_fp8_gemm_shape_supported(ex) || !maps || !ex.table)
    fail("grouped FP8 GEMM: experts of hidden ", ex.hidden, ", inter ", ex.inter, " with ", ex.block_rows, " x ",
         ex.block_cols, " blocks (needs multiples of 128 and 128 x 128 blocks, and TMA descriptors)");
  const int n_tiles = static_cast<int>(n / Layout<P>::kOutCols);
  if (static_cast<int64_t>(a.slots) * n_tiles > INT32_MAX) fail("grouped FP8 GEMM: ", a.slots, " M tiles");
  if (a.rows == 0 || a.slots == 0) return;
  const CUtensorMap a_map = make_fp8_tensor_map(a.q, a.rows, k, kBox);
  const int items = a.slots * n_tiles;
  const GemmArgs g{maps, ex.table, a.tiles, items, n_tiles, a.scales, a.rows,
                   static_cast<int>(k / kTileK), P == Proj::GateUp ? ex.gate_up_scale_cols : ex.down_scale_cols, out, n};
  auto kernel = moe_fp8_gemm_kernel<P>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(Layout<P>::kSmemBytes)));
  const int blocks = std::min(resident_blocks<P>(), items);
  kernel<<<blocks, kThreads, Layout<P>::kSmemBytes, s>>>(a_map, g);
  CUDA_CHECK_LAUNCH("moe_fp8_gemm_kernel");
}

}  // namespace

bool moe_fp8_gemm_shape_supported(const GroupedExperts& ex) {
  return ex.dtype == DType::F8_E4M3 && ex.block_rows == kTileK && ex.block_cols == kTileK && ex.hidden > 0 &&
         ex.inter > 0 && ex.hidden % kTileK == 0 && ex.inter % kTileK == 0;
}

bool moe_fp8_gemm_device(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;
}

Fp8ExpertMaps fp8_expert_maps(const ExpertPtrs& e, int64_t hidden, int64_t inter) {
  return {make_fp8_tensor_map(e.gate, inter, hidden, kBox), make_fp8_tensor_map(e.up, inter, hidden, kBox),
          make_fp8_tensor_map(e.down, hidden, inter, kBox)};
}

int moe_fp8_tile_slots(int rows, int experts) { return rows / kTileM + std::min(experts, rows); }

void launch_moe_fp8_tiles(const int* offsets, int experts, int4* tiles, int slots, cudaStream_t s) {
  if (experts < 1 || experts > kMoeMaxExperts) fail("grouped FP8 GEMM: ", experts, " experts (1 to ", kMoeMaxExperts, ")");
  if (slots == 0) return;
  moe_fp8_tiles_kernel<<<1, kMoeMaxExperts, 0, s>>>(offsets, experts, tiles, slots);
  CUDA_CHECK_LAUNCH("moe_fp8_tiles_kernel");
}

void launch_moe_fp8_gate_up(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& x, bf16* act,
                            cudaStream_t s) {
  launch_gemm<Proj::GateUp>(ex, maps, x, act, s);
}

void launch_moe_fp8_down(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& act, bf16* y,
                         cudaStream_t s) {
  launch_gemm<Proj::Down>(ex, maps, act, y, s);
}

}  // namespace dsinfer::cuda
