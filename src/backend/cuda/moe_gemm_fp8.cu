// The grouped FP8 GEMM of the MoE prefill path (see moe_gemm_fp8.h), warp-specialized:
//
// * Work item = one 128-row M tile of one expert (from the device tile list) x one N tile of 128
//   weight rows; its K is walked in 128-deep blocks through a ring of kStages shared-memory
//   stages. Stage = A tile [128 rows x 128 B] + B tile [128 rows x 128 B], both 128B-swizzled
//   by the copy engine (TMA) as the wgmma descriptors read them.
// * Clusters of two blocks, persistent: cluster c takes units c, + clusters, ...; block r of the
//   cluster takes item 2 u + r of unit u. The ring runs on across units, so the next item's
//   loads stream in while this one's epilogue fills the outbox (below).
// * When a unit's two items are M tiles of one expert at the same N tile, the blocks share the
//   weight tile: each copies one 64-row box of it into both (TMA multicast). An expert with more
//   than 128 rows so reads its weights from memory once (without, ncu counted them twice: the
//   blocks drifted apart before the second read). The blocks' rings turn together: a stage is
//   refilled once the MMA warps of both blocks have released it.
// * Warpgroup 2 is the producer: one thread waits for a free stage, announces its bytes on the
//   stage's "full" barrier and issues the TMA copies: A, and B as two boxes of 64 rows (so gate
//   and up rows can share a tile), one of them from the other block when the tile is shared.
// * Its other three warps store: an item's output waits in a shared-memory outbox (bf16, 32 KB,
//   in place of a seventh stage), written there by the MMA warps, and leaves in 16-byte pieces,
//   whole rows a store instruction, while the MMA warps start the next item.
// * Warpgroups 0 and 1 each multiply 64 of the rows by all 128 columns: a K block is four k32
//   wgmma into one of two temporaries; the next K block's are issued into the other before this
//   one is waited for, its stage released (its "empty" barrier) and its partial added into the
//   accumulators times row scale x weight block scale, so each warpgroup's MMAs run through its
//   own promotions.
// * Items are numbered expert by expert, N tile by N tile, and the M tiles of one expert and N
//   tile next to each other, so that they pair into units (and the blocks in flight share the
//   expert's rows in L2).
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

constexpr int kTileM = 128, kTileN = 128, kTileK = 128;  // kTileK: the scale block depth
constexpr int kHalfN = kTileN / 2;                        // rows of one B box
constexpr int kStages = 6;
constexpr int kATileBytes = kTileM * kTileK, kBTileBytes = kTileN * kTileK;
constexpr int kStageBytes = kATileBytes + kBTileBytes;
constexpr int kOutboxBytes = kTileM * kTileN * 2;  // an item's output in bf16 (GateUp fills half)
constexpr int kConsumerThreads = 256;              // two MMA warpgroups
constexpr int kStoreThreads = 96;                  // the producer warpgroup's other three warps
constexpr int kCluster = 2;                        // blocks of a cluster (items of a unit)
constexpr int kThreads = kConsumerThreads + 128;
static_assert(kStoreThreads == 128 - 32, "the store warps are the producer warpgroup's but the producer's");
// Registers a thread after setmaxnreg: the MMA warpgroups take what the copy warpgroup gives
// back. They must fit the launch's pool (65536 / kThreads, rounded down to 8, a thread): an
// increase the pool cannot grant waits forever (a budget of 48 for the copy warps hung the kernel).
constexpr int kMmaRegs = 232, kCopyRegs = 40;
static_assert(kConsumerThreads * kMmaRegs + (kThreads - kConsumerThreads) * kCopyRegs <=
                  65536 / kThreads / 8 * 8 * kThreads,
              "moe fp8 gemm: the register budgets exceed the block's pool");
// Stages, the outbox, two barriers per stage and two for the outbox, and slack to align the
// stages to the 1024-byte swizzle atoms.
constexpr size_t kSmemBytes =
    kStages * kStageBytes + kOutboxBytes + (2 * kStages + 2) * sizeof(uint64_t) + 1024;
static_assert(kSmemBytes <= 227 * 1024, "moe fp8 gemm: shared memory");

enum class Proj { GateUp, Down };

struct GemmArgs {
  const Fp8ExpertMaps* maps;
  const ExpertPtrs* table;
  const int4* tiles;
  int items, n_tiles;     // items = tile slots x n_tiles
  int units;              // items / kCluster, rounded up
  const float* a_scales;  // [k_blocks, rows]
  int rows, k_blocks;
  int64_t scale_cols;  // floats per row of the weights' block scales
  bf16* out;           // GateUp: act [rows, out_cols]; Down: y [rows, out_cols]
  int64_t out_cols;
};

// The two 64-row boxes of a B tile: first weight row of each in its matrix.
template <Proj P>
__device__ __forceinline__ int b_row(int n_tile, int half) {
  return P == Proj::GateUp ? n_tile * kHalfN : n_tile * kTileN + half * kHalfN;
}

#ifdef DSINFER_MOE_FP8_SM90A

struct Smem {
  uint32_t base;  // stage s: A at base + s * kStageBytes, B right after; then the outbox
  uint32_t bars;  // full[s] at bars + 8 s, empty[s] at bars + 8 (kStages + s); the outbox's two
  __device__ uint32_t a(int s) const { return base + s * kStageBytes; }
  __device__ uint32_t b(int s) const { return base + s * kStageBytes + kATileBytes; }
  __device__ uint32_t outbox() const { return base + kStages * kStageBytes; }
  __device__ uint32_t full(int s) const { return bars + 8 * s; }
  __device__ uint32_t empty(int s) const { return bars + 8 * (kStages + s); }
  __device__ uint32_t outbox_full() const { return bars + 16 * kStages; }
  __device__ uint32_t outbox_empty() const { return bars + 16 * kStages + 8; }
};

// Position in the ring: the stage and the parity of its current round.
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

// This block's share of unit u: its item (expert < 0: none, the block only turns the ring),
// whether the unit's two items share their weight tile, and whether the list has ended (then
// every later unit is past it too). Both blocks of a cluster read the same two items.
struct Unit {
  Item item;
  bool share_b, done;
};
__device__ __forceinline__ Unit unit_at(const GemmArgs& g, int u, int rank) {
  const Item none{make_int4(-1, 0, 0, 0), 0};
  const Item first = item_at(g, kCluster * u);
  if (first.tile.x < 0) return {none, false, true};
  const Item second = kCluster * u + 1 < g.items ? item_at(g, kCluster * u + 1) : none;
  const bool share_b = second.tile.x == first.tile.x && second.n_tile == first.n_tile;
  return {rank == 0 ? first : second, share_b, false};
}

template <Proj P>
__device__ void produce(const CUtensorMap* a_map, const GemmArgs& g, const Smem& sm, int rank) {
  Ring ring;
  for (int u = blockIdx.x / kCluster; u < g.units; u += gridDim.x / kCluster) {
    const Unit un = unit_at(g, u, rank);
    if (un.done) break;
    const Item& it = un.item;
    const Fp8ExpertMaps* m = g.maps + max(it.tile.x, 0);
    const CUtensorMap* b_maps[2] = {P == Proj::GateUp ? &m->gate : &m->down, P == Proj::GateUp ? &m->up : &m->down};
    for (int kb = 0; kb < g.k_blocks; ++kb, ring.next()) {
      const int s = ring.stage;
      // Free in both blocks (the first round passes: nothing to drain yet).
      mbarrier_wait(sm.empty(s), ring.phase ^ 1);
      if (it.tile.x < 0) {
        mbarrier_arrive(sm.full(s));
        continue;
      }
      // The whole stage lands here either way; with share_b, half of B comes from the other block.
      mbarrier_arrive_expect_tx(sm.full(s), kStageBytes);
      const int k0 = kb * kTileK;
      tma_load_2d(sm.a(s), a_map, sm.full(s), k0, it.tile.y);
      if (un.share_b) {  // b_maps[rank] as a select: an indexed array went to local memory
        tma_load_2d_multicast(sm.b(s) + rank * kHalfN * kTileK, rank ? b_maps[1] : b_maps[0], sm.full(s), k0,
                              b_row<P>(it.n_tile, rank), (1u << kCluster) - 1);
        continue;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h)
        tma_load_2d(sm.b(s) + h * kHalfN * kTileK, b_maps[h], sm.full(s), k0, b_row<P>(it.n_tile, h));
    }
  }
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

// The outbox holds one item's output in bf16, row j (of the tile's 128) at j * kRowBytes, its
// 16-byte pieces c at (c ^ (j % 8)): the MMA warps' pairs and the store warps' pieces both land
// free of bank conflicts. GateUp: 64 act columns, silu(gate) * up (tile columns 0-63 are gate,
// 64-127 the matching up rows); Down: 128 columns of y.
template <Proj P>
struct Outbox {
  static constexpr int kRowBytes = (P == Proj::GateUp ? kHalfN : kTileN) * 2, kPieces = kRowBytes / 16;
};

__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr) : "memory");
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
    const uint32_t row = outbox + (wg * 64 + warp * 16 + lane / 4 + 8 * h) * O::kRowBytes + 4 * (lane % 4);
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
// walk the units as the producer does and take every item's outbox, empty or not.
template <Proj P>
__device__ void store_out(const GemmArgs& g, const Smem& sm, int rank) {
  using O = Outbox<P>;
  constexpr int kRowStep = kStoreThreads / O::kPieces;  // rows a pass of the store warps covers
  static_assert(kStoreThreads % O::kPieces == 0, "a store thread keeps its piece column");
  const int t = threadIdx.x - (kThreads - kStoreThreads), c = t % O::kPieces;
  uint32_t phase = 0;
  for (int u = blockIdx.x / kCluster; u < g.units; u += gridDim.x / kCluster, phase ^= 1) {
    const Unit un = unit_at(g, u, rank);
    if (un.done) break;
    // Rows past the end (or no item: end 0) are not written.
    const int rows = un.item.tile.x < 0 ? 0 : min(kTileM, un.item.tile.z - un.item.tile.y);
    bf16* out_row = g.out + static_cast<int64_t>(max(un.item.tile.y, 0)) * g.out_cols +
                          un.item.n_tile * (O::kRowBytes / 2) + c * 8;
    mbarrier_wait(sm.outbox_full(), phase);
    for (int j = t / O::kPieces; j < rows; j += kRowStep) {
      const uint4 v = ld_shared_v4(sm.outbox() + j * O::kRowBytes + ((c ^ (j % 8)) * 16));
      *reinterpret_cast<uint4*>(out_row + static_cast<int64_t>(j) * g.out_cols) = v;
    }
    mbarrier_arrive(sm.outbox_empty());
  }
}

// Every MMA thread takes the outbox once an item (the first passes; an empty item's too, so the
// store warps stay in step), writes it, and hands it to the store warps.
__device__ __forceinline__ void outbox_take(const Smem& sm, uint32_t phase) {
  mbarrier_wait(sm.outbox_empty(), phase ^ 1);
}
__device__ __forceinline__ void outbox_hand(const Smem& sm, uint32_t& phase) {
  mbarrier_arrive(sm.outbox_full());
  phase ^= 1;
}

// One work item's K loop and epilogue for this thread's warpgroup. Two temporaries: K block
// kb + 1's MMAs are issued before kb's partial is promoted, so the tensor cores work through
// the promotion (with one temporary each warpgroup waited for its MMAs, then promoted: by the
// measured time ~1200 cycles a K block against ~620 of tensor work at the FP8 peak, V3 shapes
// on an H200).
template <Proj P>
__device__ void consume_item(const GemmArgs& g, const Item& it, const Smem& sm, Ring& ring, uint32_t& out_phase) {
  const int wg = threadIdx.x / 128, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
  const int row0 = it.tile.y, row_end = it.tile.z;
  const int r_a = row0 + wg * 64 + warp * 16 + lane / 4;  // this thread's rows: r_a, r_a + 8
  // The stage's MMAs are done (the wait before): one arrival per warp frees it, in both blocks
  // (lane r signals block r).
  auto release = [&]() {
    if (lane < kCluster) mbarrier_arrive_cluster(sm.empty(ring.stage), lane);
    ring.next();
  };
  // A warpgroup with no item, or whose 64 rows all lie past the expert's end, only keeps the
  // ring turning. No wgmma under a branch that also holds one: ptxas would serialize them all.
  if (it.tile.x < 0 || row0 + wg * 64 >= row_end) {
    for (int kb = 0; kb < g.k_blocks; ++kb) {
      mbarrier_wait(sm.full(ring.stage), ring.phase);
      release();
    }
    outbox_take(sm, out_phase);
    outbox_hand(sm, out_phase);
    return;
  }
  const ExpertPtrs& e = g.table[it.tile.x];
  const float* sb_row[2];
#pragma unroll
  for (int h = 0; h < 2; ++h)
    sb_row[h] = (P == Proj::GateUp ? (h ? e.up_scale : e.gate_scale) : e.down_scale) +
                (b_row<P>(it.n_tile, h) / kTileN) * g.scale_cols;
  // The scales of K block kb: this thread's two rows, the tile's two column halves.
  auto scales = [&](int kb, float (&sa)[2], float (&sb)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r_a + 8 * h;
      sa[h] = r < g.rows ? g.a_scales[static_cast<int64_t>(kb) * g.rows + r] : 0.0f;
      sb[h] = sb_row[h][kb];
    }
  };
  // Issues the MMAs of the stage at r into t, once its data has landed.
  auto issue = [&](float (&t)[64], const Ring& r) {
    mbarrier_wait(sm.full(r.stage), r.phase);
    const uint64_t da = sw128_desc(sm.a(r.stage) + wg * 64 * kTileK, 16, 1024), db = sw128_desc(sm.b(r.stage), 16, 1024);
    fence_regs(t);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kTileK / 32; ++kk) wgmma_m64n128k32_e4m3(t, da + 2 * kk, db + 2 * kk, kk > 0);
    wgmma_commit();
  };
  float acc[64], t0[64], t1[64], sa0[2], sb0[2], sa1[2], sb1[2];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  // The next K block's MMAs into `next` (its scales into sa_n, sb_n), then the current one's
  // partial, in `cur`, promoted while they run.
  auto overlap = [&](int kb_next, float (&cur)[64], const float (&sa)[2], const float (&sb)[2], float (&next)[64],
                     float (&sa_n)[2], float (&sb_n)[2]) {
    Ring r = ring;
    r.next();
    scales(kb_next, sa_n, sb_n);
    issue(next, r);
    wgmma_wait<1>();
    fence_regs(cur);
    release();
    promote(acc, cur, sa, sb);
  };
  auto last = [&](float (&cur)[64], const float (&sa)[2], const float (&sb)[2]) {
    wgmma_wait<0>();
    fence_regs(cur);
    release();
    promote(acc, cur, sa, sb);
  };

  scales(0, sa0, sb0);
  issue(t0, ring);
  int kb = 0;
  // Pairs of K blocks while two more follow, so each temporary keeps its registers.
  for (; kb + 2 < g.k_blocks; kb += 2) {
    overlap(kb + 1, t0, sa0, sb0, t1, sa1, sb1);
    overlap(kb + 2, t1, sa1, sb1, t0, sa0, sb0);
  }
  // The last one or two K blocks (kb is in t0).
  if (kb + 1 < g.k_blocks) {
    overlap(kb + 1, t0, sa0, sb0, t1, sa1, sb1);
    last(t1, sa1, sb1);
  } else {
    last(t0, sa0, sb0);
  }
  outbox_take(sm, out_phase);
  to_outbox<P>(acc, sm.outbox());
  outbox_hand(sm, out_phase);
}

template <Proj P>
__device__ void consume(const GemmArgs& g, const Smem& sm, int rank) {
  Ring ring;
  uint32_t out_phase = 0;
  for (int u = blockIdx.x / kCluster; u < g.units; u += gridDim.x / kCluster) {
    const Unit un = unit_at(g, u, rank);
    if (un.done) break;
    consume_item<P>(g, un.item, sm, ring, out_phase);
  }
}

#endif  // DSINFER_MOE_FP8_SM90A

template <Proj P>
__global__ void __cluster_dims__(kCluster, 1, 1) __launch_bounds__(kThreads, 1)
    moe_fp8_gemm_kernel(const __grid_constant__ CUtensorMap a_map, GemmArgs g) {
#if defined(__CUDA_ARCH__) && defined(DSINFER_MOE_FP8_SM90A)
  extern __shared__ unsigned char smem_raw[];
  Smem sm;
  sm.base = (smem_addr(smem_raw) + 1023) & ~1023u;
  sm.bars = sm.base + kStages * kStageBytes + kOutboxBytes;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(sm.full(s), 1);                        // the producer's arrive + the copies' bytes
      mbarrier_init(sm.empty(s), kCluster * kConsumerThreads / 32);  // every MMA warp of the cluster
    }
    mbarrier_init(sm.outbox_full(), kConsumerThreads);
    mbarrier_init(sm.outbox_empty(), kStoreThreads);
    mbarrier_init_fence();
  }
  cluster_sync();  // the other block's barriers are ready before anything signals them
  const int rank = static_cast<int>(cluster_rank());
  if (threadIdx.x >= kConsumerThreads) {
    setmaxnreg_dec<kCopyRegs>();
    if (threadIdx.x == kConsumerThreads) produce<P>(&a_map, g, sm, rank);
    if (threadIdx.x >= kThreads - kStoreThreads) store_out<P>(g, sm, rank);
  } else {
    setmaxnreg_inc<kMmaRegs>();
    consume<P>(g, sm, rank);
  }
  cluster_sync();  // the other block's last arrivals on this block's barriers have landed
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

// Clusters of the kernel that fit on the current device at once (66 on an H200: one block an SM,
// pairs placed within a GPC). Asked once per device: the query is not free and the launch runs
// twice a layer.
template <Proj P>
int resident_clusters() {
  static std::array<std::atomic<int>, 64> known{};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  if (device < 0 || static_cast<size_t>(device) >= known.size())
    fail("grouped FP8 GEMM: device ", device, " (this build counts clusters for devices 0 to ", known.size() - 1, ")");
  std::atomic<int>& slot = known[static_cast<size_t>(device)];
  if (const int c = slot.load(std::memory_order_relaxed); c > 0) return c;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(kCluster);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSmemBytes;
  int clusters = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, moe_fp8_gemm_kernel<P>, &config));
  if (clusters < 1) fail("grouped FP8 GEMM: no cluster of ", kCluster, " blocks of ", kSmemBytes, " B fits the GPU");
  slot.store(clusters, std::memory_order_relaxed);
  return clusters;
}

template <Proj P>
void launch_gemm(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& a, bf16* out,
                 cudaStream_t s) {
  const int64_t k = P == Proj::GateUp ? ex.hidden : ex.inter, n = P == Proj::GateUp ? ex.inter : ex.hidden;
  if (!moe_fp8_gemm_shape_supported(ex) || !maps || !ex.table)
    fail("grouped FP8 GEMM: experts of hidden ", ex.hidden, ", inter ", ex.inter, " with ", ex.block_rows, " x ",
         ex.block_cols, " blocks (needs multiples of 128 and 128 x 128 blocks, and TMA descriptors)");
  const int n_tiles = static_cast<int>(P == Proj::GateUp ? n / kHalfN : n / kTileN);
  if (static_cast<int64_t>(a.slots) * n_tiles > INT32_MAX) fail("grouped FP8 GEMM: ", a.slots, " M tiles");
  if (a.rows == 0 || a.slots == 0) return;
  const CUtensorMap a_map = make_fp8_tensor_map(a.q, a.rows, k, kTileM);
  const int items = a.slots * n_tiles;
  const GemmArgs g{maps, ex.table, a.tiles, items, n_tiles, (items + kCluster - 1) / kCluster, a.scales, a.rows,
                   static_cast<int>(k / kTileK), P == Proj::GateUp ? ex.gate_up_scale_cols : ex.down_scale_cols, out, n};
  auto kernel = moe_fp8_gemm_kernel<P>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  const int clusters = std::min(resident_clusters<P>(), g.units);
  kernel<<<clusters * kCluster, kThreads, kSmemBytes, s>>>(a_map, g);
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
  return {make_fp8_tensor_map(e.gate, inter, hidden, kHalfN), make_fp8_tensor_map(e.up, inter, hidden, kHalfN),
          make_fp8_tensor_map(e.down, hidden, inter, kHalfN)};
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
