// The grouped FP8 GEMM of the MoE prefill path (moe_gemm_fp8.cu): DeepSeek's recipe on Hopper's
// FP8 tensor cores for all experts of a layer in one launch per projection, with no host
// synchronization.
//  * Rows (token, choice pairs) are grouped by expert (MoePermutation offsets), gathered and
//    quantized per row and 128 columns to e4m3 + float scales (launch_gather_quantize_fp8_act).
//  * Expert weights stay as the checkpoint ships them: e4m3 [N, K] with one float per 128 x 128
//    block, read through per-expert TMA descriptors (Fp8ExpertMaps, built with the layer's table).
//  * launch_moe_fp8_tiles lists the 192-row M tiles of every expert on the device; a block owns
//    one (M tile, N tile) and walks K in 128-deep blocks, adding each block's partial product to
//    its float accumulators times (row scale x weight block scale): DeepSeek's "promotion".
//  * gate and up share a launch: an N tile holds 64 gate and the matching 64 up rows, and the
//    epilogue writes silu(gate) * up as bf16. down writes bf16 rows for launch_moe_combine.
// sm_90a only (moe_fp8_gemm_device); other GPUs keep the dequantizing per-expert path.
#pragma once
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/moe_kernels.h"

namespace dsinfer::cuda {

// One expert's TMA descriptors (device memory, 64-byte aligned), boxes of 64 weight rows.
struct Fp8ExpertMaps {
  CUtensorMap gate, up, down;
};

// Whether the grouped FP8 GEMM takes experts of these shapes: 128 x 128 scale blocks, hidden and
// inter multiples of 128.
bool moe_fp8_gemm_shape_supported(const GroupedExperts& ex);
// Whether `device` runs the kernel's sm_90a code (compute capability 9.0).
bool moe_fp8_gemm_device(int device);
// The descriptors of one expert's matrices (gate/up [inter, hidden], down [hidden, inter]).
Fp8ExpertMaps fp8_expert_maps(const ExpertPtrs& e, int64_t hidden, int64_t inter);

// One side of a grouped product: `rows` e4m3 rows of K and their scales.
struct MoeFp8Rows {
  const uint8_t* q = nullptr;      // [rows, K]
  const float* scales = nullptr;   // [K / 128, rows]: rows contiguous
  int rows = 0;
  const int4* tiles = nullptr;     // launch_moe_fp8_tiles' list for these rows
  int slots = 0;
};

// Rows of one M tile: an expert's rows are padded to a multiple of 64 within it.
constexpr int kMoeFp8TileRows = 192;

// Most M tiles `rows` rows over `experts` experts can need: every expert's partial tile aside,
// the full ones.
int moe_fp8_tile_slots(int rows, int experts);
// tiles[i] = (expert, first row, end of the expert's rows, the expert's first tile) for every
// kMoeFp8TileRows-row M tile, in expert order; the slots past the last tile get expert -1. offsets:
// [experts + 1] on the device.
void launch_moe_fp8_tiles(const int* offsets, int experts, int4* tiles, int slots, cudaStream_t s);

// act[r] = silu(x[r] gate_e^T) * (x[r] up_e^T) as bf16 [rows, inter], e the expert of row r.
void launch_moe_fp8_gate_up(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& x,
                            __nv_bfloat16* act, cudaStream_t s);
// y[r] = act[r] down_e^T as bf16 [rows, hidden].
void launch_moe_fp8_down(const GroupedExperts& ex, const Fp8ExpertMaps* maps, const MoeFp8Rows& act,
                         __nv_bfloat16* y, cudaStream_t s);

// xq[i] = e4m3 of x[src_rows[i]] per 128 columns, scales [k / 128, m] (quantize_fp8.cu, the
// recipe of launch_quantize_fp8_act). Rows at or past *n_valid (device) become zeros with scale
// 1: pairs whose expert id was out of range have no source row.
void launch_gather_quantize_fp8_act(const __nv_bfloat16* x, const int* src_rows, const int* n_valid, int64_t m,
                                    int64_t k, uint8_t* xq, float* scales, cudaStream_t s);

}  // namespace dsinfer::cuda
