// Launchers of the host-synchronization-free MoE path: the device-side permutation of the
// (token, choice) pairs by expert (moe.cu) and the grouped expert products over all experts in
// one launch per projection (moe_grouped.cu; at decode sizes moe_few.cu, without a permutation). Nothing here reads device data on the host, so a
// decode step that uses them can be captured in a CUDA graph.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace dsinfer::cuda {

// One expert's matrices on the device (scales: FP8 only, else null).
struct ExpertPtrs {
  const void* gate = nullptr;
  const void* up = nullptr;
  const void* down = nullptr;
  const float* gate_scale = nullptr;
  const float* up_scale = nullptr;
  const float* down_scale = nullptr;
};

// One MoE layer's experts as the grouped kernels see them. Every expert has the same shapes and
// dtype (ExpertTableCache checks that when it builds the table).
struct GroupedExperts {
  const ExpertPtrs* table = nullptr;  // device [experts]
  int experts = 0;
  int64_t hidden = 0, inter = 0;        // gate/up [inter, hidden], down [hidden, inter]
  DType dtype = DType::BF16;            // BF16, F16, F32 or F8_E4M3
  int block_rows = 1, block_cols = 1;   // FP8 block sizes
  int64_t gate_up_scale_cols = 0, down_scale_cols = 0;
};

// The permutation that groups the n = tokens * k (token, choice) pairs by expert.
struct MoePermutation {
  int* offsets = nullptr;       // [experts + 1]: rows of expert e are [offsets[e], offsets[e + 1])
  int* active = nullptr;        // [experts]: the experts with at least one row, ascending
  int* active_count = nullptr;  // [1]
  int* order = nullptr;         // [n]: the token of each permuted row
  int* inverse = nullptr;       // [n]: the permuted row of pair i = t * k + j (-1: id out of range)
};

// Most experts the one-block permutation kernel handles.
constexpr int kMoeMaxExperts = 1024;

// ids[i] -= first where it lies in [first, first + count), else -1 (expert parallelism).
void launch_moe_local_ids(int* ids, int64_t n, int first, int count, cudaStream_t s);

// Counting sort of the pairs by expert id in one block: counts, offsets, active experts and both
// directions of the permutation. Ids outside [0, experts) join no expert (their pairs add nothing).
void launch_moe_permute(const int* ids, int tokens, int k, int experts, const MoePermutation& perm, cudaStream_t s);

// act[row] = silu(x[order[row]] gate_e^T) * (x[order[row]] up_e^T) for every permuted row, e its
// expert; one launch for all experts, on tensor cores (16 weight rows x 8 tokens a tile).
// `max_active` bounds the experts with rows (min(experts, n)). Both launches are dependent
// launches (dependent_launch.cuh).
void launch_moe_gate_up(const GroupedExperts& ex, const MoePermutation& perm, int max_active,
                        const __nv_bfloat16* x, __nv_bfloat16* act, cudaStream_t s);
// y[row] = act[row] down_e^T in float, for every permuted row; one launch for all experts.
void launch_moe_down(const GroupedExperts& ex, const MoePermutation& perm, int max_active, const __nv_bfloat16* act,
                     float* y, cudaStream_t s);

// Decode: up to kFewTokens tokens and kFewMaxPairs (token, choice) pairs take the GEMV-shaped
// kernels of moe_few.cu, which read the router's ids themselves (no permutation) and index act
// and y by pair p = t * k + j.
constexpr int kFewTokens = 4;
constexpr int kFewMaxPairs = 32;
// Whether the few-token kernels read these experts: FP8 ones only where their rows and scale
// blocks are whole 16-byte pieces of e4m3 (the kernels read them as stored).
bool moe_few_takes(const GroupedExperts& ex);
// FP8 experts that the grouped FP8 GEMM reads take moe_few.cu's CUDA-core kernels up to this many
// tokens where the tensor-core ones below do not take them (every shape the GEMM reads fits those,
// so only where DSINFER_FP8_FEW_MMA_TOKENS lowers their limit): each token's products cost the
// CUDA-core kernels ~40 instructions a 16-byte piece, so at 3-4 tokens the GEMM's tensor cores win
// (V3 4 layers, H100, session 50: batch 2 level, batch 4 -6 %).
constexpr int kFewFp8Tokens = 2;
// FP8 experts whose K and blocks are whole groups of 128 and whose blocks are whole tiles of 16
// rows (DeepSeek's 128 x 128) take that few-token work on tensor cores instead (moe_few_mma.cu)
// at up to kFewMmaTokens tokens: x and act quantized per 128 columns as the grouped FP8 GEMM does.
// (H100, V3 8 layers, session 53, 3 rounds: batch 1 348.6 -> 360.7 tok/s, batch 2 506 -> 533. At
// 3-4 tokens the GEMM won in session 52 while those launches' warps took one step of K each; with
// four at least (moe_few_mma.cu) the kernels win there too, session 54, 2 rounds: batch 3
// 546.5 / 547.2 -> 555.8 / 553.7, batch 4 700.7 / 702.0 -> 710.8 / 708.2.)
// DSINFER_FP8_FEW_MMA_TOKENS=N moves the limit, for measurement (at most kFewMmaMaxTokens, the
// counts the kernels are instantiated for): tokens above N take moe_few.cu's CUDA-core kernels up
// to kFewFp8Tokens and the grouped FP8 GEMM beyond.
constexpr int kFewMmaTokens = 4, kFewMmaMaxTokens = 4;
bool moe_few_mma_fits(const GroupedExperts& ex);  // the shapes the kernels read
bool moe_few_mma_takes(const GroupedExperts& ex, int tokens);

// The shared experts in the same launches (bf16 or FP8 weights, as the routed experts', FP8 in
// the same blocks): their intermediate width is `chunks` times the routed experts' inter, and
// chunk j (rows [j inter, (j + 1) inter) of gate and up, those columns of down) is one more slot
// of the launch, serving every token t at pair index n + j * tokens + t of act and y.
struct SharedChunks {
  const void* gate = nullptr;  // [chunks * inter, hidden]
  const void* up = nullptr;    // [chunks * inter, hidden]
  const void* down = nullptr;  // [hidden, chunks * inter]
  const float* gate_scale = nullptr;  // FP8: the block scales, else null
  const float* up_scale = nullptr;
  const float* down_scale = nullptr;
  int64_t down_scale_cols = 0;  // FP8: down's scale columns (the whole matrix's)
  int chunks = 0;
};
// Most chunks (DeepSeek-V2: 2 shared experts the width of a routed one, V3: 1): the combine
// loads them all at once.
constexpr int kMaxSharedChunks = 4;

// act[p] = silu(x[p / k] gate_e^T) * (x[p / k] up_e^T), e = ids[p], for the n = tokens * k pairs,
// and the shared chunks' rows after them.
void launch_moe_few_gate_up(const GroupedExperts& ex, const int* ids, int n, int k, const __nv_bfloat16* x,
                            const SharedChunks& shared, __nv_bfloat16* act, cudaStream_t s);
// y[p] = act[p] down_e^T in float (0 where ids[p] is outside [0, experts)), and the shared
// chunks' rows after them.
void launch_moe_few_down(const GroupedExperts& ex, const int* ids, int n, int k, const __nv_bfloat16* act,
                         const SharedChunks& shared, float* y, cudaStream_t s);
// The same two products on tensor cores for experts that moe_few_mma_takes (`sm_count`: the SMs
// the launch is costed over).
void launch_moe_few_mma_gate_up(const GroupedExperts& ex, const int* ids, int n, int k, const __nv_bfloat16* x,
                                const SharedChunks& shared, __nv_bfloat16* act, int sm_count, cudaStream_t s);
void launch_moe_few_mma_down(const GroupedExperts& ex, const int* ids, int n, int k, const __nv_bfloat16* act,
                             const SharedChunks& shared, float* y, int sm_count, cudaStream_t s);

}  // namespace dsinfer::cuda
