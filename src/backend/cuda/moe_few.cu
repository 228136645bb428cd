// Grouped expert products at decode sizes (up to kFewTokens tokens and kFewMaxPairs (token,
// choice) pairs): GEMVs over the chosen experts' rows that read the router's ids themselves, so no
// permutation kernel runs between the router and the experts, and act and y are indexed by pair.
//
// Block (x, p) serves pair p's expert e unless a lower pair chose e too (that pair's blocks serve
// it), and applies each of e's weight rows to every pair that chose e, as many pairs a pass as the
// launch has tokens (a token chooses an expert once; more pairs come only from ids that repeat an
// expert, and re-stream its rows). Slots p >= n are the shared experts' chunks (SharedChunks),
// each applied to every token in one pass; in gate/up they are no blocks of their own, but rows
// every block's warps stream before the router's results are ready (moe_few_fused_kernel).
//
// A warp owns `rows_per_warp` consecutive output rows and streams them as one sequence of steps of
// kFewLoads 16-byte loads per lane, lane-contiguous (a warp's load is 512 bytes of one row); the
// loads in flight come from many resident warps (one register buffer each, 64-85 registers).
// The grid is one wave of resident blocks: the prologue (ids -> expert table -> weights,
// three dependent loads) is paid once per warp, not once per row, and no wave of short blocks waits
// for another's tail. (A warp per row, in blocks of 4 warps, ran V2-Lite's gate/up at 2.1 TB/s and
// its down projection, K = 1408 or ~6 loads a lane, at 1.33 TB/s.)
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/kernel_residency.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_expert_loads.cuh"
#include "backend/cuda/moe_few_pairs.cuh"
#include "backend/cuda/moe_kernels.h"
#include "backend/cuda/skinny_product.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kFewWarps = 4;
constexpr int kFewLoads = 8;  // 16-byte loads per lane per step, over the launch's matrices

struct FewArgs {
  GroupedExperts ex;
  const int* ids = nullptr;  // [n]: the router's choices, pair p = t * k + j
  int n = 0, k = 1;
  SharedChunks shared;      // slots n .. n + shared.chunks - 1
  const bf16* x = nullptr;  // gate/up: the layer input [T, hidden]; down: act [n, inter]
  bf16* act = nullptr;      // gate/up output [n, inter]
  float* y = nullptr;       // down output [n, hidden]
  int rows_per_warp = 1;
  int shared_rows_per_warp = 1;  // a shared chunk's rows serve every token: fewer a warp
};

// A warp's position in its sequence of steps, advanced one step at a time (a division per step
// by the runtime counts of batches and passes cost more instructions than the step's loads).
struct FewStep {
  int row = 0, pass = 0, batch = 0;
  __device__ __forceinline__ void advance(int batches, int passes) {
    if (++batch < batches) return;
    batch = 0;
    if (++pass < passes) return;
    pass = 0;
    ++row;
  }
};

// Which slots a serve_rows call may get (known at compile time where the caller knows it).
enum class Slot { routed, shared, either };

// The rows [row0, row0 + per_warp) of slot p that one warp serves (p < n: pair p's expert, unless a
// lower pair chose it too; p >= n: shared chunk p - n, every token in one pass). A gate/up call
// finds its inputs ready (the caller waited, or x is staged); a down call waits itself, after its
// first weight loads. staged_x: x [T][hidden / 8] in shared memory (gate/up with shared chunks),
// else x is read from global memory.
// T: the launch's tokens (1..kFewTokens), which bounds the pairs that share an expert (a token
// chooses an expert once), so one pass serves them all; at one token the kernel holds one set of
// accumulators, and its lower register count keeps more warps resident.
// A 16-byte piece of a weight row is 8 weights widened to bf16 (load8), or, for FP8 experts whose
// rows and scale blocks are whole pieces (kWideFp8), 16 e4m3 weights as stored, their products
// with x summed in float and added times the piece's block scale, as the skinny FP8 product
// (gemv_fp8.cu) does: half the load instructions, and no widening to bf16 and back.
template <DType D, bool kGateUp, int T, Slot S>
__device__ __forceinline__ void serve_rows(const FewArgs& a, int p, int64_t row0, int per_warp,
                                           const uint4* staged_x) {
  constexpr int M = kGateUp ? 2 : 1;  // matrices applied to the same inputs (gate and up)
  constexpr int U = kFewLoads / M;    // pieces of each matrix per step
  constexpr bool kWideFp8 = D == DType::F8_E4M3;  // (launch_one sends only whole-piece FP8 here)
  constexpr int kValues = kWideFp8 ? 16 : 8;     // weights a piece
  const int lane = threadIdx.x % 32;
  const bool shared = S == Slot::either ? p >= a.n : S == Slot::shared;
  // (the ids: read past L1, which may hold an earlier layer's copy)
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden, k_in = kGateUp ? a.ex.hidden : a.ex.inter;
  const int rows = static_cast<int>(min(static_cast<int64_t>(per_warp), n_out - row0));
  if (rows <= 0) return;
  unsigned pairs = 0;  // the routed pairs this warp serves
  int e = 0;
  ExpertPtrs chunk;  // a shared slot's matrices
  if (shared) {  // bf16 or FP8 (launch_few): element offsets in bytes
    constexpr int64_t kSize = kWideFp8 ? 1 : 2;
    const int64_t j = p - a.n, rows = j * a.ex.inter;
    chunk.gate = static_cast<const uint8_t*>(a.shared.gate) + rows * a.ex.hidden * kSize;
    chunk.up = static_cast<const uint8_t*>(a.shared.up) + rows * a.ex.hidden * kSize;
    chunk.down = static_cast<const uint8_t*>(a.shared.down) + rows * kSize;
    if constexpr (kWideFp8) {  // (a chunk spans whole scale blocks: shared_chunks)
      chunk.gate_scale = a.shared.gate_scale + rows / a.ex.block_rows * a.ex.gate_up_scale_cols;
      chunk.up_scale = a.shared.up_scale + rows / a.ex.block_rows * a.ex.gate_up_scale_cols;
      chunk.down_scale = a.shared.down_scale + rows / a.ex.block_cols;
    }
  } else {
    const int my_id = lane < a.n ? __ldcg(a.ids + lane) : -1;
    e = __shfl_sync(0xffffffffu, my_id, p);
    if (e < 0 || e >= a.ex.experts) {  // a pair with no expert adds nothing
      if constexpr (!kGateUp) {
        dependent_kernel_start();
        for (int r = lane; r < rows; r += 32) a.y[p * n_out + row0 + r] = 0.0f;
      }
      return;
    }
    pairs = __ballot_sync(0xffffffffu, my_id == e);
    if (__ffs(pairs) - 1 != p) return;  // a lower pair's warps serve e
  }
  const LaunchMatrices<kGateUp> mats(shared ? chunk : a.ex.table[e]);
  // A shared chunk's down rows are columns of the whole shared down matrix.
  const int64_t stride = shared && !kGateUp ? a.shared.chunks * a.ex.inter : k_in;
  const ScaleBlocks blk{a.ex.block_rows, a.ex.block_cols,
                        kGateUp ? a.ex.gate_up_scale_cols : shared ? a.shared.down_scale_cols : a.ex.down_scale_cols};
  const int pieces = static_cast<int>(k_in / kValues);
  const int batches = ceil_div(pieces, 32 * U), passes = shared ? 1 : ceil_div(__popc(pairs), T);
  const int steps = rows * passes * batches;

  // A step: (row of the warp's, pass, batch of the row's pieces), in that nesting.
  auto load = [&](uint4(&wv)[U][M], const FewStep& st) {
    const int64_t row = row0 + st.row;
    const int c0 = st.batch * 32 * U + lane;
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (c0 + 32 * u < pieces)
#pragma unroll
        for (int m = 0; m < M; ++m) {
          if constexpr (kWideFp8)
            wv[u][m] = __ldcs(reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(mats.w[m]) + row * stride) +
                              c0 + 32 * u);
          else
            wv[u][m] = load8<D>(mats.w[m], mats.sc[m], row, 8 * static_cast<int64_t>(c0 + 32 * u), stride, blk);
        }
  };
  float acc[T][M] = {};
  int pass = -1, nt = 0, pr[T];  // the pass whose pairs are listed in pr
  const uint4* xr[T];            // their rows of x
  auto compute = [&](const uint4(&wv)[U][M], const FewStep& st) {
    if (st.pass != pass) {
      pass = st.pass;
      if (shared) {  // every token, in one pass
        nt = T;
#pragma unroll
        for (int t = 0; t < T; ++t) pr[t] = a.n + (p - a.n) * T + t;
      } else {
        nt = pass_pairs<T>(pairs, pass, pr);
      }
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const int x_row = !kGateUp ? pr[t] : shared ? t : pr[t] / a.k;
        xr[t] = staged_x ? staged_x + x_row * (k_in / 8) : reinterpret_cast<const uint4*>(a.x + x_row * k_in);
      }
    }
    const int c0 = st.batch * 32 * U + lane;
    float scale[U][M];  // wide FP8: each piece's block scale, the same for every token
    if constexpr (kWideFp8) {
      const int64_t scale_row = (row0 + st.row) / blk.rows * blk.scale_cols;
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int m = 0; m < M; ++m)
          scale[u][m] = c0 + 32 * u < pieces ? __ldg(mats.sc[m] + scale_row + (c0 + 32 * u) * kValues / blk.cols) : 0.0f;
    }
#pragma unroll
    for (int t = 0; t < T; ++t) {
      if (t >= nt) break;
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (c0 + 32 * u < pieces) {
          // A generic load: x in global memory, or its copy in shared memory (one load path: 63
          // registers at one token, where choosing between two took 72).
          if constexpr (kWideFp8) {
            const uint4 x0 = xr[t][2 * (c0 + 32 * u)], x1 = xr[t][2 * (c0 + 32 * u) + 1];
#pragma unroll
            for (int m = 0; m < M; ++m) acc[t][m] += scale[u][m] * dot16(wv[u][m], x0, x1);
          } else {
            const uint4 xv = xr[t][c0 + 32 * u];
#pragma unroll
            for (int m = 0; m < M; ++m) acc[t][m] += dot8(wv[u][m], xv);
          }
        }
    }
    if (st.batch + 1 < batches) return;  // the row continues in the next step
    const int64_t row = row0 + st.row;
#pragma unroll
    for (int t = 0; t < T; ++t) {
      float v[M];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        v[m] = warp_sum(acc[t][m]);
        acc[t][m] = 0.0f;
      }
      if (lane == 0 && t < nt) {
        if constexpr (kGateUp)
          a.act[pr[t] * n_out + row] = __float2bfloat16(v[0] / (1.0f + expf(-v[0])) * v[1]);
        else
          a.y[pr[t] * n_out + row] = v[0];
      }
    }
  };

  // One register buffer: the warp's next loads wait for this step's arithmetic, and the loads in
  // flight come from more resident warps instead (a second buffer took 96-122 registers: 4
  // blocks an SM instead of 8; V2-Lite decode b1 / b4 414 / 658 -> 430 / 765 tok/s, H200).
  uint4 wv[U][M];
  FewStep step;
  load(wv, step);  // no kernel writes weights: the first step's load goes out before the wait
  if constexpr (!kGateUp) dependent_kernel_start();  // act is gate/up's output
  for (int s = 0; s < steps; ++s) {
    compute(wv, step);
    step.advance(batches, passes);
    if (s + 1 < steps) load(wv, step);
  }
}

template <DType D, bool kGateUp, int T>
__global__ void __launch_bounds__(kFewWarps * 32) moe_few_kernel(FewArgs a) {
  // (down: act is the previous kernel's output and the ids were written two kernels back, so
  // final once gate/up's blocks run, since gate/up allows this kernel only after its own wait:
  // keep it so; serve_rows waits after its first weight loads)
  if constexpr (kGateUp) dependent_kernel_start();  // the ids are the previous kernel's output
  const int p = blockIdx.y, per_warp = p >= a.n ? a.shared_rows_per_warp : a.rows_per_warp;
  serve_rows<D, kGateUp, T, Slot::either>(
      a, p, (static_cast<int64_t>(blockIdx.x) * kFewWarps + threadIdx.x / 32) * per_warp, per_warp, nullptr);
}

// Gate/up with the shared experts fused (bf16 or FP8 experts). The grid covers the routed slots only, and
// every block first copies x into shared memory and has its warps stream their share of the shared
// experts' rows (a.shared_rows_per_warp rows of one chunk a warp, as many warps as cover the
// chunks, the rest none; SharedChunks), which need nothing from the router, so the whole grid
// streams during the router's run and then, after the wait, its routed rows. (With the shared
// chunks as slots of their own, their blocks' slots idled once the router was done, and the routed
// rows streamed on three quarters of the resident warps.) Down keeps them as slots: all its blocks
// wait for gate/up's act alike. At one token 8 blocks an SM (64 registers, 24 bytes of spills), as
// the plain kernel has: unbounded, its 78 registers leave 6, and V2-Lite's wave then takes 3 rows a
// warp, 2832 streaming warps instead of 4224. Session 28, H200, V2-Lite batch 1: 491.1 -> 506.4 and
// 504.6 -> 506.9 tok/s (two calls, three rounds each).
// FP8 experts are not held to 8 blocks: their pieces hold a scale each and two words of x, and
// one token spilled 276 bytes at 64 registers (still 76 at 80); unbounded it takes 91, 5 blocks.
template <DType D, int T>
__global__ void __launch_bounds__(kFewWarps * 32, T == 1 && D != DType::F8_E4M3 ? 8 : 1)
    moe_few_fused_kernel(FewArgs a) {
  extern __shared__ uint4 staged_x[];  // x [T][hidden / 8]
  // x was written two kernels back (the router's, which allows this launch after its own wait):
  // final before the wait; read past L1, which may hold an earlier layer's copy.
  const int n = T * static_cast<int>(a.ex.hidden / 8);
  for (int i = threadIdx.x; i < n; i += blockDim.x) staged_x[i] = __ldcg(reinterpret_cast<const uint4*>(a.x) + i);
  __syncthreads();
  const int warp = threadIdx.x / 32;
  const int64_t gw = (static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x) * kFewWarps + warp;
  const int64_t per_chunk = ceil_div(a.ex.inter, static_cast<int64_t>(a.shared_rows_per_warp));  // warps
  if (gw < per_chunk * a.shared.chunks)
    serve_rows<D, true, T, Slot::shared>(a, a.n + static_cast<int>(gw / per_chunk),
                                         (gw % per_chunk) * a.shared_rows_per_warp, a.shared_rows_per_warp, staged_x);
  dependent_kernel_start();  // the ids are the previous kernel's output
  serve_rows<D, true, T, Slot::routed>(a, blockIdx.y,
                                       (static_cast<int64_t>(blockIdx.x) * kFewWarps + warp) * a.rows_per_warp,
                                       a.rows_per_warp, staged_x);
}

// Rows per warp that make the grid (n_out rows of `slots` experts) one wave of resident blocks.
int rows_per_warp(int64_t n_out, int slots, int blocks_per_sm) {
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t resident = static_cast<int64_t>(std::max(1, blocks_per_sm)) * sms;
  int rows = ceil_div(n_out * slots, resident * kFewWarps);
  while (rows < n_out && static_cast<int64_t>(ceil_div(n_out, kFewWarps * rows)) * slots > resident) ++rows;
  return rows;
}

// kFused: gate/up with the shared experts fused (moe_few_fused_kernel).
template <bool kGateUp, DType D, int T, bool kFused>
void launch_one(FewArgs a, cudaStream_t s) {
  const auto kernel = [] {
    if constexpr (kFused) return moe_few_fused_kernel<D, T>;
    else return moe_few_kernel<D, kGateUp, T>;
  }();
  // A fused gate/up's blocks stage x in shared memory (moe_few_fused_kernel); the launch's
  // occupancy then counts it.
  const size_t smem = kFused ? static_cast<size_t>(T) * a.ex.hidden * sizeof(bf16) : 0;
  const int blocks_per_sm = kernel_residency(reinterpret_cast<const void*>(kernel), kFewWarps * 32, smem).per_sm;
  const int64_t n_out = kGateUp ? a.ex.inter : a.ex.hidden;
  dim3 grid;
  if (kFused) {
    // The routed slots make the grid; the shared chunks' rows are spread over all its warps, as
    // few a warp as cover them.
    a.rows_per_warp = rows_per_warp(n_out, a.n, blocks_per_sm);
    grid = dim3(ceil_div(n_out, kFewWarps * a.rows_per_warp), a.n);
    const int64_t warps = static_cast<int64_t>(grid.x) * grid.y * kFewWarps;
    a.shared_rows_per_warp = static_cast<int>(ceil_div(a.shared.chunks * n_out, warps));
    while (a.shared.chunks * ceil_div(n_out, static_cast<int64_t>(a.shared_rows_per_warp)) > warps)
      ++a.shared_rows_per_warp;
  } else {
    // A routed expert's rows mostly serve one token, a shared chunk's all T: its warps take 1 / T
    // of the rows, so that they end with the others (as many rows each, T = 4: 14 % slower at
    // V2-Lite batch 4), and count as T slots in the wave.
    a.rows_per_warp = rows_per_warp(n_out, a.n + a.shared.chunks * T, blocks_per_sm);
    a.shared_rows_per_warp = ceil_div(a.rows_per_warp, T);
    const int per_block = kFewWarps * (a.shared.chunks > 0 ? a.shared_rows_per_warp : a.rows_per_warp);
    grid = dim3(ceil_div(n_out, per_block), a.n + a.shared.chunks);
  }
  // With the shared experts fused the launch is part of the fused MoE chain, which runs under the
  // decode chain's split ("Dependent launches" in docs/cuda.md).
  const int carveout = a.shared.chunks > 0 ? decode_chain_carveout(blocks_per_sm, smem) : -1;
  launch_dependent(kGateUp ? "moe_few_kernel (gate/up)" : "moe_few_kernel (down)", kernel, grid, kFewWarps * 32,
                   {smem, carveout}, s, a);
}

template <bool kGateUp, int T>
void launch_dtype(const FewArgs& a, cudaStream_t s) {
  // Shared experts fuse with bf16 or FP8 experts only (launch_few checks).
  if (kGateUp && a.shared.chunks > 0)
    return a.ex.dtype == DType::F8_E4M3 ? launch_one<true, DType::F8_E4M3, T, true>(a, s)
                                        : launch_one<true, DType::BF16, T, true>(a, s);
  switch (a.ex.dtype) {
    case DType::BF16: return launch_one<kGateUp, DType::BF16, T, false>(a, s);
    case DType::F16: return launch_one<kGateUp, DType::F16, T, false>(a, s);
    case DType::F32: return launch_one<kGateUp, DType::F32, T, false>(a, s);
    case DType::F8_E4M3: return launch_one<kGateUp, DType::F8_E4M3, T, false>(a, s);
    default: fail("grouped MoE: expert weights of dtype ", dtype_name(a.ex.dtype), " are not supported");
  }
}

template <bool kGateUp>
void launch_few(const FewArgs& a, cudaStream_t s) {
  if (a.n <= 0) return;
  const int tokens = ceil_div(a.n, a.k);
  if (a.n > kFewMaxPairs || tokens > kFewTokens)
    fail("moe_few: ", a.n, " pairs of ", tokens, " tokens (at most ", kFewMaxPairs, " of ", kFewTokens, ")");
  if (!moe_few_takes(a.ex))
    fail("moe_few: FP8 experts of ", a.ex.hidden, " x ", a.ex.inter, " in blocks of ", a.ex.block_cols,
         " columns (rows and blocks must be whole 16-byte pieces)");
  if (a.shared.chunks < 0 || a.shared.chunks > kMaxSharedChunks)
    fail("moe_few: ", a.shared.chunks, " shared chunks (at most ", kMaxSharedChunks, ")");
  if (a.shared.chunks > 0 && ((a.ex.dtype != DType::BF16 && a.ex.dtype != DType::F8_E4M3) || a.n % a.k != 0))
    fail("moe_few: shared experts fused with ", dtype_name(a.ex.dtype), " experts or a partial token (", a.n,
         " pairs of top-", a.k, "): bf16 or FP8 experts and whole tokens only");
  with_rows(tokens, [&](auto t) { launch_dtype<kGateUp, t.value>(a, s); });
}

}  // namespace

bool moe_few_takes(const GroupedExperts& ex) {
  return ex.dtype != DType::F8_E4M3 || (ex.hidden % 16 == 0 && ex.inter % 16 == 0 && ex.block_cols % 16 == 0);
}

void launch_moe_few_gate_up(const GroupedExperts& ex, const int* ids, int n, int k, const bf16* x,
                            const SharedChunks& shared, bf16* act, cudaStream_t s) {
  launch_few<true>(FewArgs{ex, ids, n, k, shared, x, act, nullptr}, s);
}

void launch_moe_few_down(const GroupedExperts& ex, const int* ids, int n, int k, const bf16* act,
                         const SharedChunks& shared, float* y, cudaStream_t s) {
  launch_few<false>(FewArgs{ex, ids, n, k, shared, act, nullptr, y}, s);
}

}  // namespace dsinfer::cuda
